//! The JPEG2000 decoder's own time for the requests of the benchmark (a manual measure for
//! docs/benchmarks.md, not run by CI): the boxes that `bench.sh`'s `region` workload (10 %
//! the whole image, 90 % random boxes 512-6000 px wide of aspect 0.5-2, each to 512 px) or
//! `tile` workload (random 256-px tiles of the two largest levels) make the server decode,
//! decoded here through the same reader with nothing else: no HTTP, no cache, no resize, no
//! encode. It prints the boxes' CPU time per request; `--urls BASE` prints the IIIF URLs of
//! the same requests instead, so that a server's CPU time for them can be set beside it.
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo run --release -p iipsrv-formats --example jp2_decode -- big-rgb.jp2 region 200
//! cargo run --release -p iipsrv-formats --example jp2_decode -- big-rgb.jp2 region 200 --urls /iiif/big-rgb.jp2
//! ```

use iipsrv_formats::bytes::FileBytes;
use iipsrv_formats::source::jpeg2000::Jpeg2000Image;
use iipsrv_formats::source::ImageSource;
use std::path::Path;
use std::sync::Arc;

/// A request: the level decoded, the box in its pixels, and the IIIF path that asks it.
struct Request {
    level: usize,
    area: (u32, u32, u32, u32),
    url: String,
}

/// A fixed pseudo-random sequence (xorshift64*), so every run asks the same boxes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The level whose pixels a server reads for a `w`-wide box shown `out` wide: the smallest
/// whose scaled box is still at least `out` wide.
fn level_for(src: &dyn ImageSource, w: u32, out: u32) -> usize {
    let levels = &src.info().levels;
    (0..levels.len())
        .rev()
        .find(|&k| w as f64 / levels[k].scale_x + 1.0 >= out as f64)
        .unwrap_or(0)
}

/// `bench.sh`-like region requests.
fn regions(src: &dyn ImageSource, n: usize, rng: &mut Rng, base: &str) -> Vec<Request> {
    let (iw, ih) = (src.info().width, src.info().height);
    (0..n)
        .map(|i| {
            let (x, y, w, h) = if i % 10 == 0 {
                (0, 0, iw, ih)
            } else {
                let w = (512.0 + rng.next() * 5488.0) as u32;
                let h = ((w as f64 * (0.5 + rng.next() * 1.5)) as u32).min(ih);
                let w = w.min(iw);
                let x = (rng.next() * (iw - w) as f64) as u32;
                let y = (rng.next() * (ih - h) as f64) as u32;
                (x, y, w, h)
            };
            let level = level_for(src, w, 512);
            let s = src.info().levels[level].scale_x;
            let l = &src.info().levels[level];
            let scaled = |v: u32, limit: u32| ((v as f64 / s) as u32).min(limit);
            let area = (
                scaled(x, l.width - 1),
                scaled(y, l.height - 1),
                scaled(x + w, l.width).max(scaled(x, l.width - 1) + 1),
                scaled(y + h, l.height).max(scaled(y, l.height - 1) + 1),
            );
            let url = format!("{base}/{x},{y},{w},{h}/512,/0/default.jpg");
            Request { level, area, url }
        })
        .collect()
}

/// Random 256-px tiles of the two largest levels.
fn tiles(src: &dyn ImageSource, n: usize, rng: &mut Rng, base: &str) -> Vec<Request> {
    (0..n)
        .map(|_| {
            let level = (rng.next() * 2.0) as usize;
            let l = &src.info().levels[level];
            let tx = (rng.next() * l.tiles_across() as f64) as u32;
            let ty = (rng.next() * l.tiles_down() as f64) as u32;
            let area = (
                tx * 256,
                ty * 256,
                (tx * 256 + 256).min(l.width),
                (ty * 256 + 256).min(l.height),
            );
            let s = l.scale_x as u32;
            let (x, y) = (area.0 * s, area.1 * s);
            let (w, h) = ((area.2 - area.0) * s, (area.3 - area.1) * s);
            let out = area.2 - area.0;
            let url = format!("{base}/{x},{y},{w},{h}/{out},/0/default.jpg");
            Request { level, area, url }
        })
        .collect()
}

/// CPU time of this process so far, in seconds (utime + stime of /proc/self/stat).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: jp2_decode FILE region|tile [COUNT] [--urls BASE]";
    let path = args.get(1).ok_or(usage)?;
    let kind = args.get(2).ok_or(usage)?;
    let n: usize = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(200);
    let urls = args
        .iter()
        .position(|a| a == "--urls")
        .and_then(|i| args.get(i + 1));
    let bytes = FileBytes::open(Path::new(path)).map_err(|e| e.to_string())?;
    let src = Jpeg2000Image::open(Arc::new(bytes)).map_err(|e| e.to_string())?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let base = urls.map_or("", String::as_str);
    let requests = match kind.as_str() {
        "region" => regions(&src, n, &mut rng, base),
        "tile" => tiles(&src, n, &mut rng, base),
        _ => return Err(usage.into()),
    };
    if urls.is_some() {
        for r in &requests {
            println!("{}", r.url);
        }
        return Ok(());
    }
    let (cpu, wall) = (cpu_seconds(), std::time::Instant::now());
    let mut pixels = 0u64;
    for r in &requests {
        let got = src.read_region(r.level, r.area).ok_or("no region reader")?;
        let raster = got.map_err(|e| e.to_string())?;
        pixels += raster.width as u64 * raster.height as u64;
    }
    let (cpu, wall) = (cpu_seconds() - cpu, wall.elapsed().as_secs_f64());
    println!(
        "{n} {kind}s of {path}: {:.1} ms CPU and {:.1} ms wall per request, {:.2} MP decoded per request",
        cpu * 1000.0 / n as f64,
        wall * 1000.0 / n as f64,
        pixels as f64 / n as f64 / 1e6
    );
    Ok(())
}
