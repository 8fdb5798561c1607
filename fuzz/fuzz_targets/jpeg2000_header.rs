//! JPEG2000 files: our box and main-header parser never panics; when it accepts a file,
//! decoding the smallest level's first tile through OpenJPEG is an answer or an error.
//! That decode reads the tile-part index (SOT markers, TLM left out of the spliced main
//! header) and splices the stream OpenJPEG is given, so both parsers are fuzzed here.
#![no_main]

use iipsrv_formats::bytes::MemBytes;
use iipsrv_formats::source::jpeg2000::Jpeg2000Image;
use iipsrv_formats::source::ImageSource;
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let Ok(image) = Jpeg2000Image::open(Arc::new(MemBytes(data.to_vec()))) else {
        return;
    };
    let info = image.info();
    let smallest = info.levels.len().saturating_sub(1);
    let l = &info.levels[smallest];
    // Bound the work per input: only small decodes.
    if (l.width as u64) * (l.height as u64) * (info.channels as u64) <= 1 << 20 {
        let _ = image.read_tile_float(smallest, 0, 0);
    }
});
