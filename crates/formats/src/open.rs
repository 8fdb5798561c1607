//! Opening an image: its format recognised by its first bytes (TIFF, BigTIFF, JPEG2000,
//! JPEG, PNG), then the source for that format; flat images get their levels made in
//! memory. Shared by the server's registry and the `check` and `convert` tools.

use crate::bytes::{ByteSource, FileBytes};
use crate::error::{SourceError, SourceResult};
use crate::source::jpeg2000::{self, Jpeg2000Image};
use crate::source::memory::{self, MemoryImage};
use crate::source::region;
use crate::source::tiff::TiffImage;
use crate::source::ImageSource;
use iipsrv_core::sequence::Views;
use std::path::Path;
use std::sync::Arc;

/// Opens a file with the source for its format, recognised by its first bytes.
pub fn open_source(path: &Path) -> SourceResult<Arc<dyn ImageSource>> {
    Ok(open_page(path, 0)?.0)
}

/// Opens page `page` of a file (0 unless it is a multi-page TIFF stack), with the views of
/// the stack when it is one.
pub fn open_page(path: &Path, page: usize) -> SourceResult<(Arc<dyn ImageSource>, Option<Views>)> {
    match open_file(path, page, None)? {
        Opening::Ready(source, views) => Ok((source, views)),
        Opening::Flat(_) => Err(SourceError::unsupported("flat image not opened")),
    }
}

/// Opens page `page` of a file as [`open_bytes`] does.
pub fn open_file(path: &Path, page: usize, flat_over: Option<u64>) -> SourceResult<Opening> {
    // Warnings name the file, not its path: no log line at the default verbosity shows
    // where the images are kept.
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    open_bytes(Arc::new(FileBytes::open(path)?), page, &name, flat_over)
}

/// What opening an image gives: a source ready to serve, or — when the caller set a
/// threshold — word of a flat image over it, left undecoded for the caller to build a
/// pyramid of.
pub enum Opening {
    /// The source, with the views of a stack.
    Ready(Arc<dyn ImageSource>, Option<Views>),
    /// A single-level image of more pixels than the threshold.
    Flat(FlatImage),
}

/// A flat image (one level: a JPEG, a PNG, a striped or single-level TIFF) that was not
/// decoded.
pub struct FlatImage {
    /// Full-resolution width in pixels.
    pub width: u32,
    /// Full-resolution height in pixels.
    pub height: u32,
    /// The image as stored, when its stored level can be read in parts (a TIFF's strips or
    /// tiles), for the views near full resolution; None for a JPEG or PNG.
    pub stored: Option<Arc<dyn ImageSource>>,
}

/// Opens page `page` of the image in `bytes` (a file or an object, `name` in warnings)
/// with the source for its format, recognised by its first bytes. A flat image of more
/// than `flat_over` pixels is not decoded but answered as [`Opening::Flat`]; below it (or
/// with no threshold), flat images get their levels made in memory.
pub fn open_bytes(
    bytes: Arc<dyn ByteSource>,
    page: usize,
    name: &str,
    flat_over: Option<u64>,
) -> SourceResult<Opening> {
    let head = bytes.read_at(0, bytes.len().min(12) as usize)?;
    let over = |w: u32, h: u32| flat_over.is_some_and(|t| w as u64 * h as u64 > t);
    let source = match Kind::of(&head) {
        Some(Kind::Tiff) => {
            let tiff = TiffImage::open_page(bytes.clone(), page);
            if let Some(slide) = foreign_slide(&bytes, Some(&tiff), page, name)? {
                return Ok(Opening::Ready(slide, None));
            }
            let tiff = tiff?;
            let views = (!tiff.pages().is_empty()).then(|| Views::of_pages(tiff.pages()));
            let info = tiff.info();
            let buildable = info.levels.len() == 1 && plain_samples(info);
            if views.is_none() && buildable && over(info.width, info.height) {
                return Ok(Opening::Flat(FlatImage {
                    width: info.width,
                    height: info.height,
                    stored: Some(Arc::new(tiff)),
                }));
            }
            return Ok(Opening::Ready(pyramid_or_memory(tiff, name)?, views));
        }
        None => {
            return match foreign_slide(&bytes, None, page, name)? {
                Some(slide) => Ok(Opening::Ready(slide, None)),
                None => Err(SourceError::unsupported(UNKNOWN_FORMAT)),
            }
        }
        _ if page != 0 => return Err(SourceError::NoSuchPage { page }),
        Some(Kind::Jpeg2000) => Arc::new(Jpeg2000Image::open(bytes)?) as Arc<dyn ImageSource>,
        Some(Kind::Flat) => {
            if let Some((width, height)) = flat_over.and_then(|_| flat_head(bytes.as_ref())) {
                if over(width, height) {
                    let stored = None;
                    return Ok(Opening::Flat(FlatImage {
                        width,
                        height,
                        stored,
                    }));
                }
            }
            decode_flat(bytes.as_ref(), name)?
        }
    };
    Ok(Opening::Ready(source, None))
}

