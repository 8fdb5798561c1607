//! IIP query strings (every command and its arguments, SPECTRA/PFL, embedded forms): the
//! parser and the views built from it against a small image never panic.
#![no_main]

use iipsrv_core::protocol::iip;
use iipsrv_core::view::{Format, SizeLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(request) = iip::parse(query) else {
        return;
    };
    let info = iipsrv_core::info::dyadic_info(5000, 3000, 5);
    let limits = SizeLimits {
        max_size: Some(5000),
        allow_upscaling: true,
    };
    let _ = request.convert_view(&info, Format::Jpeg, limits);
    for resolution in 0..4 {
        for tile in [0, 1, 5, u64::MAX] {
            let _ = request.tile_view(&info, resolution, tile, Format::Png);
        }
    }
});
