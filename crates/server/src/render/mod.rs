//! The one pipeline: a [`View`] and an [`ImageSource`] in, encoded bytes out.
//!
//! Steps, in order: pick the smallest pyramid level that still covers the output size;
//! answer with the stored JPEG tile when the view is exactly one tile and needs no
//! processing (passthrough); otherwise decode only the tiles the region touches (in
//! parallel), crop and resize in one pass, apply the quality, mirror and rotate, encode.

use crate::error::{Error, Result};
use iipsrv_core::info::ColourSpace;
use iipsrv_core::info::ImageInfo;
use iipsrv_core::pixel::colour;
use iipsrv_core::pixel::tone;
use iipsrv_core::pixel::{self, Interpolation, Window};
use iipsrv_core::raster::{FloatRaster, Raster};
use iipsrv_formats::codec::{avif, jpeg, png, tiff_writer, webp, Embedded};
use iipsrv_formats::error::EncodeError;
use iipsrv_formats::source::region::{compose, compose_float};
use iipsrv_formats::source::ImageSource;
pub mod budget;
pub mod watermark;

use budget::MemoryBudget;
use iipsrv_core::view::{Format, Process, View};
use std::sync::Arc;
use watermark::Watermark;

/// Most pixels an answer may have, whatever MAX_CVT says (about 300 MB of RGB).
pub(crate) const MAX_OUTPUT_PIXELS: u64 = 100_000_000;
/// Most pixels of one level read to make an answer (a huge image without reduced levels
/// cannot be rendered whole at a small size).
pub(crate) const MAX_SOURCE_PIXELS: u64 = 100_000_000;

/// Encoder and resampling settings from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Resampling filter.
    pub interpolation: Interpolation,
    /// JPEG quality when the request names none (JPEG_QUALITY).
    pub jpeg_quality: u8,
    /// PNG deflate effort 0-9 (PNG_QUALITY).
    pub png_level: u8,
    /// WebP quality 0-100, or `None` for lossless (WEBP_QUALITY, -1 for lossless).
    pub webp_quality: Option<u8>,
    /// AVIF quality 0-100, or `None` for lossless (AVIF_QUALITY, -1 for lossless).
    pub avif_quality: Option<u8>,
    /// The AV1 encoder of AVIF answers (AVIF_CODEC), one this libavif has.
    pub avif_codec: avif::Codec,
    /// TIFF answer compression (TIFF_COMPRESSION).
    pub tiff_compression: TiffCompression,
    /// TIFF_QUALITY: JPEG/WebP quality 0-100, deflate level 1-9 or zstd level 1-19 of TIFF
    /// answers when the request names none (IIP QLT), as the original's one number.
    pub tiff_quality: u8,
    /// Send stored JPEG tiles without re-encoding (CODEC_PASSTHROUGH).
    pub passthrough: bool,
    /// Largest ICC profile embedded in answers, in bytes; 0 embeds none (MAX_ICC/EMBED_ICC).
    pub max_icc: usize,
    /// MAX_LAYERS: JPEG2000 quality layers decoded.
    pub max_layers: MaxLayers,
    /// WATERMARK added to every answer (its Debug text names the file and settings).
    pub watermark: Option<Arc<Watermark>>,
    /// MAX_RENDER_MEMORY: what renders in progress may take together (its Debug text is
    /// the limit alone).
    pub memory: Arc<MemoryBudget>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            interpolation: Interpolation::Bilinear,
            jpeg_quality: 75,
            png_level: 1,
            webp_quality: Some(50),
            avif_quality: Some(50),
            avif_codec: avif::Codec::Auto,
            tiff_compression: TiffCompression::Deflate,
            tiff_quality: 1,
            passthrough: true,
            max_icc: 65_536,
            max_layers: MaxLayers::Half,
            watermark: None,
            memory: MemoryBudget::new(0),
        }
    }
}

/// The compression of TIFF answers (TIFF_COMPRESSION: 0 none, 1 LZW, 2 deflate, 3 JPEG,
/// 4 WebP, 5 zstd), at the answer's quality (TIFF_QUALITY or QLT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TiffCompression {
    /// Uncompressed.
    None,
    /// LZW.
    Lzw,
    /// Deflate (the default).
    Deflate,
    /// JPEG.
    Jpeg,
    /// WebP.
    Webp,
    /// zstd.
    Zstd,
}

