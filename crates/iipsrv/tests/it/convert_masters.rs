//! `iipsrv convert` to JPEG2000 (.jp2, .j2k, OpenJPEG) and HTJ2K (.jph, .j2c, OpenJPH)
//! masters: decoded by the other project's tools (`opj_decompress`, `ojph_expand`) equal to
//! the input when lossless and close when lossy; the layout checked in the codestream's
//! main header (512-px tiles, RPCL, enough levels, TLM); then served by our server.

use crate::convert::{convert, converted as master, vips_max_difference};
use crate::harness::{
    app, call, decode_image, fetch, get, pattern, psnr, run, tempdir, text, vips, write_png, Server,
};
use crate::jpeg2000::decompress;
#[cfg(feature = "htj2k")]
use crate::jpeg2000::ojph_expand;
use iipsrv_core::raster::Raster;
use std::path::{Path, PathBuf};
use std::process::Command;

const W: u32 = 1500;
const H: u32 = 1100;

/// The test image made by vips as a striped TIFF (the input), and its pixels.
fn input(dir: &Path) -> (PathBuf, Raster) {
    let src = pattern(W, H);
    let png = dir.join("src.png");
    write_png(&src, &png);
    let tif = dir.join("src.tif");
    vips(&["copy", &png.to_string_lossy(), &tif.to_string_lossy()]);
    (tif, src)
}

/// The marker segments of a codestream's main header (the codestream found at its SOC
/// and SIZ markers, inside boxes or not): marker and body after the length; and the
/// offset of the first tile-part.
fn main_header(file: &[u8]) -> (Vec<(u16, Vec<u8>)>, usize) {
    let soc = file
        .windows(4)
        .position(|w| w == [0xff, 0x4f, 0xff, 0x51])
        .expect("SOC then SIZ");
    let mut at = soc + 2;
    let mut out = Vec::new();
    loop {
        let marker = u16::from_be_bytes([file[at], file[at + 1]]);
        if marker == 0xff90 {
            return (out, at);
        }
        let len = u16::from_be_bytes([file[at + 2], file[at + 3]]) as usize;
        out.push((marker, file[at + 4..at + 2 + len].to_vec()));
        at += 2 + len;
    }
}

/// The tile-part lengths a TLM marker segment lists.
fn tlm_lengths(tlm: &[u8]) -> Vec<u64> {
    let index = ((tlm[1] >> 4) & 3) as usize;
    let size = if tlm[1] & 0x40 != 0 { 4 } else { 2 };
    let entries = tlm[2..].chunks_exact(index + size);
    entries
        .map(|e| e[index..].iter().fold(0u64, |n, &b| n << 8 | b as u64))
        .collect()
}

/// Checks the layout: 512-px tiles, RPCL, `levels` decompositions, reversible or not, a
/// TLM listing the 9 tile-parts whose lengths add up to the codestream after its main
/// header; returns the markers seen.
fn check_layout(file: &Path, levels: u8, reversible: bool) -> Vec<u16> {
    let bytes = std::fs::read(file).expect("read");
    let (header, first_tile) = main_header(&bytes);
    let body = |m: u16| &header.iter().find(|(k, _)| *k == m).expect("marker").1;
    let siz = body(0xff51);
    let size = |at: usize| u32::from_be_bytes(siz[at..at + 4].try_into().expect("4"));
    assert_eq!((size(2), size(6)), (W, H), "image size");
    assert_eq!((size(18), size(22)), (512, 512), "tile size");
    let cod = body(0xff52);
    assert_eq!(cod[1], 2, "RPCL progression");
    assert_eq!(cod[5], levels, "decomposition levels");
    assert_eq!(cod[9], u8::from(reversible), "5/3 (1) or 9/7 (0) wavelet");
    let markers: Vec<u16> = header.iter().map(|(m, _)| *m).collect();
    assert!(
        markers.contains(&0xff55),
        "TLM in the main header: {markers:x?}"
    );
    let lengths = tlm_lengths(body(0xff55));
    assert_eq!(lengths.len(), 9, "one tile-part per tile");
    let tiles = (bytes.len() - first_tile - 2) as u64;
    assert_eq!(
        lengths.iter().sum::<u64>(),
        tiles,
        "TLM lengths cover the tile-parts"
    );
    markers
}

