//! Codecs: the compressions found inside TIFF tiles (decode) and the output formats
//! (encode). Each format in its own file; nothing here knows about requests or protocols.

pub mod avif;
pub mod fax;
pub(crate) mod htj2k_encode;
pub mod jpeg;
pub mod jpeg_bands;
pub mod lossless;
pub(crate) mod openjpeg;
pub(crate) mod openjpeg_encode;
pub mod png;
pub mod tiff_writer;
pub mod webp;

/// Largest XMP packet read from a file (1 MB): larger ones (an editor's history can take
/// tens of megabytes) are skipped, not held with every open image.
pub const MAX_XMP_READ: usize = 1 << 20;

/// A whole image file decoded: its pixels, with the ICC profile and XMP packet it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// 8-bit pixels.
    pub raster: iipsrv_core::raster::Raster,
    /// The ICC profile.
    pub icc: Option<Vec<u8>>,
    /// The XMP packet.
    pub xmp: Option<String>,
}

/// What an answer carries besides its pixels: the ICC profile and the XMP packet of the
/// image, each written the way its format defines.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Embedded<'a> {
    /// ICC colour profile.
    pub icc: Option<&'a [u8]>,
    /// XMP packet (UTF-8 XML).
    pub xmp: Option<&'a str>,
}