impl TiffCompression {
    /// The compression of a TIFF_COMPRESSION code (deflate for an unknown one).
    pub fn from_setting(code: u8) -> TiffCompression {
        match code {
            0 => TiffCompression::None,
            1 => TiffCompression::Lzw,
            3 => TiffCompression::Jpeg,
            4 => TiffCompression::Webp,
            5 => TiffCompression::Zstd,
            _ => TiffCompression::Deflate,
        }
    }

    /// The writer's compression at `quality`: the JPEG or WebP quality (JPEG at least 1,
    /// as libjpeg takes 0), the deflate or zstd level (the writer clamps it to 1-9, 1-19).
    fn at(self, quality: u8) -> tiff_writer::Compression {
        use tiff_writer::Compression as C;
        match self {
            TiffCompression::None => C::None,
            TiffCompression::Lzw => C::Lzw,
            TiffCompression::Deflate => C::Deflate(quality),
            TiffCompression::Jpeg => C::Jpeg(quality.clamp(1, 100)),
            TiffCompression::Webp => C::Webp(Some(quality.min(100) as f32)),
            TiffCompression::Zstd => C::Zstd(quality),
        }
    }
}

/// How many JPEG2000 quality layers are decoded (MAX_LAYERS: 0 half of those in the
/// file, -1 all, n at most n); IIP's LYR may ask for fewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxLayers {
    /// Half of the file's layers (the source's default).
    Half,
    /// Every layer.
    All,
    /// At most this many (at least 1).
    AtMost(i32),
}

impl MaxLayers {
    /// The limit of a MAX_LAYERS value.
    pub fn from_setting(value: i32) -> MaxLayers {
        match value {
            0 => MaxLayers::Half,
            n if n < 0 => MaxLayers::All,
            n => MaxLayers::AtMost(n),
        }
    }

    /// The layer count to decode when the request asks `asked` (0 for no preference): the
    /// asked count within the limit; the source's convention (0 default, -1 all, n the
    /// first n) comes out.
    pub fn layers(self, asked: i32) -> i32 {
        match self {
            MaxLayers::AtMost(max) if asked > 0 && asked < max => asked,
            MaxLayers::AtMost(max) => max,
            MaxLayers::All if asked == 0 => -1,
            _ => asked,
        }
    }
}

/// An encoded answer.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The encoded image.
    pub bytes: Vec<u8>,
    /// Its MIME type.
    pub mime: &'static str,
    /// Whether the stored tile was sent as is.
    pub passthrough: bool,
}

/// Where the pixels of a view come from: a level and a box of it, plus the exact sub-pixel
/// window of that box to resample.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    /// Pyramid level index (0 = full resolution).
    pub level: usize,
    /// Box in level pixels: left, top, right, bottom (exclusive).
    pub bounds: (u32, u32, u32, u32),
    /// The window of the box that maps onto the output.
    pub window: Window,
    /// Whether the box must be resampled (false when it is already the output size).
    pub resize: bool,
}

/// Chooses the level and the box of it that a view needs.
pub(crate) fn plan(info: &ImageInfo, view: &View) -> Plan {
    let r = view.region;
    let fits = |i: usize| {
        let l = &info.levels[i];
        r.w as f64 / l.scale_x + 1.0 >= view.width as f64
            && r.h as f64 / l.scale_y + 1.0 >= view.height as f64
    };
    let level = (0..info.levels.len()).rev().find(|&i| fits(i)).unwrap_or(0);
    let l = &info.levels[level];
    let (fx0, fy0) = (r.x as f64 / l.scale_x, r.y as f64 / l.scale_y);
    let fx1 = ((r.x + r.w) as f64 / l.scale_x).min(l.width as f64);
    let fy1 = ((r.y + r.h) as f64 / l.scale_y).min(l.height as f64);
    let x0 = (fx0.floor() as u32).min(l.width - 1);
    let y0 = (fy0.floor() as u32).min(l.height - 1);
    let x1 = ((fx1 - 1e-9).ceil() as u32).clamp(x0 + 1, l.width);
    let y1 = ((fy1 - 1e-9).ceil() as u32).clamp(y0 + 1, l.height);
    let window = Window {
        left: fx0 - x0 as f64,
        top: fy0 - y0 as f64,
        width: (fx1 - fx0).max(1e-6),
        height: (fy1 - fy0).max(1e-6),
    };
    let exact = x1 - x0 == view.width
        && y1 - y0 == view.height
        && window.left.abs() < 1e-6
        && window.top.abs() < 1e-6;
    Plan {
        level,
        bounds: (x0, y0, x1, y1),
        window,
        resize: !exact,
    }
}

