//! Slides of the formats no native reader claims (MIRAX, Leica SCN, Trestle, Sakura,
//! Hamamatsu VMS, Ventana and NDPI where not read natively …), read through the system
//! OpenSlide (cargo feature `openslide`). [`crate::open`] asks OpenSlide only after the
//! native readers: a file is read here when OpenSlide names a vendor for it (other than
//! `generic-tiff`) and no native slide module recognised it.
//!
//! OpenSlide's levels are the pyramid, cut into virtual tiles of [`TILE`] pixels, each read
//! with `openslide_read_region` at its level; OpenSlide's premultiplied ARGB is put on
//! white, as its documentation says to show it. Its properties are the image's properties
//! (`openslide.mpp-x`, `openslide.objective-power`, the vendor's own), its microns per
//! pixel the physical size; its associated images are the pages [`Associated::page`] of
//! the file, as for native slides. Only local files: OpenSlide opens paths.

mod ffi;

use super::memory::{self, MemoryImage};
use super::slide::{microns, Associated};
use super::ImageSource;
use crate::error::{SourceError, SourceResult};
use iipsrv_core::info::{plain_info, ImageInfo, Level};
use iipsrv_core::raster::Raster;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Width and height of the virtual tiles each level is cut into.
pub(crate) const TILE: u32 = 256;

/// OpenSlide's number and downsample of one of its levels.
type Step = (i32, f64);

/// Levels wider or taller than this are refused (a lying file).
const MAX_SIDE: i64 = 1 << 30;

/// The vendor OpenSlide recognises the local file at `path` as, when it is one that no
/// native reader stands for by default (not `generic-tiff`).
pub(crate) fn vendor(path: &Path) -> Option<String> {
    ffi::detect_vendor(path).filter(|v| v != "generic-tiff")
}

/// The version of the OpenSlide library linked, for logs and `iipsrv check`.
pub fn version() -> String {
    ffi::version()
}

/// Opens page `page` of the slide at `path` (`name` in messages): 0 the slide, an
/// [`Associated`] page one of its associated images.
pub(crate) fn open_page(
    path: &Path,
    page: usize,
    name: &str,
) -> SourceResult<Arc<dyn ImageSource>> {
    let slide = ffi::Slide::open(path).map_err(|e| failure(&e, path, name))?;
    if page == 0 {
        return Ok(Arc::new(OpenSlideImage::new(slide, path, name)?));
    }
    let kind = Associated::of_page(page).ok_or(SourceError::NoSuchPage { page })?;
    if !slide.associated_names().iter().any(|n| n == kind.name()) {
        return Err(SourceError::NoSuchPage { page });
    }
    let (w, h, argb) = slide
        .read_associated(kind.name(), memory::MAX_PIXELS)
        .map_err(|e| failure(&e, path, name))?;
    let raster = on_white(w, h, &argb)?;
    Ok(Arc::new(MemoryImage::new(raster, plain_info(w, h, 3))))
}

/// OpenSlide's message as an error of the file `name`: its path replaced by its name, and
/// any other absolute path (another file of a multi-file slide, a link's target) by its
/// last component, so that no answer or log line shows where images are kept.
fn failure(message: &str, path: &Path, name: &str) -> SourceError {
    let named = message.replace(&*path.to_string_lossy(), name);
    let shown: Vec<String> = named.split(' ').map(without_directories).collect();
    SourceError::corrupt(format!("OpenSlide: {}", shown.join(" ")))
}

/// A word of a message with the directories of an absolute path in it left out
/// (`'/srv/x/Data0.dat':` becomes `'Data0.dat':`).
fn without_directories(word: &str) -> String {
    match word.find('/') {
        Some(at) if word[..at].chars().all(|c| "\"'(<[".contains(c)) => {
            let last = word.rfind('/').map_or(at, |i| i + 1);
            format!("{}{}", &word[..at], &word[last..])
        }
        _ => word.to_string(),
    }
}

