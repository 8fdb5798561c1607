//! Codecs: the compressions found inside TIFF tiles (decode) and the output formats
//! (encode). Each format in its own file; nothing here knows about requests or protocols.

pub mod avif;
pub mod jpeg;
pub mod jpeg_bands;
pub mod lossless;
pub(crate) mod openjpeg;
pub mod png;
pub mod tiff_writer;
pub mod webp;