/// What a file no reader takes is answered with.
#[cfg(feature = "openslide")]
const UNKNOWN_FORMAT: &str = "not a TIFF, JPEG2000, JPEG or PNG image, nor a slide OpenSlide reads";
/// What a file no reader takes is answered with.
#[cfg(not(feature = "openslide"))]
const UNKNOWN_FORMAT: &str = "not a TIFF, JPEG2000, JPEG or PNG image (this server was built \
     without OpenSlide, which reads other slide formats)";

/// Page `page` of a slide read through OpenSlide, when the image in `bytes` is a local
/// file OpenSlide names a vendor for and no native reader claims. `native` is our TIFF
/// reader's opening of that page (None: not a TIFF); see [`unclaimed`].
#[cfg(feature = "openslide")]
fn foreign_slide(
    bytes: &Arc<dyn ByteSource>,
    native: Option<&SourceResult<TiffImage>>,
    page: usize,
    name: &str,
) -> SourceResult<Option<Arc<dyn ImageSource>>> {
    if native.is_some_and(|n| !unclaimed(n, bytes, page)) {
        return Ok(None);
    }
    let Some(path) = bytes.local_path() else {
        return Ok(None);
    };
    match crate::source::openslide::vendor(path) {
        Some(_) => crate::source::openslide::open_page(path, page, name).map(Some),
        None => Ok(None),
    }
}

/// Whether OpenSlide may be asked for page `page` of a TIFF, given our reader's opening of
/// it: when our reader opened page 0 but no native slide module recognised it, when it
/// refused the file as unsupported, or when it has no such associated image and page 0 is
/// no slide we recognise. A refusal of a damaged file or of one over a limit stands: the
/// limits are not to be gone round through another parser, nor is a slide we read asked
/// of OpenSlide again for each missing label.
#[cfg(feature = "openslide")]
fn unclaimed(native: &SourceResult<TiffImage>, bytes: &Arc<dyn ByteSource>, page: usize) -> bool {
    use crate::source::slide::Associated;
    match native {
        Ok(tiff) => page == 0 && !named_vendor(tiff.info()),
        Err(SourceError::Unsupported { .. }) => true,
        Err(SourceError::NoSuchPage { .. }) if Associated::of_page(page).is_some() => {
            TiffImage::open(bytes.clone()).is_ok_and(|t| !named_vendor(t.info()))
        }
        Err(_) => false,
    }
}

/// Without OpenSlide no other reader is asked.
#[cfg(not(feature = "openslide"))]
fn foreign_slide(
    _: &Arc<dyn ByteSource>,
    _: Option<&SourceResult<TiffImage>>,
    _: usize,
    _: &str,
) -> SourceResult<Option<Arc<dyn ImageSource>>> {
    Ok(None)
}

