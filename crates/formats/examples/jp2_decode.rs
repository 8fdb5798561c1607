//! The JPEG2000 decoder's own time for the requests of a benchmark (a manual measure for
//! docs/benchmarks.md, not run by CI): the IIIF URLs of `bench.sh`'s lists (`urls-region.txt`,
//! `urls-cold.txt`, with any image id) are turned into the level and box the server would
//! decode, and those boxes are decoded through the same reader with nothing else: no HTTP,
//! no cache, no resize, no encode. It prints the CPU and wall time per request; send the
//! same URLs to a server and read its CPU time to set the two side by side.
//!
//! ```text
//! RAYON_NUM_THREADS=1 cargo run --release -p iipsrv-formats --example jp2_decode -- \
//!     big-rgb.jp2 /tmp/peers/bench-suite-full/jp2-cold/urls-region.txt 100
//! ```

use iipsrv_formats::bytes::FileBytes;
use iipsrv_formats::source::jpeg2000::Jpeg2000Image;
use iipsrv_formats::source::ImageSource;
use std::path::Path;
use std::sync::Arc;

/// A request: the level decoded and the box in its pixels.
struct Request {
    level: usize,
    area: (u32, u32, u32, u32),
}

/// The level and box a server reads for a IIIF URL `…/<region>/<w>,/…` (region `full` or
/// `x,y,w,h`): the smallest level whose scaled box is still at least the output size, as
/// the server's planner picks it; `None` for other URL forms.
fn request(src: &dyn ImageSource, url: &str) -> Option<Request> {
    let parts: Vec<&str> = url.split('/').collect();
    let i = parts.iter().position(|p| p.ends_with(','))?;
    let out: f64 = parts[i].trim_end_matches(',').parse().ok()?;
    let info = src.info();
    let (x, y, w, h) = match parts.get(i.checked_sub(1)?)? {
        &"full" => (0, 0, info.width, info.height),
        r => {
            let v: Vec<u32> = r.split(',').filter_map(|n| n.parse().ok()).collect();
            let &[x, y, w, h] = v.as_slice() else {
                return None;
            };
            (x, y, w.min(info.width - x), h.min(info.height - y))
        }
    };
    let out_h = (out * h as f64 / w as f64).round();
    let fits = |k: usize| {
        let l = &info.levels[k];
        w as f64 / l.scale_x + 1.0 >= out && h as f64 / l.scale_y + 1.0 >= out_h
    };
    let level = (0..info.levels.len()).rev().find(|&k| fits(k)).unwrap_or(0);
    let l = &info.levels[level];
    let (s0, s1) = (
        |v: u32, s: f64, n: u32| ((v as f64 / s).floor() as u32).min(n - 1),
        |v: u32, s: f64, n: u32| ((v as f64 / s - 1e-9).ceil() as u32).min(n),
    );
    let (x0, y0) = (s0(x, l.scale_x, l.width), s0(y, l.scale_y, l.height));
    let x1 = s1(x + w, l.scale_x, l.width).max(x0 + 1);
    let y1 = s1(y + h, l.scale_y, l.height).max(y0 + 1);
    Some(Request {
        level,
        area: (x0, y0, x1, y1),
    })
}

/// CPU time of this process so far, in seconds (utime + stime of /proc/self/stat).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let tail = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = tail.split_whitespace().collect();
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
    let usage = "usage: jp2_decode FILE URL_LIST [COUNT]";
    let path = args.get(1).ok_or(usage)?;
    let list = std::fs::read_to_string(args.get(2).ok_or(usage)?).map_err(|e| e.to_string())?;
    let n: usize = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(100);
    let bytes = FileBytes::open(Path::new(path)).map_err(|e| e.to_string())?;
    let src = Jpeg2000Image::open(Arc::new(bytes)).map_err(|e| e.to_string())?;
    let requests: Vec<Request> = list
        .lines()
        .take(n)
        .filter_map(|u| request(&src, u))
        .collect();
    let (cpu, wall) = (cpu_seconds(), std::time::Instant::now());
    let mut pixels = 0u64;
    for r in &requests {
        let got = src.read_region(r.level, r.area).ok_or("no region reader")?;
        let raster = got.map_err(|e| e.to_string())?;
        pixels += raster.width as u64 * raster.height as u64;
    }
    let (cpu, wall) = (cpu_seconds() - cpu, wall.elapsed().as_secs_f64());
    let count = requests.len().max(1) as f64;
    println!(
        "{} requests of {path}: {:.1} ms CPU and {:.1} ms wall per request, {:.2} MP decoded per request",
        requests.len(),
        cpu * 1000.0 / count,
        wall * 1000.0 / count,
        pixels as f64 / count / 1e6
    );
    Ok(())
}
