//! Protocol parsers: each turns request text into a typed request that names an image and
//! either a metadata query or a [`crate::view::View`]. They never touch files or pixels.

pub mod composite;
pub mod deepzoom;
pub mod iiif;
pub mod iiif_info;
pub mod iip;
pub(crate) mod iip_process;
pub mod spectral;
pub mod zoomify;

use crate::error::{RequestError, Result};

/// Percent-decodes one path or argument as UTF-8; `what` names the protocol in the error.
pub fn decode(s: &str, what: &str) -> Result<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| RequestError::bad(format!("{what}: path is not valid UTF-8")))
}
