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
    let extra = iipsrv_formats::codec::Embedded {
        icc: Some(b"fake icc profile"),
        xmp: Some("<x:xmpmeta xmlns:x='adobe:ns:meta/'/>"),
    };
    tiff_writer::write(&levels, Some(128), compression, extra).expect("write")
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
        flipped(&good, 0x9E37_79B9_7F4A_7C15, 1500, |bad| _ = exercise(bad));
        // the directory region (end of file) gets more attention
        let tail = good.len().saturating_sub(600);
        for pos in tail..good.len() {
            let mut bad = good.clone();
            bad[pos] = bad[pos].wrapping_add(0x80);
            exercise(bad);
        }
    }
}

/// `count` copies of `good`, each with one bit flipped at a place drawn by xorshift from
/// `seed`, handed to `each`.
fn flipped(good: &[u8], mut seed: u64, count: usize, mut each: impl FnMut(Vec<u8>)) {
    for _ in 0..count {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut bad = good.to_vec();
        let pos = (seed % bad.len() as u64) as usize;
        bad[pos] ^= 1 << ((seed >> 32) % 8);
        each(bad);
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

/// A little-endian grey TIFF of one strip of `rows` rows of `width` samples of `bits` bits
/// (MinIsWhite), the strip's `data` after the directory, with `extra` entries (tag, type,
/// value) after the required ones.
fn one_strip(width: u32, rows: u32, bits: u32, data: &[u8], extra: &[(u16, u16, u32)]) -> Vec<u8> {
    let mut entries = vec![
        (256, 4, width),
        (257, 4, rows),
        (258, 3, bits),
        (262, 3, 0),
        (273, 4, 0),
        (278, 4, rows),
        (279, 4, data.len() as u32),
    ];
    entries.extend_from_slice(extra);
    entries.sort_by_key(|e| e.0);
    let data_at = 8 + 2 + 12 * entries.len() as u32 + 4;
    let mut b = b"II\x2a\0\x08\0\0\0".to_vec();
    b.extend((entries.len() as u16).to_le_bytes());
    for (tag, kind, value) in entries {
        let value = if tag == 273 { data_at } else { value };
        b.extend(tag.to_le_bytes());
        b.extend(kind.to_le_bytes());
        b.extend(1u32.to_le_bytes());
        b.extend(value.to_le_bytes());
    }
    b.extend(0u32.to_le_bytes());
    b.extend(data);
    b
}

fn open_ok(bytes: Vec<u8>) -> TiffImage {
    TiffImage::open(Arc::new(MemBytes(bytes))).expect("opens")
}

#[test]
fn packed_samples_cut_short_or_of_odd_depths_end_cleanly() {
    // 1-bit MinIsWhite, 20 px rows padded to 3 bytes: 0xff 0xff 0xf0 is 20 black pixels
    let img = open_ok(one_strip(20, 2, 1, &[0xff, 0xff, 0xf0, 0, 0, 0], &[]));
    let t = img.read_tile(0, 0, 0).expect("reads");
    assert_eq!(t.data[..20], [0; 20]);
    assert_eq!(t.data[20..], [255; 20]);
    assert_eq!(img.info().stored_bits, 1);
    // least significant bit first (FillOrder 2): 0x0f is the first four pixels black
    let lsb = open_ok(one_strip(8, 1, 1, &[0x0f], &[(266, 3, 2)]));
    let t = lsb.read_tile(0, 0, 0).expect("reads");
    assert_eq!(t.data, [0, 0, 0, 0, 255, 255, 255, 255]);
    // a strip shorter than its bits say reads as zeros past its end (white here), as
    // libtiff pads it; one that does not decode is an error
    let short = img_tile(one_strip(20, 4, 4, &[0x0f; 7], &[])).expect("padded");
    assert!(short.data[20..].iter().all(|&v| v == 255.0));
    for bits in [4, 12] {
        let garbage = one_strip(20, 4, bits, &[0x80, 0, 0x20], &[(259, 3, 8)]);
        assert!(img_tile(garbage).is_err());
    }
    // depths we do not read, or combinations without meaning, are unsupported at open
    for (bits, extra) in [
        (3, vec![]),
        (24, vec![]),
        (0, vec![]),
        (12, vec![(339, 3, 3)]),
        (4, vec![(339, 3, 2)]),
        (4, vec![(317, 3, 2)]),
        (12, vec![(259, 3, 7)]),
        (4, vec![(259, 3, 4)]),
        (1, vec![(259, 3, 32771)]),
        (1, vec![(259, 3, 5), (266, 3, 2)]),
    ] {
        let e = open_err(one_strip(20, 4, bits, &[0; 40], &extra));
        assert!(
            matches!(e, SourceError::Unsupported { .. }),
            "{bits} {extra:?}: {e:?}"
        );
    }
    // truncations and bit flips of packed files end in errors or pixels
    let cases = [
        (1, 1),
        (2, 1),
        (4, 1),
        (12, 1),
        (14, 1),
        (1, 3),
        (1, 4),
        (4, 32773),
    ];
    for (bits, compression) in cases {
        let good = one_strip(20, 4, bits, &[0x5a; 40], &[(259, 3, compression)]);
        for cut in 0..good.len() {
            let _ = img_tile(good[..cut].to_vec());
        }
        for pos in 0..good.len() * 8 {
            let mut bad = good.clone();
            bad[pos / 8] ^= 1 << (pos % 8);
            let _ = img_tile(bad);
        }
    }
}

/// The first tile of the image in `bytes`, as floats (every depth answers that).
fn img_tile(bytes: Vec<u8>) -> Result<iipsrv_core::raster::FloatRaster, SourceError> {
    TiffImage::open(Arc::new(MemBytes(bytes)))?.read_tile_float(0, 0, 0)
}

/// A damaged XMLPacket (its value pointing past the end of the file) does not keep the
/// image from opening: descriptive metadata is skipped, the pixels are served.
#[test]
fn a_damaged_xmp_packet_is_skipped() {
    let dir = crate::harness::tempdir();
    let p = |n: &str| dir.path().join(n).to_string_lossy().to_string();
    crate::harness::write_png(
        &iipsrv_server::demo::pattern(300, 200),
        &dir.path().join("a.png"),
    );
    std::fs::write(
        dir.path().join("a.xmp"),
        "<x:xmpmeta xmlns:x='adobe:ns:meta/'/>",
    )
    .expect("xmp");
    let xmp = format!("XMP:{}", p("a.xmp"));
    crate::harness::run(std::process::Command::new("convert").args([
        &p("a.png"),
        "-profile",
        &xmp,
        &p("a.jpg"),
    ]));
    crate::harness::vips(&["tiffsave", &p("a.jpg"), &p("a.tif"), "--tile", "--pyramid"]);
    let mut bytes = std::fs::read(p("a.tif")).expect("read");
    let good = TiffImage::open(Arc::new(MemBytes(bytes.clone()))).expect("open");
    assert!(good
        .info()
        .metadata
        .xmp
        .as_deref()
        .is_some_and(|x| x.contains("xmpmeta")));
    let e = entry(&bytes, 700);
    bytes[e + 8..e + 12].copy_from_slice(&0xFFFF_FF00u32.to_le_bytes());
    let img = TiffImage::open(Arc::new(MemBytes(bytes))).expect("still opens");
    assert_eq!(img.info().metadata.xmp, None);
    assert!(img.read_tile(0, 0, 0).is_ok());
}

/// BitsPerSample with a different depth for one sample (8, 8, 16) is refused, not read
/// with the first depth's row size.
#[test]
fn samples_of_mixed_depths_are_refused() {
    let mut bytes = sample(Compression::None);
    let e = entry(&bytes, 258);
    let at =
        u32::from_le_bytes([bytes[e + 8], bytes[e + 9], bytes[e + 10], bytes[e + 11]]) as usize;
    bytes[at + 4..at + 6].copy_from_slice(&16u16.to_le_bytes());
    let err = open_err(bytes);
    assert!(err.to_string().contains("different bit depths"), "{err}");
}

/// Opens every page a slide may have (the pyramid, a second plane, the associated images)
/// and decodes every tile of each; never a panic.
fn exercise_slide(bytes: &[u8]) {
    use iipsrv_formats::source::slide::Associated;
    let mut pages = vec![0, 1];
    pages.extend(Associated::ALL.map(Associated::page));
    for page in pages {
        let Ok(img) = TiffImage::open_page(Arc::new(MemBytes(bytes.to_vec())), page) else {
            continue;
        };
        for (i, l) in img.info().levels.clone().iter().enumerate() {
            for (tx, ty) in [
                (0, 0),
                (1, 0),
                (0, 1),
                (l.tiles_across() - 1, l.tiles_down() - 1),
            ] {
                let _ = img.read_tile_float(i, tx, ty);
                let _ = img.jpeg_tile(i, tx, ty);
            }
        }
    }
}

/// Small slides made by tifffile: SVS with JPEG and JPEG2000 tiles, an OME-TIFF, a Philips
/// TIFF (label and macro base64 in its XML), a Ventana BIF; and an NDPI.
fn slides(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let specs: [&[&str]; 6] = [
        &["svs", "j.svs", "--codec", "jpeg"],
        &["svs", "k.svs", "--codec", "jp2k-rgb"],
        &["ome", "o.ome.tif"],
        &["philips", "p.tiff"],
        &["bif", "b.bif"],
        &["ndpi", "h.ndpi"],
    ];
    specs
        .iter()
        .map(|spec| {
            let out = dir.join(spec[1]);
            let mut args = vec![spec[0], out.to_str().expect("path"), "--size", "600x400"];
            args.extend(&spec[2..]);
            crate::slides::fixture_script("make-slides.py", &args);
            (spec[1].to_string(), std::fs::read(out).expect("slide"))
        })
        .collect()
}

/// Slides cut short anywhere and with flipped bits end in errors or pixels.
#[test]
fn truncated_and_damaged_slides_end_cleanly() {
    let dir = crate::harness::tempdir();
    for (name, good) in slides(dir.path()) {
        let step = (good.len() / 150).max(1);
        for cut in (0..good.len()).step_by(step) {
            exercise_slide(&good[..cut]);
        }
        flipped(&good, 0x2545_F491_4F6C_DD1D, 300, |bad| {
            exercise_slide(&bad)
        });
        assert!(TiffImage::open(Arc::new(MemBytes(good))).is_ok(), "{name}");
    }
}

/// Replaces the first `from` in `bytes` by `to` of the same length.
fn patch(bytes: &mut [u8], from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let at = bytes
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .unwrap_or_else(|| panic!("{from} not found"));
    bytes[at..at + to.len()].copy_from_slice(to.as_bytes());
}

/// Descriptions that lie (a negative or absurd pixel size, a plane count past the
/// directories, an associated image named twice) give no physical size and the
/// directories the file has; a tile offset past the end is an error for that tile only,
/// answered 500 by the server.
#[test]
fn lying_slide_descriptions_and_tile_offsets_out_of_range() {
    let dir = crate::harness::tempdir();
    let all = slides(dir.path());
    let open = |b: &[u8]| TiffImage::open(Arc::new(MemBytes(b.to_vec()))).expect("opens");
    let mut svs = all[0].1.clone();
    patch(&mut svs, "MPP = 0.499", "MPP = -9e99");
    patch(&mut svs, "macro 800x300", "label 800x300");
    let img = open(&svs);
    assert_eq!(img.info().metadata.pixels_per_cm, None);
    assert_eq!(img.info().levels.len(), 3);
    let mut ome = all[2].1.clone();
    patch(&mut ome, "SizeC=\"3\"", "SizeC=\"9\"");
    patch(
        &mut ome,
        "PhysicalSizeX=\"0.325\"",
        "PhysicalSizeX=\"-0.32\"",
    );
    let img = open(&ome);
    assert_eq!(
        (img.pages().len(), img.info().metadata.pixels_per_cm),
        (3, None)
    );
    // the first tile of level 0 of the SVS stored past the end of the file
    let path = dir.path().join("j.svs");
    let table = crate::slides::fixture_script(
        "openslide-oracle.py",
        &["table", path.to_str().expect("path"), "0"],
    );
    let table: usize = table.trim().parse().expect("offset");
    let mut bad = all[0].1.clone();
    bad[table..table + 4].copy_from_slice(&(u32::MAX - 10).to_le_bytes());
    let img = open(&bad);
    assert!(img.read_tile(0, 0, 0).is_err() && img.jpeg_tile(0, 0, 0).is_err());
    assert!(img.read_tile(0, 1, 0).is_ok());
    std::fs::write(&path, &bad).expect("write");
    let app = crate::harness::app(dir.path(), &[]);
    let r = crate::harness::call(&app, "/iiif/j.svs/0,0,240,240/240,/0/default.jpg");
    assert_eq!(r.status, 500, "{}", crate::harness::text(&r));
    assert!(!crate::harness::text(&r).contains(dir.path().to_str().expect("path")));
}

/// Opens page `page` of a slide's bytes.
fn open_page(bytes: &[u8], page: usize) -> Result<TiffImage, SourceError> {
    TiffImage::open_page(Arc::new(MemBytes(bytes.to_vec())), page)
}

/// Ventana BIFs whose description lies (a negative pixel size, two levels numbered 0) open
/// without a physical size; one whose tiles overlap is refused by our reader as unsupported
/// (501 without OpenSlide; with it, OpenSlide is asked).
#[test]
fn lying_and_overlapping_bifs() {
    let dir = crate::harness::tempdir();
    let bif = slides(dir.path()).remove(4).1;
    let mut lying = bif.clone();
    patch(&mut lying, "ScanRes=\"0.2325\"", "ScanRes=\"-1e999\"");
    patch(&mut lying, "level=1 mag=20", "level=0 mag=20");
    let img = open_page(&lying, 0).expect("opens");
    assert_eq!(img.info().metadata.pixels_per_cm, None);
    assert_eq!(img.info().levels.len(), 3);
    let out = dir.path().join("overlap.bif");
    let path = out.to_str().expect("path");
    let args = ["bif", path, "--size", "600x400", "--overlap", "8"];
    crate::slides::fixture_script("make-slides.py", &args);
    let err = open_page(&std::fs::read(&out).expect("bif"), 0)
        .err()
        .expect("refused");
    assert!(
        matches!(err, SourceError::Unsupported { .. }) && err.to_string().contains("overlap"),
        "{err}"
    );
    let app = crate::harness::app(dir.path(), &[]);
    let r = crate::harness::call(&app, "/iiif/overlap.bif/info.json");
    // With OpenSlide, the file is then OpenSlide's to read; it refuses this synthetic
    // stitching table (a damaged file to it: 500 with its reason).
    let expected = match cfg!(feature = "openslide") {
        true => (500, "OpenSlide: Missing or inconsistent region metadata"),
        false => (
            501,
            "Ventana BIF whose tiles overlap (TileJointInfo): not read natively",
        ),
    };
    assert_eq!(
        (r.status, crate::harness::text(&r)),
        (expected.0, expected.1.into())
    );
}

/// Philips label and macro JPEGs that lie: text that is not base64 is no label (not
/// found) and leaves the macro; a JPEG declaring 60000x60000 pixels is refused before
/// anything is allocated.
#[test]
fn philips_embedded_images_that_lie() {
    use base64::Engine;
    use iipsrv_formats::source::slide::Associated;
    let b64 = base64::engine::general_purpose::STANDARD;
    let dir = crate::harness::tempdir();
    let good = slides(dir.path()).remove(3).1;
    let (label, macro_) = (Associated::Label.page(), Associated::Macro.page());
    assert!(open_page(&good, label).is_ok() && open_page(&good, macro_).is_ok());
    let mut bad = good.clone();
    patch(&mut bad, ">/9j/", ">!!!!");
    let err = open_page(&bad, label).err().expect("no label");
    assert!(matches!(err, SourceError::NoSuchPage { .. }), "{err}");
    assert!(open_page(&bad, macro_).is_ok());
    // the label's base64 text re-encoded with a frame header of 60000x60000 pixels
    let find = |from: usize, what: &[u8]| {
        let at = good[from..].windows(what.len()).position(|w| w == what);
        from + at.expect("found")
    };
    let start = find(0, b">/9j/") + 1;
    let end = find(start, b"<");
    let mut jpeg = b64.decode(&good[start..end]).expect("base64");
    let sof = jpeg
        .windows(2)
        .position(|w| w == [0xff, 0xc0])
        .expect("SOF0");
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0xea, 0x60, 0xea, 0x60]);
    let mut huge = good.clone();
    huge[start..end].copy_from_slice(b64.encode(&jpeg).as_bytes());
    let err = open_page(&huge, label).err().expect("refused");
    assert!(err.to_string().contains("60000x60000"), "{err}");
}

