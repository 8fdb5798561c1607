//! Image formats of iipsrv: where an image's bytes come from ([`bytes::ByteSource`]), the
//! readers that turn them into tiles and descriptions ([`source`]: pyramidal TIFF and
//! BigTIFF, JPEG2000, flat JPEG and PNG as memory pyramids), opening a file by its first
//! bytes ([`open`]), and the codecs ([`codec`]: tile decompression, JPEG/PNG/WebP encoders,
//! the TIFF writer).
//!
//! A source knows no protocol and no HTTP; its errors ([`error::SourceError`]) say what is
//! wrong with the file, not which status to answer; the encoders' ([`error::EncodeError`])
//! say which encoder failed and how. This crate depends on `iipsrv-core`
//! only and must not import `iipsrv-server`. Its modules depend one way: `error` ←
//! `bytes` ← `codec` ← `source` ← `open` ← `pyramid` (the pyramid builder).

pub mod bytes;
pub mod codec;
pub mod error;
pub mod open;
pub mod pyramid;
pub mod source;
