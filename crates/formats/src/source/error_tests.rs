//! Damage and limits found by the TIFF and JPEG2000 readers: the message each shows, and
//! the offset or bound it carries beside it ([`crate::error::SourceError`]).

use super::tiff::TiffImage;
use crate::bytes::MemBytes;
use crate::error::{Bound, SourceError};
use std::sync::Arc;

/// A little-endian TIFF header pointing at one IFD of `entries` 12-byte entries at 8,
/// followed by `tail` bytes of nothing.
fn tiff_with_ifd(count: u16, entries: &[(u16, u16, u32, u32)], tail: usize) -> Vec<u8> {
    let mut b = b"II\x2a\0".to_vec();
    b.extend(8u32.to_le_bytes());
    b.extend(count.to_le_bytes());
    for &(tag, kind, n, value) in entries {
        b.extend(tag.to_le_bytes());
        b.extend(kind.to_le_bytes());
        b.extend(n.to_le_bytes());
        b.extend(value.to_le_bytes());
    }
    b.extend(vec![0; tail]);
    b
}

fn open_err(bytes: Vec<u8>) -> SourceError {
    match TiffImage::open(Arc::new(MemBytes(bytes))) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

#[test]
fn a_truncated_tiff_is_corrupt_at_the_read_that_runs_out() {
    // the IFD says it has 5 entries, the file ends after one
    let bytes = tiff_with_ifd(5, &[(256, 4, 1, 64)], 0);
    let e = open_err(bytes);
    assert_eq!(
        e.to_string(),
        "read of 64 bytes at offset 10 is past the end"
    );
    assert!(
        matches!(
            e,
            SourceError::Corrupt {
                offset: Some(10),
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn tiff_damage_names_its_directory_entry_or_header_field() {
    let e = open_err(tiff_with_ifd(0, &[], 4));
    assert_eq!(e.to_string(), "IFD at 8 has 0 entries");
    assert_eq!(e.offset(), Some(8));

    // ImageWidth stored as ASCII: the second entry, at 8 + 2 + 12
    let e = open_err(tiff_with_ifd(2, &[(257, 4, 1, 64), (256, 2, 1, 0x41)], 4));
    assert_eq!(e.to_string(), "tag 256 has type 2, expected an integer");
    assert_eq!(e.offset(), Some(22));

    // a zero width: the IFD that describes the image
    let e = open_err(tiff_with_ifd(2, &[(256, 4, 1, 0), (257, 4, 1, 64)], 4));
    assert_eq!(e.to_string(), "image size 0x64");
    assert_eq!(e.offset(), Some(8));

    let mut bad_version = tiff_with_ifd(1, &[(256, 4, 1, 1)], 4);
    bad_version[2] = 41;
    let e = open_err(bad_version);
    assert_eq!(e.to_string(), "not a TIFF file: version 41");
    assert_eq!(e.offset(), Some(2));

    let e = open_err(b"II\x2a\0\0\0\0\0".to_vec());
    assert_eq!(e.to_string(), "TIFF has no image directory");
    assert_eq!(e.offset(), Some(4));
}

#[test]
fn a_tile_that_does_not_decode_is_placed_at_the_tile() {
    use super::ImageSource;
    // one 16 x 16 8-bit grey deflate tile of 4 bytes that are not zlib, after the directory
    let entries = [
        (256, 4, 1, 16),
        (257, 4, 1, 16),
        (258, 3, 1, 8),
        (259, 3, 1, 8),
        (322, 4, 1, 16),
        (323, 4, 1, 16),
        (324, 4, 1, 110),
        (325, 4, 1, 4),
    ];
    let mut bytes = tiff_with_ifd(8, &entries, 4);
    assert_eq!(bytes.len(), 110);
    bytes.extend([0xde, 0xad, 0xbe, 0xef]);
    let image = TiffImage::open(Arc::new(MemBytes(bytes))).expect("opens");
    let e = image.read_tile(0, 0, 0).expect_err("not zlib");
    assert!(e.to_string().starts_with("bad deflate tile: "), "{e}");
    assert!(
        matches!(
            e,
            SourceError::Corrupt {
                offset: Some(110),
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn jpeg2000_damage_names_its_box_or_marker() {
    use super::jpeg2000::Header;
    // a JP2 signature box, then a box of 100 bytes in a file of 28
    let mut jp2 = vec![0, 0, 0, 12, b'j', b'P', b' ', b' ', 0x0d, 0x0a, 0x87, 0x0a];
    jp2.extend([0, 0, 0, 100, b'j', b'p', b'2', b'h']);
    jp2.extend([0; 8]);
    let e = Header::read(&MemBytes(jp2)).expect_err("box past the end");
    assert_eq!(e.to_string(), "JPEG2000: a box runs past its parent");
    assert_eq!(e.offset(), Some(12));

    // SOC, SIZ, its length and Rsiz, then nothing: Xsiz at 8 is missing
    let cut = vec![0xff, 0x4f, 0xff, 0x51, 0, 41, 0, 0];
    let e = Header::read(&MemBytes(cut)).expect_err("cut short");
    assert_eq!(e.to_string(), "JPEG2000: header cut short");
    assert_eq!(e.offset(), Some(8));
}

#[test]
fn tiff_limits_carry_their_numbers() {
    // a 1-sample, 8-bit tile of 2^20 x 2^20: 1 TiB decoded, past the 256 MiB limit
    let side = 1u32 << 20;
    let e = open_err(tiff_with_ifd(
        4,
        &[
            (256, 4, 1, 64),
            (257, 4, 1, 64),
            (322, 4, 1, side),
            (323, 4, 1, side),
        ],
        4,
    ));
    assert_eq!(
        e.to_string(),
        "a tile of 1048576x1048576 pixels is too large to decode; convert to a tiled pyramid"
    );
    match e {
        SourceError::Limit { bound: Some(b), .. } => assert_eq!(
            b,
            Bound {
                value: 1 << 40,
                max: 256 << 20
            }
        ),
        e => panic!("{e:?}"),
    }
}

#[test]
fn packed_depth_and_fax_seeds_read() {
    use super::ImageSource;
    let seeds = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/seeds/tiff_file/");
    for (name, bits) in [
        ("bits1-pyramid.tif", 1),
        ("bits1-miniswhite-lzw-strips.tif", 1),
        ("bits2-pyramid.tif", 2),
        ("bits4-pyramid-deflate.tif", 4),
        ("bits4-packbits-strips.tif", 4),
        ("bits12-tiles-lzw.tif", 12),
        ("bits14-strips-deflate.tif", 14),
    ] {
        let bytes = std::fs::read(format!("{seeds}{name}")).expect("seed");
        let image = TiffImage::open(Arc::new(MemBytes(bytes))).expect(name);
        assert_eq!(image.info().stored_bits, bits, "{name}");
        for (level, l) in image.info().levels.iter().enumerate() {
            for ty in 0..l.tiles_down() {
                for tx in 0..l.tiles_across() {
                    let t = image.read_tile_float(level, tx, ty).expect(name);
                    assert!(t.data.iter().any(|&v| v > 0.0), "{name}");
                }
            }
        }
    }
    // fax copies (tiffcp) of the 1-bit pyramid decode to its pixels
    let open = |name: &str| {
        let bytes = std::fs::read(format!("{seeds}{name}")).expect("seed");
        TiffImage::open(Arc::new(MemBytes(bytes))).expect(name)
    };
    let plain = open("bits1-pyramid.tif");
    for name in ["bits1-ccitt-g4.tif", "bits1-ccitt-g3-2d.tif"] {
        let fax = open(name);
        assert_eq!(fax.info().levels, plain.info().levels, "{name}");
        for (level, l) in plain.info().levels.iter().enumerate() {
            for ty in 0..l.tiles_down() {
                for tx in 0..l.tiles_across() {
                    // the image's part of the tile: edge tiles' padding is the writer's
                    let w = l.tile_width.min(l.width - tx * l.tile_width);
                    let h = l.tile_height.min(l.height - ty * l.tile_height);
                    let want = plain.read_tile(level, tx, ty).expect("plain");
                    let got = fax.read_tile(level, tx, ty).expect(name);
                    assert_eq!(got.crop(0, 0, w, h), want.crop(0, 0, w, h), "{name}");
                }
            }
        }
    }
}

#[test]
fn four_bit_rgb_is_widened_like_grey() {
    use super::ImageSource;
    // 2 x 1 RGB pixels of 4-bit samples F 0 8 | F 0 1, one uncompressed strip after the IFD
    let entries = [
        (256, 4, 1, 2),
        (257, 4, 1, 1),
        (258, 3, 1, 4),
        (259, 3, 1, 1),
        (262, 3, 1, 2),
        (273, 4, 1, 122),
        (277, 3, 1, 3),
        (278, 4, 1, 1),
        (279, 4, 1, 3),
    ];
    let mut bytes = tiff_with_ifd(9, &entries, 4);
    assert_eq!(bytes.len(), 122);
    bytes.extend([0xf0, 0x8f, 0x01]);
    let image = TiffImage::open(Arc::new(MemBytes(bytes))).expect("opens");
    assert_eq!(image.info().colour, iipsrv_core::info::ColourSpace::Rgb);
    assert!(!image.info().needs_float());
    let t = image.read_tile(0, 0, 0).expect("reads");
    assert_eq!(t.data, [255, 0, 136, 255, 0, 17]);
}
