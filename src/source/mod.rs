//! Image sources: they read pixels and describe images, and know nothing of protocols.
//!
//! A source answers three questions: what the image is ([`ImageInfo`]), what the decoded
//! pixels of one stored tile are ([`ImageSource::read_tile`]), and — for passthrough — what
//! the stored tile is as a complete JPEG stream ([`ImageSource::jpeg_tile`]).

pub mod bytes;
pub mod cached;
pub mod jpeg2000;
pub mod memory;
pub mod remote;
pub mod samples;
pub mod tiff;

use crate::raster::{FloatRaster, Raster};
use std::sync::Arc;

/// Why a source could not answer. Converted to the request layer's error by the caller.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// The file is valid but uses a feature we do not read (a compression, a layout).
    #[error("{0}")]
    Unsupported(String),
    /// The file is damaged: a bad header, offsets past the end, undecodable data.
    #[error("{0}")]
    Corrupt(String),
    /// The file asks for more than the configured limits (huge tiles, too many entries).
    #[error("{0}")]
    Limit(String),
    /// The object store or HTTP server holding the image failed or could not be reached.
    #[error("{0}")]
    Remote(String),
    /// Reading failed.
    #[error("{0}")]
    Io(String),
}

/// Result of a source operation.
pub type SourceResult<T> = Result<T, SourceError>;

/// How samples are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFormat {
    /// Unsigned integer.
    Unsigned,
    /// Signed integer.
    Signed,
    /// IEEE floating point.
    Float,
}

/// Colour interpretation of the stored samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColourSpace {
    /// One grey channel (plus optional alpha).
    Grey,
    /// Red, green, blue (plus optional alpha).
    Rgb,
    /// CIE L*a*b*.
    CieLab,
    /// Anything else (multispectral bands, separated inks).
    Other,
}

/// One resolution of the pyramid, index 0 being full resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Stored tile width (the image width for strips).
    pub tile_width: u32,
    /// Stored tile height (rows per strip for strips).
    pub tile_height: u32,
    /// Full-resolution pixels per level pixel, horizontally (1 for level 0; exactly 2^k
    /// for dyadic pyramids).
    pub scale_x: f64,
    /// Full-resolution pixels per level pixel, vertically.
    pub scale_y: f64,
}

impl Level {
    /// Tiles across.
    pub fn tiles_across(&self) -> u32 {
        self.width.div_ceil(self.tile_width)
    }

    /// Tiles down.
    pub fn tiles_down(&self) -> u32 {
        self.height.div_ceil(self.tile_height)
    }
}

/// Descriptive metadata shown by OBJ and info.json.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata {
    /// TIFF ImageDescription.
    pub description: Option<String>,
    /// TIFF Artist.
    pub artist: Option<String>,
    /// TIFF Copyright.
    pub copyright: Option<String>,
    /// TIFF DateTime.
    pub date: Option<String>,
    /// TIFF Software.
    pub software: Option<String>,
    /// TIFF Make.
    pub make: Option<String>,
    /// TIFF Model.
    pub model: Option<String>,
    /// Pixels per centimetre, horizontally and vertically, when the file says.
    pub pixels_per_cm: Option<(f64, f64)>,
}

/// What an image is: size, pyramid, samples, colour, metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageInfo {
    /// Full-resolution width.
    pub width: u32,
    /// Full-resolution height.
    pub height: u32,
    /// The pyramid, largest first.
    pub levels: Vec<Level>,
    /// Samples per pixel.
    pub channels: u8,
    /// Bits per sample.
    pub bits_per_sample: u16,
    /// Sample representation.
    pub sample_format: SampleFormat,
    /// Colour interpretation.
    pub colour: ColourSpace,
    /// Per-channel (min, max) of the sample values, from SMin/SMaxSampleValue or the type.
    pub min_max: Vec<(f64, f64)>,
    /// Embedded ICC profile, if any.
    pub icc: Option<Arc<Vec<u8>>>,
    /// Descriptive metadata.
    pub metadata: Metadata,
}

impl ImageInfo {
    /// Whether tiles must go through [`ImageSource::read_tile_float`] and the float
    /// pipeline: samples that are not 8-bit unsigned, CIELAB, or more bands than an 8-bit
    /// answer carries.
    pub fn needs_float(&self) -> bool {
        self.bits_per_sample != 8
            || self.sample_format != SampleFormat::Unsigned
            || self.colour == ColourSpace::CieLab
            || self.channels > 4
    }
}