/// Whether a native slide module recognised the image (its properties name the vendor,
/// as OpenSlide names it).
#[cfg(feature = "openslide")]
fn named_vendor(info: &iipsrv_core::info::ImageInfo) -> bool {
    info.metadata
        .properties
        .iter()
        .any(|(k, _)| k == "openslide.vendor")
}

/// The OpenSlide vendor of the local file at `path` when the server reads it through
/// OpenSlide (by the rule the server opens files with: [`unclaimed`]); None otherwise, and
/// always in a build without OpenSlide.
pub fn openslide_vendor(path: &Path) -> Option<String> {
    #[cfg(feature = "openslide")]
    {
        let bytes: Arc<dyn ByteSource> = Arc::new(FileBytes::open(path).ok()?);
        let head = bytes.read_at(0, bytes.len().min(12) as usize).ok()?;
        match Kind::of(&head) {
            Some(Kind::Tiff) if !unclaimed(&TiffImage::open(bytes.clone()), &bytes, 0) => None,
            Some(Kind::Tiff) | None => crate::source::openslide::vendor(path),
            Some(_) => None,
        }
    }
    #[cfg(not(feature = "openslide"))]
    {
        let _ = path;
        None
    }
}

/// The width and height of a JPEG or PNG from its first bytes; None when they are not
/// there (a JPEG whose frame header comes after long metadata is then decoded as usual).
fn flat_head(bytes: &dyn ByteSource) -> Option<(u32, u32)> {
    flat_size(
        &bytes
            .read_at(0, bytes.len().min(FLAT_HEAD_BYTES) as usize)
            .ok()?,
    )
    .ok()
}

/// A JPEG or PNG decoded whole, its levels made in memory.
fn decode_flat(bytes: &dyn ByteSource, name: &str) -> SourceResult<Arc<dyn ImageSource>> {
    if bytes.len() > MAX_FLAT_FILE_BYTES {
        return Err(SourceError::over_limit(
            "image file too large to decode whole; convert it to a pyramidal TIFF",
            bytes.len(),
            MAX_FLAT_FILE_BYTES,
        ));
    }
    let data = bytes.read_at(0, bytes.len() as usize)?;
    let image = MemoryImage::from_file_bytes(&data)?;
    warn_flat(name);
    Ok(Arc::new(image))
}

/// Largest JPEG or PNG file decoded whole.
const MAX_FLAT_FILE_BYTES: u64 = 1 << 30;

/// The formats we open, by their first bytes.
pub enum Kind {
    /// Classic TIFF or BigTIFF, either byte order.
    Tiff,
    /// A JP2 file or a raw JPEG2000 codestream.
    Jpeg2000,
    /// JPEG or PNG: no pyramid, decoded whole.
    Flat,
}

impl Kind {
    /// The format of a file starting with `head` (its first 12 bytes suffice).
    pub fn of(head: &[u8]) -> Option<Kind> {
        match head {
            [b'I', b'I', 42 | 43, 0, ..] | [b'M', b'M', 0, 42 | 43, ..] => Some(Kind::Tiff),
            [0xff, 0xd8, 0xff, ..] | [0x89, b'P', b'N', b'G', ..] => Some(Kind::Flat),
            _ => jpeg2000::sniff(head).map(|_| Kind::Jpeg2000),
        }
    }
}

/// A TIFF with a pyramid as it is; one without (a single level larger than two tiles
/// across) decoded into memory with levels made there, when it fits.
fn pyramid_or_memory(tiff: TiffImage, name: &str) -> SourceResult<Arc<dyn ImageSource>> {
    let info = tiff.info();
    if !is_flat(info) {
        return Ok(Arc::new(tiff));
    }
    warn_flat(name);
    if info.width as u64 * info.height as u64 > memory::MAX_PIXELS {
        return Ok(Arc::new(tiff));
    }
    let full = region::compose(&tiff, 0, 0, 0, info.width, info.height)?;
    Ok(Arc::new(MemoryImage::new(full, info.clone())))
}