/// The server's answers for `name` in `dir`: info.json's size and scale factors, and a
/// region equal to `decoded`'s same area.
fn served(dir: &Path, name: &str, decoded: &Raster) {
    let app = app(dir, &[]);
    let info = call(&app, &format!("/iiif/{name}/info.json"));
    assert_eq!(info.status, 200, "{}", text(&info));
    let json: serde_json::Value = serde_json::from_slice(&info.body).expect("json");
    assert_eq!(
        (json["width"].as_u64(), json["height"].as_u64()),
        (Some(W as u64), Some(H as u64))
    );
    let factors = &json["tiles"][0]["scaleFactors"];
    assert_eq!(factors, &serde_json::json!([1, 2, 4]), "{json}");
    let region = call(
        &app,
        &format!("/iiif/{name}/300,200,700,600/max/0/default.png"),
    );
    assert_eq!(region.status, 200, "{}", text(&region));
    assert!(
        decode_image(&region.body) == decoded.crop(300, 200, 700, 600),
        "region"
    );
}

#[cfg(feature = "htj2k")]
/// The codestream of a .jph file (after its jp2c box header), as a .j2c beside it.
fn jp2c_of(jph: &Path) -> PathBuf {
    let bytes = std::fs::read(jph).expect("read");
    let at = bytes
        .windows(4)
        .position(|w| w == b"jp2c")
        .expect("jp2c box");
    let out = jph.with_extension("extracted.j2c");
    std::fs::write(&out, &bytes[at + 4..]).expect("write");
    out
}

#[test]
fn convert_to_jpeg2000_is_lossless_tiled_rpcl_with_tlm_and_served() {
    let dir = tempdir();
    let (tif, src) = input(dir.path());
    let jp2 = dir.path().join("m.jp2");
    master(&tif, &jp2, &[]);
    check_layout(&jp2, 2, true);
    let decoded = decompress(&jp2, &[]);
    assert!(decoded == src, "opj_decompress equals the input");
    served(dir.path(), "m.jp2", &decoded);
    let j2k = dir.path().join("m.j2k");
    master(&tif, &j2k, &[]);
    check_layout(&j2k, 2, true);
    assert!(decompress(&j2k, &[]) == src, "raw codestream");
}

#[test]
fn convert_to_lossy_jpeg2000_keeps_38_db() {
    let dir = tempdir();
    let (tif, src) = input(dir.path());
    let jp2 = dir.path().join("lossy.jp2");
    master(&tif, &jp2, &["--rate", "10"]);
    check_layout(&jp2, 2, false);
    let decoded = decompress(&jp2, &[]);
    let db = psnr(&decoded, &src);
    assert!(db >= 38.0 && db.is_finite(), "{db} dB");
    let size = std::fs::metadata(&jp2).expect("size").len();
    assert!(size < (W * H * 3 / 8) as u64, "about 10:1: {size} bytes");
}

#[test]
fn sixteen_bit_masters_are_lossless() {
    let dir = tempdir();
    let (_, src) = input(dir.path());
    let png = dir.path().join("src.png");
    let wide = crate::harness::sixteen_bit(dir.path(), &png);
    let tif = dir.path().join("u16.tif");
    vips(&["copy", &wide.to_string_lossy(), &tif.to_string_lossy()]);
    let jp2 = dir.path().join("w.jp2");
    master(&tif, &jp2, &[]);
    let back = dir.path().join("w.decoded.tif");
    run(Command::new("opj_decompress")
        .arg("-i")
        .arg(&jp2)
        .arg("-o")
        .arg(&back));
    assert_eq!(
        vips_max_difference(&back, &tif, dir.path()),
        0.0,
        "16-bit JPEG2000"
    );
    assert_eq!(src.width, W);
    #[cfg(feature = "htj2k")]
    {
        let j2c = dir.path().join("w.j2c");
        master(&tif, &j2c, &[]);
        let ppm = dir.path().join("w.ppm");
        run(Command::new("ojph_expand")
            .arg("-i")
            .arg(&j2c)
            .arg("-o")
            .arg(&ppm));
        assert_eq!(
            vips_max_difference(&ppm, &tif, dir.path()),
            0.0,
            "16-bit HTJ2K"
        );
    }
}

