//! `iipsrv check PATH...`: what the server sees in each image file — format, size, levels,
//! tiles, storage, samples, colour, ICC profile, metadata — and what would make it servable
//! or faster. Each file gets a few lines on standard output; the exit status is non-zero
//! when any file cannot be served.

use iipsrv_core::info::ImageInfo;
use iipsrv_formats::bytes::{ByteSource, FileBytes};
use iipsrv_formats::error::SourceError;
use iipsrv_formats::open::{self, Kind};
use iipsrv_formats::source::jpeg2000::Jpeg2000Image;
use iipsrv_formats::source::tiff::TiffImage;
use iipsrv_formats::source::ImageSource;
use iipsrv_server::settings::PyramidSettings;
use iipsrv_server::storage::pyramids;
use std::path::Path;
use std::sync::Arc;

/// The verdict on one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Served as it is.
    Good,
    /// Served, with advice that would make it faster.
    Slow(Vec<String>),
    /// Not servable: why.
    Unservable(String),
}

/// Why a file cannot be served; its `Display` is the text after "NOT SERVABLE: ".
#[derive(Debug, thiserror::Error)]
enum Unservable {
    /// The file could not be read or opened: the format crate's error.
    #[error("{0}")]
    Source(#[from] SourceError),
    /// The first tile of a level does not decode.
    #[error("level {level} does not decode: {error}")]
    Probe {
        /// The level (0 is full resolution).
        level: usize,
        /// Why its first tile does not decode.
        error: SourceError,
    },
    /// Not a format the server reads (by the first bytes).
    #[error("not a TIFF, JPEG2000, JPEG or PNG image")]
    UnknownFormat,
}

/// Checks every path, printing a report for each; true when all are servable. With a
/// pyramid cache, flat images over its threshold say whether their pyramid is built.
pub(crate) fn run(paths: &[std::path::PathBuf], pyramids: Option<&PyramidSettings>) -> bool {
    let mut all_servable = true;
    for p in paths {
        let (mut lines, verdict) = check(p);
        lines.extend(pyramids.and_then(|settings| pyramid_line(p, settings)));
        println!("{}:", p.display());
        for l in lines {
            println!("  {l}");
        }
        match verdict {
            Verdict::Good => println!("  ok: served as it is"),
            Verdict::Slow(advice) => advice.iter().for_each(|a| println!("  advice: {a}")),
            Verdict::Unservable(why) => {
                println!("  NOT SERVABLE: {why}");
                all_servable = false;
            }
        }
    }
    all_servable
}

/// What the server does with `path` when it is a flat image over PYRAMID_THRESHOLD: its
/// pyramid is in the cache, or will be built there on first use.
fn pyramid_line(path: &Path, settings: &PyramidSettings) -> Option<String> {
    let (_, key) = pyramids::flat_key(path, settings.threshold_pixels)?;
    Some(if pyramids::built_path(&settings.dir, &key).is_file() {
        format!("pyramid cache: built ({key}.tif in PYRAMID_CACHE_DIR)")
    } else {
        "pyramid cache: would be built in PYRAMID_CACHE_DIR on its first request (or now by \
         iipsrv warm)"
            .into()
    })
}

/// The description lines and verdict of one file.
pub(crate) fn check(path: &Path) -> (Vec<String>, Verdict) {
    match inspect(path) {
        Ok(r) => r,
        Err(why) => (Vec::new(), Verdict::Unservable(why.to_string())),
    }
}

fn inspect(path: &Path) -> Result<(Vec<String>, Verdict), Unservable> {
    if let Some(vendor) = open::openslide_vendor(path) {
        return through_openslide(path, &vendor);
    }
    let bytes: Arc<dyn ByteSource> = Arc::new(FileBytes::open(path)?);
    let head = bytes.read_at(0, bytes.len().min(12) as usize)?;
    match Kind::of(&head) {
        Some(Kind::Tiff) => {
            let tiff = TiffImage::open(bytes)?;
            let (compression, striped) = tiff.storage();
            let mut lines = vec![format!(
                "TIFF, {}, stored {compression}{}",
                describe(tiff.info()),
                if striped { " in strips" } else { "" }
            )];
            if !tiff.pages().is_empty() {
                lines.push(format!("stack of {} pages", tiff.pages().len()));
            }
            let mut advice = pyramid_advice(tiff.info(), striped);
            if compression == "none" {
                advice.push("uncompressed: deflate or JPEG tiles would read faster".into());
            }
            probe(&tiff)?;
            Ok((lines, verdict(advice)))
        }
        Some(Kind::Jpeg2000) => {
            let image = Jpeg2000Image::open(bytes)?;
            let h = image.header();
            let mut lines = vec![format!("JPEG2000, {}", describe(image.info()))];
            lines.push(format!(
                "{} resolutions, {} quality layers{}",
                h.resolutions,
                h.layers,
                if h.htj2k { ", HTJ2K" } else { "" }
            ));
            probe(&image)?;
            Ok((lines, jpeg2000_verdict(h)))
        }
        Some(Kind::Flat) => {
            let kind = if head.starts_with(b"\x89PNG") {
                "PNG"
            } else {
                "JPEG"
            };
            let outline = open::outline(path)?;
            let (width, height) = (outline.width, outline.height);
            if width as u64 * height as u64 <= MAX_PROBED_PIXELS {
                open::open_source(path)?;
            }
            let lines = vec![format!("{kind}, {width}×{height}")];
            let advice = vec![format!(
                "a plain {kind} has no tiles or pyramid: it is decoded whole into memory when \
                 opened, or has a pyramid built on first use with PYRAMID_CACHE_DIR; convert it \
                 to a tiled pyramidal TIFF (vips tiffsave --tile --pyramid) ahead of time"
            )];
            Ok((lines, Verdict::Slow(advice)))
        }
        None => Err(Unservable::UnknownFormat),
    }
}

/// A slide no native reader claims, read through OpenSlide (its `vendor`).
fn through_openslide(path: &Path, vendor: &str) -> Result<(Vec<String>, Verdict), Unservable> {
    let source = open::open_source(path)?;
    probe(source.as_ref())?;
    let lines = vec![format!(
        "{vendor} slide read through OpenSlide, {}",
        describe(source.info())
    )];
    Ok((lines, Verdict::Good))
}

/// Flat JPEG and PNG files up to this many pixels are decoded whole to prove they decode;
/// larger ones are only read to their headers (the server builds their pyramids, or refuses
/// them).
const MAX_PROBED_PIXELS: u64 = 100_000_000;

/// An HTJ2K codestream is decoded in whole codestream tiles (OpenJPEG cannot decode part
/// of an HT tile): tiles much larger than the server's are slow to serve.
fn jpeg2000_verdict(h: &iipsrv_formats::source::jpeg2000::Header) -> Verdict {
    let (_, _, tw, th) = h.tiling;
    let (w, h_px) = h.size;
    if !h.htj2k || tw.min(w) as u64 * th.min(h_px) as u64 <= 1024 * 1024 {
        return Verdict::Good;
    }
    Verdict::Slow(vec![format!(
        "HTJ2K in codestream tiles of {}×{}: each request decodes whole tiles; re-encode \
         with ojph_compress -tile_size {{512,512}}",
        tw.min(w),
        th.min(h_px)
    )])
}

/// Size, levels, tiles, samples, colour, ICC and metadata in one line.
fn describe(info: &ImageInfo) -> String {
    let l0 = &info.levels[0];
    let mut s = format!(
        "{}×{}, {} level{}, tiles {}×{}, {} channel{} of {}-bit {:?} samples, {:?}",
        info.width,
        info.height,
        info.levels.len(),
        if info.levels.len() == 1 { "" } else { "s" },
        l0.tile_width,
        l0.tile_height,
        info.channels,
        if info.channels == 1 { "" } else { "s" },
        info.stored_bits,
        info.sample_format,
        info.colour
    );
    if let Some(icc) = &info.icc {
        s.push_str(&format!(", ICC profile {} bytes", icc.len()));
    }
    let m = &info.metadata;
    for (k, v) in [
        ("description", &m.description),
        ("artist", &m.artist),
        ("copyright", &m.copyright),
        ("date", &m.date),
    ] {
        if let Some(v) = v {
            s.push_str(&format!(
                ", {k} \"{}\"",
                v.chars().take(60).collect::<String>()
            ));
        }
    }
    if let Some((x, _)) = m.pixels_per_cm {
        s.push_str(&format!(", {:.1} pixels/cm", x));
    }
    s
}

/// Advice on levels and tiles: a missing pyramid, strips, huge tiles.
fn pyramid_advice(info: &ImageInfo, striped: bool) -> Vec<String> {
    let mut advice = Vec::new();
    let l0 = &info.levels[0];
    if info.levels.len() == 1 && info.width.max(info.height) > 512 {
        advice.push(
            "no pyramid: levels are built in memory when opened (up to 100 megapixels), or \
             on disk on first use with PYRAMID_CACHE_DIR; vips tiffsave --tile --pyramid \
             makes one"
                .into(),
        );
    }
    if striped {
        advice.push("not tiled: 256×256 tiles make regions cheaper".into());
    } else if l0.tile_width.max(l0.tile_height) > 1024 {
        advice.push(format!(
            "huge tiles ({}×{}): each request decodes a whole one; 256 or 512 is usual",
            l0.tile_width, l0.tile_height
        ));
    }
    advice
}

fn verdict(advice: Vec<String>) -> Verdict {
    if advice.is_empty() {
        Verdict::Good
    } else {
        Verdict::Slow(advice)
    }
}

/// Decodes the first tile of the smallest and the largest level: an unsupported
/// compression or damaged data shows here.
fn probe(src: &dyn ImageSource) -> Result<(), Unservable> {
    let last = src.info().levels.len() - 1;
    for level in [last, 0] {
        src.read_tile_float(level, 0, 0)
            .map_err(|error| Unservable::Probe { level, error })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unservable_shows_the_texts_shown_before() {
        let cases = [
            (
                Unservable::from(SourceError::unsupported("old-style JPEG (compression 6)")),
                "old-style JPEG (compression 6)",
            ),
            (
                Unservable::Probe {
                    level: 2,
                    error: SourceError::corrupt("bad JPEG tile: x"),
                },
                "level 2 does not decode: bad JPEG tile: x",
            ),
            (
                Unservable::UnknownFormat,
                "not a TIFF, JPEG2000, JPEG or PNG image",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text, "{e:?}");
        }
    }

    #[test]
    fn a_file_that_is_not_an_image_is_unservable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("text.tif");
        std::fs::write(&path, "not an image").expect("write");
        let (lines, verdict) = check(&path);
        assert!(lines.is_empty());
        assert_eq!(
            verdict,
            Verdict::Unservable("not a TIFF, JPEG2000, JPEG or PNG image".into())
        );
    }
}
