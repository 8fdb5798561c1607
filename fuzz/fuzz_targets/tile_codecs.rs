//! The lossless tile codecs and sample decoding: inflate, LZW, zstd, predictors, byte
//! orders, on arbitrary input, with a bounded expected size.
#![no_main]

use iipsrv_core::info::SampleFormat;
use iipsrv_formats::codec::lossless;
use iipsrv_formats::source::samples::{to_floats, Layout};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let expected = 4096;
    let bytes = match selector % 3 {
        0 => lossless::inflate(rest, expected),
        1 => lossless::unlzw(rest, expected),
        _ => lossless::unzstd(rest, expected),
    };
    if let Ok(bytes) = bytes {
        let format = match selector / 3 % 3 {
            0 => SampleFormat::Unsigned,
            1 => SampleFormat::Signed,
            _ => SampleFormat::Float,
        };
        let layout = Layout {
            bits: [8, 16, 32, 64][(selector as usize / 9) % 4],
            format,
            big_endian: selector & 0x40 != 0,
            predictor: [1, 2, 3][(selector as usize >> 7) % 3],
            row_samples: 64,
            channels: 1 + (selector as usize % 4),
        };
        let _ = to_floats(bytes, &layout);
    }
});
