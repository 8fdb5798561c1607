//! What an image is, as every layer sees it: size, pyramid levels, channels, sample format,
//! colour space, ICC profile and metadata. Pure data; sources fill it in, protocols
//! describe it, the pipeline reads it.

use std::sync::Arc;

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
    /// The XMP packet (TIFF XMLPacket, a JPEG's APP1 XMP segment), carried into answers
    /// as the original does.
    pub xmp: Option<String>,
    /// A microscope slide's own properties, named as OpenSlide names them
    /// (`aperio.AppMag`, `openslide.objective-power`, …), in the file's order; empty for
    /// other images.
    pub properties: Vec<(String, String)>,
    /// The channels of a multi-channel (fluorescence) image, in sample order, when the file
    /// names them (OME-XML); empty otherwise.
    pub channels: Vec<Channel>,
}

/// One named channel of a multi-channel image.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Channel {
    /// The channel's name (a dye or filter, e.g. `DAPI`).
    pub name: Option<String>,
    /// Its display colour as RGBA, when the file gives one.
    pub colour: Option<[u8; 4]>,
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
    /// Bits per sample of the pixels the source hands out (what the pipeline reads).
    pub bits_per_sample: u16,
    /// Bits per sample as the file stores them, which OBJ Bits-per-channel reports: the
    /// same as `bits_per_sample` unless the source widens samples as it reads them (1, 2
    /// and 4-bit TIFF samples come out as 8-bit, as the original unpacks bilevel tiles).
    pub stored_bits: u16,
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
    /// Whether tiles must go through `ImageSource::read_tile_float` (iipsrv-formats) and the float
    /// pipeline: samples that are not 8-bit unsigned, CIELAB, or more bands than an 8-bit
    /// answer carries.
    pub fn needs_float(&self) -> bool {
        self.bits_per_sample != 8
            || self.sample_format != SampleFormat::Unsigned
            || self.colour == ColourSpace::CieLab
            || self.channels > 4
    }
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
        stored_bits: 8,
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

/// One page of a multi-page TIFF stack: a top-level IFD marked as a page (SubfileType 2),
/// with its reduced levels in SubIFDs.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// DocumentName, shown by OBJ=stack and as the SPECTRA wavelength.
    pub name: Option<String>,
    /// STONITS (sample to physical units), shown by OBJ=stack.
    pub scale: Option<f64>,
}
