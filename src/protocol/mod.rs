//! Protocol parsers: each turns request text into a typed request that names an image and
//! either a metadata query or a [`crate::view::View`]. They never touch files or pixels.

pub mod deepzoom;
pub mod iiif;
pub mod iiif_info;
pub mod iip;
pub mod zoomify;