/// An open image that can hand out decoded tiles. Implementations are shared between
/// threads: every method takes `&self`.
pub trait ImageSource: Send + Sync {
    /// The image description.
    fn info(&self) -> &ImageInfo;

    /// Decodes one stored tile of `level` (tile column `tx`, row `ty`) into 8-bit pixels of
    /// `info().channels` channels. Edge tiles come back at their stored size.
    fn read_tile(&self, level: usize, tx: u32, ty: u32) -> SourceResult<Raster>;

    /// [`ImageSource::read_tile`], possibly shared with a cache (no copy of a cached tile).
    fn read_tile_shared(&self, level: usize, tx: u32, ty: u32) -> SourceResult<Arc<Raster>> {
        self.read_tile(level, tx, ty).map(Arc::new)
    }

    /// Whether keeping this image's decoded tiles is worth their memory: decoding a tile
    /// costs much more than copying it (compressed tiles). False by default.
    fn worth_caching(&self) -> bool {
        false
    }

    /// Decodes one stored tile into floats in the image's own units: integer sample values
    /// as stored, floats as stored, CIELAB as L* 0-100 and signed a*, b*. Every image
    /// answers this (8-bit images through [`ImageSource::read_tile`]); images for which
    /// [`ImageInfo::needs_float`] holds answer only this.
    fn read_tile_float(&self, level: usize, tx: u32, ty: u32) -> SourceResult<FloatRaster> {
        self.read_tile(level, tx, ty).map(|r| r.to_float())
    }

    /// A box of a level (left, top, right, bottom) decoded in one piece, for sources where
    /// that is cheaper than tile by tile (JPEG2000); `None` when tiles are the way.
    fn read_region(
        &self,
        level: usize,
        area: (u32, u32, u32, u32),
    ) -> Option<SourceResult<Raster>> {
        let _ = (level, area);
        None
    }

    /// [`ImageSource::read_region`] as floats in the image's own units.
    fn read_region_float(
        &self,
        level: usize,
        area: (u32, u32, u32, u32),
    ) -> Option<SourceResult<FloatRaster>> {
        let _ = (level, area);
        None
    }

    /// This image decoding `layers` quality layers (0 the source's default, -1 all, n the
    /// first n), for sources with progressive quality (JPEG2000); `None` when the source
    /// has no such thing or the count changes nothing.
    fn with_layers(&self, layers: i32) -> Option<Arc<dyn ImageSource>> {
        let _ = layers;
        None
    }

    /// Says that these tiles of `level` will be read soon (a region's), so that a remote
    /// source fetches their bytes together. Nothing to do for local files.
    fn prefetch_tiles(&self, level: usize, tiles: &[(u32, u32)]) -> SourceResult<()> {
        let _ = (level, tiles);
        Ok(())
    }

    /// Whether reading pixels may wait on the network (an object store): the quick path
    /// leaves such images to the worker pool.
    fn is_remote(&self) -> bool {
        false
    }

    /// The stored tile as a complete, standalone JPEG stream when it is JPEG-compressed
    /// 8-bit data; `None` otherwise. Used to answer without decoding.
    fn jpeg_tile(&self, level: usize, tx: u32, ty: u32) -> SourceResult<Option<Vec<u8>>>;
}

/// The description of a plain 8-bit image of `channels` channels (grey, grey + alpha, RGB,
/// RGBA) with no levels yet and no metadata.
pub fn plain_info(width: u32, height: u32, channels: u8) -> ImageInfo {
    ImageInfo {
        width,
        height,
        levels: Vec::new(),
        channels,
        bits_per_sample: 8,
        sample_format: SampleFormat::Unsigned,
        colour: if channels >= 3 {
            ColourSpace::Rgb
        } else {
            ColourSpace::Grey
        },
        min_max: vec![(0.0, 255.0); channels as usize],
        icc: None,
        metadata: Metadata::default(),
    }
}

/// An 8-bit RGB image description with a dyadic pyramid of `levels` levels of 256 px
/// tiles (libvips sizes: each level the floor of half the previous), for tests and the
/// fuzzers, which need an image to build views against.
pub fn dyadic_info(width: u32, height: u32, levels: usize) -> ImageInfo {
    let level = |k: i32| Level {
        width: width >> k,
        height: height >> k,
        tile_width: 256,
        tile_height: 256,
        scale_x: 2f64.powi(k),
        scale_y: 2f64.powi(k),
    };
    ImageInfo {
        levels: (0..levels as i32).map(level).collect(),
        ..plain_info(width, height, 3)
    }
}