/// Pixels of the level `plan` reads.
fn source_pixels(plan: &Plan) -> u64 {
    let (x0, y0, x1, y1) = plan.bounds;
    (x1 - x0) as u64 * (y1 - y0) as u64
}

/// Whether rendering `view` from an image described by `info` is costly for want of a
/// smaller level: more than 16 megapixels of the level it reads, or more than one at more
/// than four of its pixels for each output pixel (a view zoomed out more than twice). Such
/// views of a flat image wait for its pyramid.
pub(crate) fn needs_smaller_level(info: &ImageInfo, view: &View) -> bool {
    let read = source_pixels(&plan(info, view));
    read > (16 << 20) || (read > (1 << 20) && read > 4 * view.width as u64 * view.height as u64)
}

/// Renders a view of a source into encoded bytes.
pub fn render(src: &dyn ImageSource, view: &View, settings: &Settings) -> Result<Rendered> {
    let info = src.info();
    if view.format == Format::Avif && !avif::BUILT {
        return Err(not_built(EncodeError::AvifNotBuilt));
    }
    if view.width as u64 * view.height as u64 > MAX_OUTPUT_PIXELS {
        return Err(Error::bad(format!(
            "requested size {}x{} is larger than this server renders",
            view.width, view.height
        )));
    }
    let layered = src.with_layers(settings.max_layers.layers(view.layers));
    let src = layered.as_ref().map_or(src, |(_, s)| s.as_ref());
    let plan = plan(info, view);
    if source_pixels(&plan) > MAX_SOURCE_PIXELS {
        return Err(Error::bad(
            "region too large to render from this image (no pyramid level small enough)",
        ));
    }
    if let Some(stored) = passthrough(src, view, &plan, settings)? {
        return Ok(stored);
    }
    let _reserved = reserve_memory(info, view, &plan, settings)?;
    let hist = if view.needs_histogram() {
        Some(histogram(src)?)
    } else {
        None
    };
    let pixels = level_pixels(src, plan.level, plan.bounds, &view.process, hist.as_ref())?;
    let pixels = if plan.resize {
        pixel::resize(
            &pixels,
            plan.window,
            view.width,
            view.height,
            settings.interpolation,
        )
    } else {
        pixels
    };
    let level = hist.as_ref().map_or(128, tone::otsu);
    let pixels = pixel::apply_quality(pixels, view.quality, level);
    let pixels = match (&hist, view.process.equalise) {
        (Some(h), true) => tone::equalise(pixels, h),
        _ => pixels,
    };
    let mut pixels = pixel::apply_rotation(pixels, view.rotation, view.format.has_alpha());
    if let Some(wm) = &settings.watermark {
        let l = &info.levels[0];
        let seed = xxhash_rust::xxh3::xxh3_64(view.cache_key().as_bytes());
        wm.apply(&mut pixels, 2 * l.tile_width.max(l.tile_height), seed);
    }
    let extra = Embedded {
        icc: icc_for(info, pixels.channels, settings),
        xmp: (info.metadata.xmp.as_deref())
            .filter(|x| x.len() <= jpeg::MAX_XMP && !one_tile(info, &plan)),
    };
    let bytes = encode(&pixels, view.format, view.encoder_quality, settings, extra)?;
    Ok(Rendered {
        bytes,
        mime: view.format.mime(),
        passthrough: false,
    })
}