/// A byte source that says it is longer than it is (reads past its bytes fail).
struct Longer(MemBytes, u64);

impl iipsrv_formats::bytes::ByteSource for Longer {
    fn len(&self) -> u64 {
        self.1
    }

    fn read_at(&self, offset: u64, len: usize) -> iipsrv_formats::error::SourceResult<Vec<u8>> {
        self.0.read_at(offset, len)
    }
}

/// An NDPI whose restart table (McuStarts) lies: entries out of order, past the end of the
/// strip or of the file, too few, a first entry that is not where the JPEG's data starts;
/// a strip past the end of the file; a file of 4 GB or more (whose offsets past 4 GB we do
/// not read). Each is a one-line error at open; the good file reads every tile.
#[test]
fn ndpi_restart_tables_that_lie_are_errors() {
    use iipsrv_formats::bytes::ByteSource;
    let dir = crate::harness::tempdir();
    let good = slides(dir.path()).pop().expect("ndpi").1;
    assert!(exercise(good.clone()));
    let e = entry(&good, 65426);
    let count = u32::from_le_bytes(good[e + 4..e + 8].try_into().expect("4 bytes")) as usize;
    let at = u32::from_le_bytes(good[e + 8..e + 12].try_into().expect("4 bytes")) as usize;
    let start = |b: &[u8], i: usize| {
        u32::from_le_bytes(b[at + 4 * i..at + 4 * i + 4].try_into().expect("4"))
    };
    let with_start = |i: usize, v: u32| {
        let mut b = good.clone();
        b[at + 4 * i..at + 4 * i + 4].copy_from_slice(&v.to_le_bytes());
        b
    };
    let swapped = with_start(3, start(&good, 4));
    let past_file = with_start(count - 1, good.len() as u32 + 1000);
    let past_strip = with_start(count - 1, u32::MAX - 1);
    let first = with_start(0, 3);
    let mut few = good.clone();
    few[e + 4..e + 8].copy_from_slice(&(count as u32 / 2).to_le_bytes());
    let mut strip = good.clone();
    set_long(&mut strip, 273, good.len() as u32 - 10);
    let cases = [
        (swapped, "McuStarts out of order"),
        (past_file, "past the end of its strip"),
        (past_strip, "past the end of its strip"),
        (first, "McuStarts puts the JPEG data at 3"),
        (few, "entries, the level has"),
        (strip, "outside the file"),
    ];
    for (bad, expected) in cases {
        let err = open_err(bad).to_string();
        assert!(
            err.contains(expected) && !err.contains('\n'),
            "{expected}: {err}"
        );
    }
    // A level that says it is CIELab is read as floats, through the tile table a level
    // read by its restart table does not have: an error, not an index past the table.
    let mut lab = good.clone();
    let e = entry(&good, 262);
    lab[e + 8..e + 10].copy_from_slice(&8u16.to_le_bytes());
    exercise_slide(&lab);
    let img = TiffImage::open(Arc::new(MemBytes(lab))).expect("opens");
    let err = img.read_tile_float(0, 0, 0).expect_err("refused");
    assert!(err.to_string().contains("restart markers"), "{err}");
    let huge = Longer(MemBytes(good.clone()), 5 << 30);
    assert!(huge.len() > u32::MAX as u64);
    let err = match TiffImage::open(Arc::new(huge)) {
        Ok(_) => panic!("a 5 GB NDPI opened"),
        Err(e) => e,
    };
    assert!(matches!(err, SourceError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("4 GB"), "{err}");
}
