//! The demo image served when no image directory is configured: a synthetic, colourful
//! 4096×3072 pyramidal JPEG TIFF (gradients, rings, a labelled 256 px grid) written once
//! into a directory under the system temporary directory.

use iipsrv_core::raster::Raster;
use iipsrv_formats::codec::tiff_writer::{self, Compression};
use std::path::{Path, PathBuf};

/// File name of the demo image inside the demo directory.
pub const DEMO_NAME: &str = "demo.tif";

/// Makes sure the demo directory holds the demo image and returns the directory.
pub fn ensure_demo_dir() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join("iipsrv-demo");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(DEMO_NAME);
    if !path.is_file() {
        write_demo(&path, 4096, 3072)?;
    }
    Ok(dir)
}

/// Writes a demo image of the given size to `path` (atomically, via a temporary name).
pub fn write_demo(path: &Path, width: u32, height: u32) -> std::io::Result<()> {
    let levels = iipsrv_core::raster::pyramid(pattern(width, height), 256);
    let bytes = tiff_writer::write(
        &levels,
        Some(256),
        Compression::Jpeg(90),
        Default::default(),
    )
    .map_err(std::io::Error::other)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// The synthetic picture: hue sweeping across, brightness down, concentric rings from the
/// centre, and dark grid lines every 256 pixels so tiles can be told apart.
pub fn pattern(width: u32, height: u32) -> Raster {
    let mut r = Raster::filled(width, height, 3, 0);
    let (cx, cy) = (width as f64 / 2.0, height as f64 / 2.0);
    for y in 0..height {
        for x in 0..width {
            let hue = x as f64 / width as f64 * 6.0;
            let light = 0.35 + 0.6 * (1.0 - y as f64 / height as f64);
            let d = ((x as f64 - cx).powi(2) + (y as f64 - cy).powi(2)).sqrt();
            let ring = 0.85 + 0.15 * (d / 40.0).sin();
            let [mut red, mut green, mut blue] = hue_rgb(hue).map(|c| c * light * ring);
            if x % 256 < 3 || y % 256 < 3 {
                red *= 0.2;
                green *= 0.2;
                blue *= 0.2;
            }
            let i = (y as usize * width as usize + x as usize) * 3;
            r.data[i] = (red * 255.0) as u8;
            r.data[i + 1] = (green * 255.0) as u8;
            r.data[i + 2] = (blue * 255.0) as u8;
        }
    }
    r
}

fn hue_rgb(h: f64) -> [f64; 3] {
    let f = |n: f64| {
        let k = (n + h) % 6.0;
        1.0 - (k.min(4.0 - k).clamp(0.0, 1.0))
    };
    [f(5.0), f(3.0), f(1.0)]
}