/// Premultiplied ARGB words put on white as 8-bit RGB: each channel plus what its alpha
/// leaves of white.
fn on_white(w: u32, h: u32, argb: &[u32]) -> SourceResult<Raster> {
    let mut data = Vec::with_capacity(argb.len() * 3);
    for &p in argb {
        let gap = 255 - (p >> 24) as u8;
        for shift in [16, 8, 0] {
            data.push(((p >> shift) as u8).saturating_add(gap));
        }
    }
    Raster::from_vec(w, h, 3, data).ok_or_else(|| SourceError::corrupt("OpenSlide region size"))
}

/// A slide read through OpenSlide: one handle shared by every request, replaced by a new
/// one after a read fails (OpenSlide keeps a failed handle in its error state for good), at
/// most once per [`RENEW_AFTER`]: a damaged tile or a passing I/O error does not break the
/// rest of the image, and requests for a damaged tile do not reopen the file each time.
pub(crate) struct OpenSlideImage {
    slide: RwLock<Handle>,
    info: ImageInfo,
    /// OpenSlide's level and downsample behind each of our levels.
    levels: Vec<Step>,
    /// The file's name, in messages.
    name: String,
    /// The file's path, taken out of OpenSlide's messages.
    path: std::path::PathBuf,
}

/// The handle in use and when it replaced a failed one.
struct Handle {
    slide: Arc<ffi::Slide>,
    renewed: Option<Instant>,
}

/// The shortest time between two openings of a slide's file after reads failed.
const RENEW_AFTER: Duration = Duration::from_secs(1);

impl OpenSlideImage {
    /// The handle in use.
    fn handle(&self) -> Arc<ffi::Slide> {
        let held = self.slide.read().unwrap_or_else(|e| e.into_inner());
        held.slide.clone()
    }

    /// After a read through `failed` went wrong: a new handle, unless another thread has
    /// already made one or the one in use replaced another less than [`RENEW_AFTER`] ago.
    fn renew(&self, failed: &Arc<ffi::Slide>) {
        let mut held = self.slide.write().unwrap_or_else(|e| e.into_inner());
        let recent = held.renewed.is_some_and(|t| t.elapsed() < RENEW_AFTER);
        if !Arc::ptr_eq(&held.slide, failed) || recent {
            return;
        }
        if let Ok(slide) = ffi::Slide::open(&self.path) {
            *held = Handle {
                slide: Arc::new(slide),
                renewed: Some(Instant::now()),
            };
        }
    }

    /// The image of an open slide: its levels, properties and physical size.
    fn new(slide: ffi::Slide, path: &Path, name: &str) -> SourceResult<OpenSlideImage> {
        let (levels, sizes): (Vec<Step>, Vec<(u32, u32)>) = levels_of(&slide).into_iter().unzip();
        let &(width, height) = sizes
            .first()
            .ok_or_else(|| SourceError::corrupt(format!("OpenSlide gives no level of {name}")))?;
        let mut info = plain_info(width, height, 3);
        info.levels = sizes
            .iter()
            .map(|&(w, h)| Level {
                width: w,
                height: h,
                tile_width: TILE,
                tile_height: TILE,
                scale_x: width as f64 / w as f64,
                scale_y: height as f64 / h as f64,
            })
            .collect();
        info.metadata.properties = slide.properties();
        info.metadata.pixels_per_cm = pixels_per_cm(&info.metadata.properties);
        Ok(OpenSlideImage {
            slide: RwLock::new(Handle {
                slide: Arc::new(slide),
                renewed: None,
            }),
            info,
            levels,
            name: name.to_string(),
            path: path.to_path_buf(),
        })
    }
}

/// OpenSlide's levels we serve, each with its number and downsample, and its size: a
/// level of no size or over [`MAX_SIDE`], or not smaller than the one before, is passed over.
fn levels_of(slide: &ffi::Slide) -> Vec<(Step, (u32, u32))> {
    let mut out: Vec<(Step, (u32, u32))> = Vec::new();
    for level in 0..slide.level_count().max(0) {
        let (w, h) = slide.level_dimensions(level);
        if !(1..=MAX_SIDE).contains(&w) || !(1..=MAX_SIDE).contains(&h) {
            continue;
        }
        let (w, h) = (w as u32, h as u32);
        let smaller = out
            .last()
            .is_none_or(|&(_, (pw, ph))| w <= pw && h <= ph && (w < pw || h < ph));
        if smaller {
            out.push(((level, slide.level_downsample(level).max(1.0)), (w, h)));
        }
    }
    out
}

