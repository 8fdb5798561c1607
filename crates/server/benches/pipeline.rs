//! Micro-benchmarks of the steps a region answer takes (criterion; `cargo bench`): decoding
//! one stored JPEG tile, assembling a 768 × 576 box from the tiles it touches (with and
//! without the decoded-tile cache), resizing it to 512 px, and encoding the answer.
//! Whole-server figures come from `bench/run.sh` (wrk, against the reference).

use criterion::{criterion_group, criterion_main, Criterion};
use iipsrv_core::pixel::{self, Interpolation, Window};
use iipsrv_formats::bytes::FileBytes;
use iipsrv_formats::codec::jpeg;
use iipsrv_formats::source::region::compose;
use iipsrv_formats::source::tiff::TiffImage;
use iipsrv_formats::source::ImageSource;
use iipsrv_server::storage::tiles::{CachedTiles, TileCache};
use std::hint::black_box;
use std::sync::Arc;

/// A 2048 × 1536 demo TIFF (JPEG Q90 tiles of 256 px), opened.
fn image() -> (tempfile::TempDir, Arc<dyn ImageSource>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.tif");
    iipsrv_server::demo::write_demo(&path, 2048, 1536).expect("demo image");
    let bytes = Arc::new(FileBytes::open(&path).expect("open"));
    let tiff = TiffImage::open(bytes).expect("tiff");
    (dir, Arc::new(tiff))
}

fn steps(c: &mut Criterion) {
    let (_dir, src) = image();
    let stored = src.jpeg_tile(0, 1, 1).expect("read").expect("a JPEG tile");
    c.bench_function("decode one 256 px JPEG tile", |b| {
        b.iter(|| jpeg::decode(black_box(&stored), 256, 256, 3).expect("decode"))
    });

    let area = (100, 100, 868, 676);
    c.bench_function("assemble 768x576 from tiles (decoding)", |b| {
        b.iter(|| compose(src.as_ref(), 0, area.0, area.1, area.2, area.3).expect("compose"))
    });
    let cache = TileCache::new(64.0).expect("cache");
    let cached = CachedTiles::new(src.clone(), 1, cache);
    c.bench_function("assemble 768x576 from tiles (decoded-tile cache)", |b| {
        b.iter(|| compose(&cached, 0, area.0, area.1, area.2, area.3).expect("compose"))
    });

    let box_pixels = compose(src.as_ref(), 0, area.0, area.1, area.2, area.3).expect("box");
    let window = Window {
        left: 0.0,
        top: 0.0,
        width: 768.0,
        height: 576.0,
    };
    c.bench_function("resize 768x576 to 512x384 (bilinear)", |b| {
        b.iter(|| {
            pixel::resize(
                black_box(&box_pixels),
                window,
                512,
                384,
                Interpolation::Bilinear,
            )
        })
    });
    let answer = pixel::resize(&box_pixels, window, 512, 384, Interpolation::Bilinear);
    c.bench_function("encode 512x384 JPEG Q75", |b| {
        b.iter(|| jpeg::encode(black_box(&answer), 75).expect("encode"))
    });
}

criterion_group!(benches, steps);
criterion_main!(benches);
