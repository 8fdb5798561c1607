//! DeepZoom and Zoomify paths never panic the parsers.
#![no_main]

use iipsrv_core::protocol::{deepzoom, zoomify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(path) = std::str::from_utf8(data) {
        let _ = deepzoom::parse(path);
        let _ = zoomify::parse(path);
    }
});