/// Whether a TIFF has no pyramid worth the name and is decoded into memory: a single level
/// larger than 512 pixels of 8-bit samples (others are served from their stored level).
fn is_flat(info: &iipsrv_core::info::ImageInfo) -> bool {
    info.levels.len() == 1 && info.width.max(info.height) > 512 && !info.needs_float()
}

/// Whether an image's samples are ones the pyramid builder takes: 8 or 16-bit unsigned
/// grey or RGB, with or without alpha (not floats, signed, CIELAB or more channels).
pub(crate) fn plain_samples(info: &iipsrv_core::info::ImageInfo) -> bool {
    info.sample_format == iipsrv_core::info::SampleFormat::Unsigned
        && matches!(info.bits_per_sample, 8 | 16)
        && (1..=4).contains(&info.channels)
        && info.colour != iipsrv_core::info::ColourSpace::CieLab
}

fn warn_flat(name: &str) {
    tracing::warn!(
        "{name} has no pyramid: its levels are built in memory when opened; a tiled pyramidal \
         TIFF (vips tiffsave --tile --pyramid) would be faster and lighter"
    );
}

/// What a list of images shows of one: its format, size and number of levels, read from
/// its headers alone. Unlike [`open_page`], no pixel is decoded: a flat image is not
/// decoded into memory just to be listed.
pub struct Outline {
    /// The format.
    pub kind: Kind,
    /// Full-resolution width in pixels.
    pub width: u32,
    /// Full-resolution height in pixels.
    pub height: u32,
    /// Resolution levels stored in the file (1 for a flat image).
    pub levels: usize,
}

/// Bytes read from the start of a JPEG or PNG file to find its size: the frame header of
/// a JPEG follows its EXIF, XMP and ICC segments, which seldom take more.
const FLAT_HEAD_BYTES: u64 = 256 * 1024;

/// The [`Outline`] of the image file at `path`, from its headers.
pub fn outline(path: &Path) -> SourceResult<Outline> {
    let bytes: Arc<dyn ByteSource> = Arc::new(FileBytes::open(path)?);
    let head = bytes.read_at(0, bytes.len().min(FLAT_HEAD_BYTES) as usize)?;
    let kind = Kind::of(&head).ok_or_else(|| SourceError::unsupported("not an image we serve"))?;
    let (width, height, levels) = match kind {
        Kind::Tiff => sizes(TiffImage::open(bytes)?.info()),
        Kind::Jpeg2000 => sizes(Jpeg2000Image::open(bytes)?.info()),
        Kind::Flat => {
            let (w, h) = flat_size(&head)?;
            (w, h, 1)
        }
    };
    Ok(Outline {
        kind,
        width,
        height,
        levels,
    })
}

/// Width, height and number of levels of an image.
fn sizes(info: &iipsrv_core::info::ImageInfo) -> (u32, u32, usize) {
    (info.width, info.height, info.levels.len())
}

/// Width and height of a PNG (its IHDR chunk comes first) or a JPEG (its frame header)
/// from the first bytes of the file.
fn flat_size(head: &[u8]) -> SourceResult<(u32, u32)> {
    if head.starts_with(b"\x89PNG") {
        let field = |at: usize| head.get(at..at + 4).map(|b| [b[0], b[1], b[2], b[3]]);
        return match (field(16), field(20)) {
            (Some(w), Some(h)) => Ok((u32::from_be_bytes(w), u32::from_be_bytes(h))),
            _ => Err(SourceError::corrupt("PNG header truncated")),
        };
    }
    let (w, h, _) = crate::codec::jpeg::dimensions(head)?;
    Ok((w, h))
}

/// The format of a file from its first bytes (None when it is no image we serve; used to
/// list images).
pub fn kind_of_file(path: &Path) -> Option<Kind> {
    use std::io::Read;
    let mut head = [0u8; 12];
    let n = crate::bytes::open_regular(path)
        .ok()?
        .0
        .read(&mut head)
        .ok()?;
    Kind::of(&head[..n])
}
