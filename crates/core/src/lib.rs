//! The pure core of iipsrv: what a request asks and what pixels become, with no I/O.
//!
//! It owns the neutral description of one render ([`view::View`]), what an image is
//! ([`info::ImageInfo`]), the four protocol parsers that turn request text into views and
//! metadata queries ([`protocol`]), interleaved pixel buffers ([`raster`]) and the pixel
//! operations of the pipeline ([`pixel`]: resize, tone and colour processing, rotation),
//! and the FastCGI record layer ([`fastcgi`]: bytes in, typed events out, bounded).
//!
//! Nothing in this crate touches the network or the filesystem, decodes a file or knows
//! HTTP: it must not depend on `iipsrv-formats` or `iipsrv-server`. Its modules depend on
//! each other one way: `view` ← `raster` ← `pixel`; `info` ← `sequence` ← `protocol`;
//! `fastcgi` stands alone.

pub mod error;
pub mod fastcgi;
pub mod info;
pub mod pixel;
pub mod protocol;
pub mod raster;
pub mod sequence;
pub mod view;
