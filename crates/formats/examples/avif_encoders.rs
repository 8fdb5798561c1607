//! The AVIF encoder comparison of the README (a manual benchmark, not run by CI): encode time,
//! size and quality of 256-px tiles and 512-px regions of a real image with each AV1
//! encoder libavif has (aom, rav1e, SVT-AV1) at a few speeds, beside JPEG and WebP.
//!
//! ```text
//! cargo run --release -p iipsrv-formats --features avif --example avif_encoders -- crop.png [quality]
//! ```
//!
//! `crop.png` is an 8-bit RGB PNG of at least 1024 × 1024 pixels (the README's figures use a
//! crop of make-images.sh's master). Quality is libavif's 0-100 (default 50); the JPEG
//! answers are at the server's JPEG_QUALITY default (75), WebP at WEBP_QUALITY's (50).
//! PSNR is measured on the file decoded by `avifdec` (libavif-bin) when it is installed.

use iipsrv_core::raster::Raster;
use iipsrv_formats::codec::avif::{self, Codec, Options};
use iipsrv_formats::codec::{jpeg, png, webp, Embedded};
use std::time::Instant;

/// The images of one row: the tiles or regions cut from the input.
struct Set {
    name: &'static str,
    images: Vec<Raster>,
}

/// One encoder setting, as a row label and an encode function.
type Encoder = (String, Box<dyn Fn(&Raster) -> Vec<u8>>);

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .ok_or("usage: avif_encoders IMAGE.png [quality]")?;
    let quality: u8 = match args.get(2) {
        Some(q) => q.parse().map_err(|_| format!("bad quality {q}"))?,
        None => 50,
    };
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let image = png::decode(&bytes, 1 << 28)
        .map_err(|e| e.to_string())?
        .raster;
    if image.channels != 3 || image.width < 1024 || image.height < 1024 {
        return Err("the input must be RGB, at least 1024 x 1024".into());
    }
    avif::quiet_svt();
    println!("libavif codecs: {}", avif::versions());
    let sets = [
        cut(&image, 256, "256-px tile"),
        cut(&image, 512, "512-px region"),
    ];
    println!("| encoder | speed | image | ms per image | bytes per image | PSNR dB |");
    println!("|---|---|---|---:|---:|---:|");
    for (label, encode) in encoders(quality) {
        for set in &sets {
            row(&label, set, &*encode);
        }
    }
    Ok(())
}

/// The non-overlapping `size`-pixel squares of `image`, at most 16.
fn cut(image: &Raster, size: u32, name: &'static str) -> Set {
    let mut images = Vec::new();
    for y in (0..=image.height - size).step_by(size as usize) {
        for x in (0..=image.width - size).step_by(size as usize) {
            images.push(image.crop(x, y, size, size));
        }
    }
    images.truncate(16);
    Set { name, images }
}

/// Every AVIF encoder of this libavif at speeds 6, 8 and 10, then JPEG and WebP.
fn encoders(quality: u8) -> Vec<Encoder> {
    let mut list: Vec<Encoder> = Vec::new();
    for codec in [Codec::Aom, Codec::Rav1e, Codec::Svt] {
        if !avif::can_encode(codec) {
            continue;
        }
        for speed in [6, 8, 10] {
            let options = Options {
                speed,
                ..Options::new(Some(quality), codec)
            };
            let encode = move |r: &Raster| {
                avif::encode(r, &options, Embedded::default()).unwrap_or_default()
            };
            list.push((format!("AVIF {} | {speed}", codec.name()), Box::new(encode)));
        }
    }
    let jpeg = |r: &Raster| jpeg::encode(r, 75).unwrap_or_default();
    list.push(("JPEG Q75 (libjpeg-turbo) | -".into(), Box::new(jpeg)));
    let webp = |r: &Raster| webp::encode(r, Some(50.0)).unwrap_or_default();
    list.push(("WebP Q50 (libwebp) | -".into(), Box::new(webp)));
    list
}

/// Encodes every image of `set` (after one warm-up encode) and prints the means.
fn row(label: &str, set: &Set, encode: &dyn Fn(&Raster) -> Vec<u8>) {
    let _ = encode(&set.images[0]);
    let start = Instant::now();
    let files: Vec<Vec<u8>> = set.images.iter().map(encode).collect();
    let ms = start.elapsed().as_secs_f64() * 1000.0 / files.len() as f64;
    let bytes = files.iter().map(Vec::len).sum::<usize>() / files.len();
    let psnr: Vec<f64> = set
        .images
        .iter()
        .zip(&files)
        .filter_map(|(r, f)| decoded(f, r.width, r.height).map(|d| psnr(r, &d)))
        .collect();
    let db = match psnr.len() {
        0 => "-".to_string(),
        n => format!("{:.1}", psnr.iter().sum::<f64>() / n as f64),
    };
    println!("| {label} | {} | {ms:.1} | {bytes} | {db} |", set.name);
}

/// `file` of `width` × `height` decoded: AVIF by avifdec (when installed), JPEG and WebP
/// by this crate.
fn decoded(file: &[u8], width: u32, height: u32) -> Option<Raster> {
    if file.starts_with(&[0xFF, 0xD8]) {
        return jpeg::decode(file, width, height, 3).ok();
    }
    if file.starts_with(b"RIFF") {
        return webp::decode(file, width, height, 3).ok();
    }
    let dir = std::env::temp_dir().join(format!("avif-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let (input, output) = (dir.join("a.avif"), dir.join("a.png"));
    std::fs::write(&input, file).ok()?;
    let ok = std::process::Command::new("avifdec")
        .arg(&input)
        .arg(&output)
        .output()
        .ok()?
        .status
        .success();
    let png_bytes = std::fs::read(&output).ok().filter(|_| ok)?;
    png::decode(&png_bytes, 1 << 28).ok().map(|d| d.raster)
}

/// Peak signal-to-noise ratio of `b` against `a`, in dB.
fn psnr(a: &Raster, b: &Raster) -> f64 {
    if a.data.len() != b.data.len() {
        return 0.0;
    }
    let sum: f64 = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    10.0 * (255.0f64 * 255.0 / (sum / a.data.len() as f64)).log10()
}