/// Pixels per centimetre from OpenSlide's `openslide.mpp-x` and `-y`, when both are sane.
fn pixels_per_cm(properties: &[(String, String)]) -> Option<(f64, f64)> {
    let mpp = |key: &str| {
        properties
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| microns(v))
    };
    let (x, y) = (mpp("openslide.mpp-x")?, mpp("openslide.mpp-y")?);
    Some((1e4 / x, 1e4 / y))
}

impl ImageSource for OpenSlideImage {
    fn info(&self) -> &ImageInfo {
        &self.info
    }

    fn read_tile(&self, level: usize, tx: u32, ty: u32) -> SourceResult<Raster> {
        let (Some(l), Some(&(os_level, downsample))) =
            (self.info.levels.get(level), self.levels.get(level))
        else {
            return Err(SourceError::limit(format!("no level {level}")));
        };
        let (x, y) = (tx as u64 * TILE as u64, ty as u64 * TILE as u64);
        if x >= l.width as u64 || y >= l.height as u64 {
            return Err(SourceError::limit(format!(
                "no tile {tx},{ty} at level {level}"
            )));
        }
        let w = TILE.min(l.width - x as u32);
        let h = TILE.min(l.height - y as u32);
        let at = (
            (x as f64 * downsample) as i64,
            (y as f64 * downsample) as i64,
        );
        let slide = self.handle();
        let argb = slide.read_region(at, os_level, w, h).map_err(|e| {
            self.renew(&slide);
            failure(&e, &self.path, &self.name)
        })?;
        on_white(w, h, &argb)
    }

    fn worth_caching(&self) -> bool {
        true
    }

    fn jpeg_tile(&self, _level: usize, _tx: u32, _ty: u32) -> SourceResult<Option<Vec<u8>>> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn premultiplied_argb_goes_on_white() {
        // opaque red, transparent, half-transparent premultiplied grey 64 (of 128 alpha)
        let argb = [0xffff_0000, 0x0000_0000, 0x8040_4040];
        let r = on_white(3, 1, &argb).expect("raster");
        assert_eq!(r.data, [255, 0, 0, 255, 255, 255, 191, 191, 191]);
        assert!(on_white(2, 2, &argb).is_err());
    }

    #[test]
    fn physical_size_needs_both_sane_lengths() {
        let props = |x: &str, y: &str| {
            vec![
                ("openslide.mpp-x".to_string(), x.to_string()),
                ("openslide.mpp-y".to_string(), y.to_string()),
            ]
        };
        assert_eq!(
            pixels_per_cm(&props("0.25", "0.5")),
            Some((40000.0, 20000.0))
        );
        assert_eq!(pixels_per_cm(&props("0.25", "-1")), None);
        assert_eq!(pixels_per_cm(&[]), None);
    }

    #[test]
    fn messages_name_the_file_not_its_path() {
        let path = Path::new("/srv/images/secret/a.mrxs");
        let e = failure(
            "Can't open /srv/images/secret/a.mrxs: broken",
            path,
            "a.mrxs",
        );
        assert_eq!(e.to_string(), "OpenSlide: Can't open a.mrxs: broken");
        let e = failure(
            "Can't read '/srv/images/secret/a/Data0001.dat': gone (/srv/x/y)",
            path,
            "a.mrxs",
        );
        assert_eq!(
            e.to_string(),
            "OpenSlide: Can't read 'Data0001.dat': gone (y)"
        );
    }

    #[test]
    fn files_openslide_does_not_read_have_no_vendor() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("x.mrxs");
        std::fs::write(&path, b"[GENERAL]\nnothing\n").expect("write");
        assert_eq!(vendor(&path), None);
        let e = open_page(&path, 0, "x.mrxs").err().expect("refused");
        assert!(!e.to_string().contains("/"), "{e}");
        assert!(!version().is_empty());
    }
}
