//! Plain JPEG and PNG files, read whole when opened: the JPEG marker walk that finds an
//! ICC profile (APP2 segments in any order or number), and the PNG decoder with its
//! iCCP chunk, on arbitrary bytes, with a small pixel limit.
#![no_main]

use iipsrv_formats::codec::{jpeg, png};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = jpeg::icc_profile(data);
    let _ = png::decode(data, 1 << 16);
});
