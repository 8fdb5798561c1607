//! Whole TIFF files: the directory reader (IFD chains, SubIFDs, BigTIFF, stacks, slide
//! layouts: Aperio SVS, Philips TIFF (label and macro base64 in its XML) and Ventana BIF
//! with their associated images, OME-TIFF planes and OME-XML, Hamamatsu NDPI levels read
//! by their restart markers and the macro) and the
//! tile decoders behind it never panic and never allocate past their limits.
#![no_main]

use iipsrv_formats::bytes::MemBytes;
use iipsrv_formats::source::slide::Associated;
use iipsrv_formats::source::tiff::TiffImage;
use iipsrv_formats::source::ImageSource;
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    for page in [0, 1]
        .into_iter()
        .chain(Associated::ALL.map(Associated::page))
    {
        let Ok(image) = TiffImage::open_page(Arc::new(MemBytes(data.to_vec())), page) else {
            continue;
        };
        let levels = image.info().levels.len();
        for level in [0, levels.saturating_sub(1)] {
            for (tx, ty) in [(0, 0), (1, 0), (0, 1)] {
                let _ = image.read_tile_float(level, tx, ty);
                let _ = image.jpeg_tile(level, tx, ty);
            }
        }
    }
});