#[test]
fn images_with_alpha_are_refused_and_nothing_is_left() {
    let dir = tempdir();
    let rgba = Raster::from_vec(64, 64, 4, vec![200; 64 * 64 * 4]).expect("raster");
    let png = dir.path().join("a.png");
    write_png(&rgba, &png);
    let out_path = dir.path().join("a.jp2");
    let out = convert(&[png.to_str().expect("p"), out_path.to_str().expect("p")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("alpha"), "{err}");
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("dir").count(),
        1,
        "only the input"
    );
}

#[cfg(feature = "htj2k")]
#[test]
fn convert_to_htj2k_is_lossless_tiled_rpcl_with_tlm_and_served() {
    let dir = tempdir();
    let (tif, src) = input(dir.path());
    let jph = dir.path().join("m.jph");
    master(&tif, &jph, &[]);
    let markers = check_layout(&jph, 2, true);
    assert!(
        markers.contains(&0xff50),
        "CAP: an HT codestream: {markers:x?}"
    );
    let expanded = ojph_expand(&jp2c_of(&jph), 0);
    assert!(expanded == src, "ojph_expand equals the input");
    assert!(decompress(&jph, &[]) == src, "OpenJPEG reads the JPH boxes");
    served(dir.path(), "m.jph", &expanded);
    let j2c = dir.path().join("m.j2c");
    master(&tif, &j2c, &[]);
    check_layout(&j2c, 2, true);
    assert!(ojph_expand(&j2c, 0) == src, "raw codestream");
    served(dir.path(), "m.j2c", &src);
}

#[cfg(feature = "htj2k")]
#[test]
fn convert_to_lossy_htj2k_keeps_38_db() {
    let dir = tempdir();
    let (tif, src) = input(dir.path());
    let j2c = dir.path().join("lossy.j2c");
    master(&tif, &j2c, &["--qstep", "0.005"]);
    check_layout(&j2c, 2, false);
    let db = psnr(&ojph_expand(&j2c, 0), &src);
    assert!(db >= 38.0 && db.is_finite(), "{db} dB");
}

/// The headline migration: a JPEG2000 made by OpenJPEG's own `opj_compress` (untiled, the
/// layout of many older collections) read in bands and written as HTJ2K and as JPEG2000,
/// both pixel-exact; a truncated one is a one-line error leaving nothing.
#[test]
fn jpeg2000_inputs_convert_to_htj2k_and_jpeg2000_exactly() {
    let dir = tempdir();
    let src = pattern(W, H);
    let png = dir.path().join("src.png");
    write_png(&src, &png);
    let old = dir.path().join("old.jp2");
    run(Command::new("opj_compress")
        .arg("-i")
        .arg(&png)
        .arg("-o")
        .arg(&old));
    let bytes = std::fs::read(&old).expect("read");
    let cut = dir.path().join("cut.jp2");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let out = dir.path().join("cut.jph");
    let failed = convert(&[cut.to_str().expect("p"), out.to_str().expect("p")]);
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(
        !failed.status.success() && err.lines().count() == 1,
        "{err}"
    );
    assert!(!out.exists() && !dir.path().join("cut.jph.partial").exists());
    let jp2 = dir.path().join("new.jp2");
    master(&old, &jp2, &[]);
    assert!(decompress(&jp2, &[]) == src, "JPEG2000 to JPEG2000");
    #[cfg(feature = "htj2k")]
    {
        let j2c = dir.path().join("new.j2c");
        master(&old, &j2c, &[]);
        check_layout(&j2c, 2, true);
        assert!(ojph_expand(&j2c, 0) == src, "JPEG2000 to HTJ2K");
    }
}

/// A JPEG with libvips' sRGB profile in `dir`, and the profile's size as libvips reports it.
fn jpeg_with_profile(dir: &Path) -> (PathBuf, usize) {
    let png = dir.join("src.png");
    write_png(&pattern(600, 400), &png);
    let jpeg = dir.join("icc.jpg");
    vips(&[
        "jpegsave",
        &png.to_string_lossy(),
        &jpeg.to_string_lossy(),
        "--profile",
        "srgb",
    ]);
    let size = profile_size(&jpeg).expect("vips reports the profile's size");
    (jpeg, size)
}

/// The size of the ICC profile libvips reads from `path`, if any.
fn profile_size(path: &Path) -> Option<usize> {
    let header = crate::harness::run_stdout(Command::new("vipsheader").arg("-a").arg(path));
    header
        .lines()
        .find_map(|l| l.strip_prefix("icc-profile-data: "))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
}

