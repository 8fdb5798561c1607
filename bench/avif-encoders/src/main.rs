//! ravif (pure Rust, on rav1e) on the tiles and regions of the libavif comparison
//! (`crates/formats/examples/avif_encoders.rs`): sixteen 256-px tiles and twelve 512-px
//! regions of an 8-bit RGB PNG, one thread, speeds 6, 8 and 10, at ravif's quality Q
//! (its own 0-100 scale), with ravif's defaults otherwise (10-bit 4:4:4 AV1); PSNR of the
//! file decoded by `avifdec` when it is installed.

use ravif::{Encoder, Img, RGB8};
use std::time::Instant;

/// An 8-bit RGB image.
struct Rgb {
    width: usize,
    height: usize,
    pixels: Vec<RGB8>,
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .ok_or("usage: avif-encoders-bench IMAGE.png [quality]")?;
    let quality: f32 = args
        .get(2)
        .map_or(Ok(50.0), |q| q.parse().map_err(|_| "bad quality"))?;
    let image = read_png(&std::fs::read(path).map_err(|e| e.to_string())?)?;
    println!("| encoder | speed | image | ms per image | bytes per image | PSNR dB |");
    println!("|---|---|---|---:|---:|---:|");
    for speed in [6u8, 8, 10] {
        for (size, name) in [(256, "256-px tile"), (512, "512-px region")] {
            row(&cut(&image, size), speed, quality, name);
        }
    }
    Ok(())
}

/// Decodes an 8-bit RGB PNG.
fn read_png(bytes: &[u8]) -> Result<Rgb, String> {
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0; reader.output_buffer_size().ok_or("too large")?];
    let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
    if info.color_type != png::ColorType::Rgb || info.bit_depth != png::BitDepth::Eight {
        return Err("the input must be an 8-bit RGB PNG".into());
    }
    let pixels = buf[..info.buffer_size()]
        .chunks_exact(3)
        .map(|p| RGB8::new(p[0], p[1], p[2]))
        .collect();
    Ok(Rgb {
        width: info.width as usize,
        height: info.height as usize,
        pixels,
    })
}

/// The non-overlapping `size`-pixel squares of `image`, at most 16, in rows.
fn cut(image: &Rgb, size: usize) -> Vec<Rgb> {
    let mut out = Vec::new();
    for y in (0..=image.height - size).step_by(size) {
        for x in (0..=image.width - size).step_by(size) {
            let pixels = (y..y + size)
                .flat_map(|r| {
                    image.pixels[r * image.width + x..r * image.width + x + size].to_vec()
                })
                .collect();
            out.push(Rgb {
                width: size,
                height: size,
                pixels,
            });
        }
    }
    out.truncate(16);
    out
}

/// Encodes every image (after one warm-up) and prints the means.
fn row(images: &[Rgb], speed: u8, quality: f32, name: &str) {
    let encoder = Encoder::new()
        .with_quality(quality)
        .with_speed(speed)
        .with_num_threads(Some(1));
    let encode = |i: &Rgb| {
        encoder
            .encode_rgb(Img::new(&i.pixels[..], i.width, i.height))
            .map(|e| e.avif_file)
            .unwrap_or_default()
    };
    let _ = encode(&images[0]);
    let start = Instant::now();
    let files: Vec<Vec<u8>> = images.iter().map(encode).collect();
    let ms = start.elapsed().as_secs_f64() * 1000.0 / files.len() as f64;
    let bytes = files.iter().map(Vec::len).sum::<usize>() / files.len();
    let db: Vec<f64> = images
        .iter()
        .zip(&files)
        .filter_map(|(i, f)| decoded(f).map(|d| psnr(i, &d)))
        .collect();
    let db = match db.len() {
        0 => "-".to_string(),
        n => format!("{:.1}", db.iter().sum::<f64>() / n as f64),
    };
    println!("| ravif (rav1e) Q{quality} | {speed} | {name} | {ms:.1} | {bytes} | {db} |");
}

/// An AVIF file decoded by avifdec (to 8 bits: ravif writes 10-bit 4:4:4), when installed.
fn decoded(file: &[u8]) -> Option<Rgb> {
    let dir = std::env::temp_dir().join(format!("ravif-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let (input, output) = (dir.join("a.avif"), dir.join("a.png"));
    std::fs::write(&input, file).ok()?;
    let status = std::process::Command::new("avifdec")
        .args(["--depth", "8"])
        .arg(&input)
        .arg(&output)
        .output()
        .ok()?
        .status;
    status.success().then_some(())?;
    read_png(&std::fs::read(&output).ok()?).ok()
}

/// Peak signal-to-noise ratio of `b` against `a`, in dB.
fn psnr(a: &Rgb, b: &Rgb) -> f64 {
    let sum: f64 = a
        .pixels
        .iter()
        .zip(&b.pixels)
        .map(|(p, q)| {
            [(p.r, q.r), (p.g, q.g), (p.b, q.b)]
                .iter()
                .map(|&(x, y)| (f64::from(x) - f64::from(y)).powi(2))
                .sum::<f64>()
        })
        .sum();
    10.0 * (255.0f64 * 255.0 / (sum / (a.pixels.len() * 3) as f64)).log10()
}