/// The render memory a view needs (MAX_RENDER_MEMORY), held until the answer is made; 503
/// when renders in progress hold too much already.
fn reserve_memory(
    info: &ImageInfo,
    view: &View,
    plan: &Plan,
    settings: &Settings,
) -> Result<budget::Reservation> {
    let (x0, y0, x1, y1) = plan.bounds;
    let encoder = match view.format {
        Format::Avif if view.encoder_quality.or(settings.avif_quality).is_none() => {
            budget::AVIF_LOSSLESS_ENCODER_BYTES
        }
        Format::Avif => budget::AVIF_ENCODER_BYTES,
        _ => 0,
    };
    let needs = budget::estimate(info, view, (x1 - x0) as u64 * (y1 - y0) as u64, encoder);
    settings.memory.reserve(needs).ok_or_else(|| {
        Error::Overloaded(format!(
            "server busy: this answer needs about {} MB of render memory, retry later",
            needs.div_ceil(1 << 20)
        ))
    })
}

/// The stored tile as the answer, when [`render`] would send it as it is (passthrough);
/// `None` when the view needs decoding. Costs one positioned read, no decoding.
pub fn stored_tile(
    src: &dyn ImageSource,
    view: &View,
    settings: &Settings,
) -> Result<Option<Rendered>> {
    passthrough(src, view, &plan(src.info(), view), settings)
}

/// Whether the answer is exactly one tile of its level as stored (what the original's
/// tile commands answer): the original embeds the XMP packet in its other answers (CVT).
fn one_tile(info: &ImageInfo, plan: &Plan) -> bool {
    let l = &info.levels[plan.level];
    let (x0, y0, x1, y1) = plan.bounds;
    !plan.resize
        && x0 % l.tile_width == 0
        && y0 % l.tile_height == 0
        && x1 - x0 == l.tile_width.min(l.width - x0)
        && y1 - y0 == l.tile_height.min(l.height - y0)
}

/// The ICC profile to embed: only when the answer keeps the image's colour model (a grey
/// answer of a colour image cannot carry its RGB profile), within MAX_ICC.
fn icc_for<'a>(info: &'a ImageInfo, out_channels: u8, settings: &Settings) -> Option<&'a [u8]> {
    let icc = info.icc.as_deref()?;
    let colour_kept =
        (out_channels >= 3) == (info.channels >= 3) && info.colour != ColourSpace::CieLab;
    (colour_kept && !icc.is_empty() && icc.len() <= settings.max_icc).then_some(icc)
}

/// The image's histogram, from the first tile of its smallest level as the original does:
/// cheap, and the same for every tile of the image.
fn histogram(src: &dyn ImageSource) -> Result<tone::Histogram> {
    let smallest = src.info().levels.len() - 1;
    let l = &src.info().levels[smallest];
    let (w, h) = (l.width.min(l.tile_width), l.height.min(l.tile_height));
    let plain = Process::default();
    let pixels = level_pixels(src, smallest, (0, 0, w, h), &plain, None)?;
    Ok(tone::histogram(&pixels))
}

/// A box of a level as processed 8-bit pixels. 8-bit images go through the float pipeline
/// only when the view asks for processing; other images always do, from their own units
/// (CIELAB by way of sRGB), which is how they become 8-bit.
pub(crate) fn level_pixels(
    src: &dyn ImageSource,
    level: usize,
    (x0, y0, x1, y1): (u32, u32, u32, u32),
    p: &Process,
    hist: Option<&tone::Histogram>,
) -> Result<Raster> {
    let info = src.info();
    if !info.needs_float() {
        let pixels = compose(src, level, x0, y0, x1, y1)?;
        return Ok(if p.needs_float() {
            tone::apply(&pixels, p, hist)
        } else {
            pixels
        });
    }
    let (floats, ranges) = display_floats(info, compose_float(src, level, x0, y0, x1, y1)?)?;
    Ok(tone::apply_float(floats, &ranges, p, hist))
}

/// The sample values of a box of a level (left, top, right, bottom) in the image's own
/// units, for IIP's pixel queries (SPECTRA, PFL): they answer numbers, not pictures, so
/// no processing and no encoder follow.
pub(crate) fn sample_values(
    src: &dyn ImageSource,
    level: usize,
    (x0, y0, x1, y1): (u32, u32, u32, u32),
) -> Result<FloatRaster> {
    Ok(compose_float(src, level, x0, y0, x1, y1)?)
}