/// jpylyzer's report (XML) on the JP2 file at `path`.
fn jpylyzer(path: &Path) -> String {
    let bin = crate::slides::python().with_file_name("jpylyzer");
    crate::harness::run_stdout(Command::new(bin).arg(path))
}

/// The method (1 enumerated, 2 restricted ICC) and size of the colour specification box
/// of the file at `path`, if it has one.
fn colr_box(path: &Path) -> Option<(u8, usize)> {
    let bytes = std::fs::read(path).expect("read");
    let at = bytes.windows(4).position(|w| w == b"colr")?;
    let size = u32::from_be_bytes(bytes[at - 4..at].try_into().expect("4")) as usize;
    Some((bytes[at + 4], size))
}

/// A JPH file carries the input's ICC profile in its colour specification box (method 2,
/// as long as the profile libvips reports), and OpenJPEG still decodes it.
#[cfg(feature = "htj2k")]
#[test]
fn jph_files_carry_the_icc_profile() {
    let dir = tempdir();
    let (jpeg, profile) = jpeg_with_profile(dir.path());
    let jph = dir.path().join("icc.jph");
    master(&jpeg, &jph, &[]);
    assert_eq!(
        colr_box(&jph),
        Some((2, 8 + 3 + profile)),
        "an ICC colr box"
    );
    let decoded = decompress(&jph, &[]);
    assert_eq!((decoded.width, decoded.height), (600, 400));
}

/// A JP2 file carries the input's ICC profile too (OpenJPEG cannot write one: its raw
/// codestream is put in our boxes): jpylyzer finds a valid JP2 with a restricted ICC
/// colour specification of the profile's size, OpenJPEG decodes it, the pixels are the
/// input's, and our answers embed the profile. Without a profile the file is OpenJPEG's
/// own JP2, declaring sRGB.
#[test]
fn jp2_files_carry_the_icc_profile() {
    let dir = tempdir();
    let (jpeg, profile) = jpeg_with_profile(dir.path());
    let jp2 = dir.path().join("icc.jp2");
    master(&jpeg, &jp2, &[]);
    assert_eq!(
        colr_box(&jp2),
        Some((2, 8 + 3 + profile)),
        "an ICC colr box"
    );
    let partial = dir.path().join("icc.jp2.partial.tiles");
    assert!(!partial.exists(), "the raw codestream is removed");
    let report = jpylyzer(&jp2);
    assert!(
        report.contains("<isValid format=\"jp2\">True</isValid>"),
        "{report}"
    );
    assert!(report.contains("<meth>Restricted ICC</meth>"), "{report}");
    assert!(
        report.contains(&format!("<profileSize>{profile}</profileSize>")),
        "{report}"
    );
    let png = dir.path().join("src.png");
    let plain = dir.path().join("plain.jp2");
    master(&png, &plain, &[]);
    assert_eq!(colr_box(&plain), Some((1, 15)), "sRGB declared");
    assert!(profile_size(&plain).is_none());
    assert!(jpylyzer(&plain).contains("<meth>Enumerated</meth>"));
    let bytes = std::fs::read(&jp2).expect("read");
    assert_eq!(&bytes[16..28], b"ftypjp2 \0\0\0\0");

    let prefix = dir.path().to_string_lossy().to_string();
    let mut server = Server::start(&[("FILESYSTEM_PREFIX", &prefix)]);
    let answer = get(server.port, "/iiif/icc.jp2/full/300,/0/default.jpg");
    assert_eq!(answer.status, 200);
    let icc = answer.body.windows(12).any(|w| w == b"ICC_PROFILE\0");
    assert!(icc, "the answer embeds the profile");
    // Lossless: the pixels are the input's (OpenJPEG applies the profile when it decodes
    // to PNG, so it is asked only for the size).
    let ours = fetch(server.port, "/iiif/icc.jp2/full/max/0/default.png");
    let input = fetch(server.port, "/iiif/icc.jpg/full/max/0/default.png");
    assert!(ours == input, "the JP2 holds the input's pixels");
    let decoded = decompress(&jp2, &[]);
    assert_eq!((decoded.width, decoded.height), (600, 400));
    assert!(server.alive());
}
