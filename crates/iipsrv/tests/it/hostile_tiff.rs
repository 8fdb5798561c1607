//! Corrupt and hostile TIFF files read directly by the TIFF source: truncation at many
//! offsets, bit flips, IFD loops, giant sizes. Every case must end in an error or valid
//! pixels — never a panic, a hang or a huge allocation.

use iipsrv_formats::bytes::MemBytes;
use iipsrv_formats::codec::tiff_writer::{self, Compression};
use iipsrv_formats::error::SourceError;
use iipsrv_formats::source::tiff::TiffImage;
use iipsrv_formats::source::ImageSource;
use std::sync::Arc;

fn sample(compression: Compression) -> Vec<u8> {
    let levels = iipsrv_core::raster::pyramid(iipsrv_server::demo::pattern(300, 200), 128);
    tiff_writer::write(&levels, Some(128), compression, Some(b"fake icc profile")).expect("write")
}

/// Opens the bytes and decodes every tile of every level; returns whether all worked.
fn exercise(bytes: Vec<u8>) -> bool {
    let Ok(img) = TiffImage::open(Arc::new(MemBytes(bytes))) else {
        return false;
    };
    let mut ok = true;
    for (i, l) in img.info().levels.clone().iter().enumerate() {
        for ty in 0..l.tiles_down() {
            for tx in 0..l.tiles_across() {
                ok &= img.read_tile(i, tx, ty).is_ok();
                let _ = img.jpeg_tile(i, tx, ty);
            }
        }
    }
    ok
}

const ALL: [Compression; 5] = [
    Compression::None,
    Compression::Lzw,
    Compression::Deflate(1),
    Compression::Zstd(3),
    Compression::Jpeg(80),
];

#[test]
fn valid_files_read_completely() {
    for c in ALL {
        assert!(exercise(sample(c)), "{c:?}");
    }
}

#[test]
fn truncation_at_every_offset_class() {
    for c in ALL {
        let good = sample(c);
        let step = (good.len() / 300).max(1);
        for cut in (0..good.len()).step_by(step) {
            exercise(good[..cut].to_vec());
        }
    }
}

#[test]
fn bit_flips_everywhere() {
    for c in ALL {
        let good = sample(c);
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..1500 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut bad = good.clone();
            let pos = (seed % bad.len() as u64) as usize;
            bad[pos] ^= 1 << ((seed >> 32) % 8);
            exercise(bad);
        }
        // the directory region (end of file) gets more attention
        let tail = good.len().saturating_sub(600);
        for pos in tail..good.len() {
            let mut bad = good.clone();
            bad[pos] = bad[pos].wrapping_add(0x80);
            exercise(bad);
        }
    }
}

/// Offset of the entry of `tag` in the first IFD of one of our little-endian files.
fn entry(bytes: &[u8], tag: u16) -> usize {
    let ifd = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    let n = u16::from_le_bytes([bytes[ifd], bytes[ifd + 1]]) as usize;
    (0..n)
        .map(|i| ifd + 2 + 12 * i)
        .find(|&e| u16::from_le_bytes([bytes[e], bytes[e + 1]]) == tag)
        .expect("tag present")
}

fn set_long(bytes: &mut [u8], tag: u16, value: u32) {
    let e = entry(bytes, tag);
    bytes[e + 2..e + 4].copy_from_slice(&4u16.to_le_bytes());
    bytes[e + 8..e + 12].copy_from_slice(&value.to_le_bytes());
}

fn open_err(bytes: Vec<u8>) -> SourceError {
    match TiffImage::open(Arc::new(MemBytes(bytes))) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

#[test]
fn giant_dimensions_and_tiles_are_refused_before_allocation() {
    let good = sample(Compression::Deflate(1));
    let mut huge_tile = good.clone();
    set_long(&mut huge_tile, 322, 1 << 20);
    set_long(&mut huge_tile, 323, 1 << 20);
    assert!(matches!(
        open_err(huge_tile),
        SourceError::Limit { .. } | SourceError::Corrupt { .. }
    ));
    let mut zero = good.clone();
    set_long(&mut zero, 256, 0);
    // placed at the directory that says so
    assert!(matches!(
        open_err(zero),
        SourceError::Corrupt {
            offset: Some(_),
            ..
        }
    ));
    let mut giant = good.clone();
    set_long(&mut giant, 256, 2_000_000_000);
    set_long(&mut giant, 257, 2_000_000_000);
    // the tile table no longer covers the image: refused without allocating the image
    assert!(matches!(
        open_err(giant),
        SourceError::Corrupt {
            offset: Some(_),
            ..
        }
    ));
}

#[test]
fn ifd_loops_and_bad_counts_end() {
    let good = sample(Compression::None);
    let first = u32::from_le_bytes([good[4], good[5], good[6], good[7]]) as usize;
    let n = u16::from_le_bytes([good[first], good[first + 1]]) as usize;
    let next = first + 2 + 12 * n;
    let mut looped = good.clone();
    looped[next..next + 4].copy_from_slice(&(first as u32).to_le_bytes());
    assert!(exercise(looped), "a self-referencing IFD is read once");
    let mut many = good.clone();
    many[first..first + 2].copy_from_slice(&60000u16.to_le_bytes());
    assert!(!exercise(many));
    let mut big_count = good.clone();
    let e = entry(&big_count, 324);
    big_count[e + 4..e + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(!exercise(big_count));
}

#[test]
fn offsets_past_the_end_are_errors() {
    let good = sample(Compression::Deflate(1));
    let mut bad = good.clone();
    let e = entry(&bad, 324);
    let table = u32::from_le_bytes([bad[e + 8], bad[e + 9], bad[e + 10], bad[e + 11]]) as usize;
    bad[table..table + 4].copy_from_slice(&(u32::MAX - 10).to_le_bytes());
    let img = TiffImage::open(Arc::new(MemBytes(bad))).expect("opens");
    assert!(img.read_tile(0, 0, 0).is_err());
    assert!(img.read_tile(0, 1, 0).is_ok());
}

#[test]
fn big_endian_and_bigtiff_headers_are_recognised() {
    assert!(matches!(
        open_err(b"MM\0\x2a\0\0\0\x08\0\0".to_vec()),
        SourceError::Corrupt { .. }
    ));
    assert!(matches!(
        open_err(b"II\x2b\0\x08\0\0\0\x10\0\0\0\0\0\0\0".to_vec()),
        SourceError::Corrupt { .. }
    ));
    assert!(matches!(
        open_err(b"XX\x2a\0".to_vec()),
        SourceError::Corrupt { .. }
    ));
}