/// Float pixels ready for the tone pipeline with each channel's default range: CIELAB
/// converted to sRGB (0-255), other images as they are with their min/max sample values.
fn display_floats(info: &ImageInfo, f: FloatRaster) -> Result<(FloatRaster, Vec<(f32, f32)>)> {
    if info.colour == ColourSpace::CieLab {
        let rgb = colour::lab_to_srgb(&f)
            .ok_or_else(|| Error::Internal("the colour engine could not convert CIELAB".into()))?;
        return Ok((rgb, vec![(0.0, 255.0); 3]));
    }
    let ranges = info
        .min_max
        .iter()
        .map(|&(lo, hi)| (lo as f32, hi as f32))
        .collect();
    Ok((f, ranges))
}

/// The stored JPEG tile when the view is exactly one whole stored tile, unprocessed.
fn passthrough(
    src: &dyn ImageSource,
    view: &View,
    plan: &Plan,
    s: &Settings,
) -> Result<Option<Rendered>> {
    let l = &src.info().levels[plan.level];
    let (x0, y0, x1, y1) = plan.bounds;
    let whole_tile = x0 % l.tile_width == 0
        && y0 % l.tile_height == 0
        && x1 - x0 == l.tile_width
        && y1 - y0 == l.tile_height;
    if !(s.passthrough
        && s.watermark.is_none()
        && !plan.resize
        && whole_tile
        && view.is_plain()
        && view.format == Format::Jpeg
        && view.encoder_quality.is_none())
    {
        return Ok(None);
    }
    let Some(stream) = src.jpeg_tile(plan.level, x0 / l.tile_width, y0 / l.tile_height)? else {
        return Ok(None);
    };
    let bytes = match icc_for(src.info(), src.info().channels, s) {
        Some(icc) => jpeg::insert_icc(&stream, icc),
        None => stream,
    };
    Ok(Some(Rendered {
        bytes,
        mime: Format::Jpeg.mime(),
        passthrough: true,
    }))
}

/// Encodes pixels in the asked format, with the profile and XMP packet in `extra`;
/// `quality` overrides the configured one.
pub fn encode(
    pixels: &Raster,
    format: Format,
    quality: Option<u8>,
    s: &Settings,
    extra: Embedded,
) -> Result<Vec<u8>> {
    let failed = |e: EncodeError| match e {
        EncodeError::AvifNotBuilt => not_built(e),
        e => Error::Internal(format!("encoding failed: {e}")),
    };
    match format {
        Format::Jpeg => {
            let out = jpeg::encode(pixels, quality.unwrap_or(s.jpeg_quality)).map_err(failed)?;
            Ok(jpeg::with_embedded(out, extra))
        }
        Format::Png => {
            png::encode(pixels, quality.map_or(s.png_level, |q| q.min(9)), extra).map_err(failed)
        }
        Format::Webp => {
            let q = quality.or(s.webp_quality);
            let out = webp::encode(pixels, q.map(f32::from)).map_err(failed)?;
            // WebP has no grey mode: a grey image is encoded as RGB, which a grey profile
            // does not describe.
            let icc = extra.icc.filter(|_| pixels.channels >= 3);
            Ok(webp::with_embedded(out, Embedded { icc, ..extra }))
        }
        Format::Tiff => {
            let c = s.tiff_compression.at(quality.unwrap_or(s.tiff_quality));
            tiff_writer::write(std::slice::from_ref(pixels), None, c, extra).map_err(failed)
        }
        Format::Avif => {
            let options = avif_options(pixels, quality.or(s.avif_quality), s.avif_codec);
            avif::encode(pixels, &options, extra).map_err(failed)
        }
    }
}

/// The 501 of a format this build leaves out.
fn not_built(e: EncodeError) -> Error {
    Error::Unsupported(e.to_string())
}

/// Pixels above which an AVIF answer is encoded on every core: a tile is quicker on one
/// thread (the pool runs other requests beside it), a large region is not.
const AVIF_THREADED_PIXELS: u64 = 1 << 20;

/// The encoder options of an AVIF answer of `pixels`.
fn avif_options(pixels: &Raster, quality: Option<u8>, codec: avif::Codec) -> avif::Options {
    let mut options = avif::Options::new(quality, codec);
    if pixels.width as u64 * pixels.height as u64 > AVIF_THREADED_PIXELS {
        options.threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    }
    options
}
