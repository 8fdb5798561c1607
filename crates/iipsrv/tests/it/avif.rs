//! AVIF answers (IIIF `.avif`, IIP `CVT=avif` and `ATL`), decoded by an independent decoder,
//! Debian's `avifdec` (libavif-bin), and compared with the PNG answer of the same view: tiles
//! and regions of an 8-bit RGB image with an ICC profile, a grey one and a 16-bit one; exact
//! when lossless; every AV1 encoder of AVIF_CODEC; a bogus AVIF_CODEC is a start-up warning.

use crate::harness::*;
use iipsrv_core::raster::Raster;
use std::path::Path;
use std::process::Command;

/// The test images in `dir`: `rgb.tif` (sRGB profile embedded), `grey.tif`, `u16.tif`.
fn images(dir: &Path) {
    let p = |n: &str| dir.join(n).to_string_lossy().to_string();
    write_png(&pattern(700, 500), &dir.join("src.png"));
    let tiff = |src: &str, out: &str, extra: &[&str]| {
        let mut args = vec!["tiffsave", src, out, "--tile", "--pyramid"];
        args.extend_from_slice(&["--tile-width", "256", "--tile-height", "256"]);
        args.extend_from_slice(extra);
        vips(&args);
    };
    tiff(
        &p("src.png"),
        &p("rgb.tif"),
        &["--compression", "deflate", "--profile", "srgb"],
    );
    vips(&["colourspace", &p("src.png"), &p("grey.v"), "b-w"]);
    tiff(&p("grey.v"), &p("grey.tif"), &["--compression", "deflate"]);
    let u16 = sixteen_bit(dir, &dir.join("src.png"));
    tiff(
        &u16.to_string_lossy(),
        &p("u16.tif"),
        &["--compression", "lzw"],
    );
}

/// Decodes an AVIF file with avifdec (to PNG).
fn avifdec(avif: &[u8]) -> Raster {
    let dir = tempdir();
    let (input, output) = (dir.path().join("a.avif"), dir.path().join("a.png"));
    std::fs::write(&input, avif).expect("write");
    run(Command::new("avifdec").arg(&input).arg(&output));
    decode_image(&std::fs::read(&output).expect("decoded"))
}

/// GETs an AVIF answer, checking status and type.
fn get_avif(port: u16, path: &str) -> Vec<u8> {
    fetch_bytes(port, path, Some("image/avif"))
}

/// The AVIF answer of an IIIF view decoded, and the PNG answer of the same view.
fn avif_and_png(port: u16, view: &str) -> (Raster, Raster) {
    let avif = avifdec(&get_avif(port, &format!("{view}.avif")));
    (avif, fetch(port, &format!("{view}.png")))
}

#[test]
fn tiles_and_regions_decode_close_to_the_png_answers() {
    let dir = tempdir();
    images(dir.path());
    let server = Server::start(&[("FILESYSTEM_PREFIX", &dir.path().to_string_lossy())]);
    for id in ["rgb.tif", "grey.tif", "u16.tif"] {
        for view in [
            format!("/iiif/{id}/0,0,256,256/256,/0/default"),
            format!("/iiif/{id}/256,256,256,244/256,/0/default"),
            format!("/iiif/{id}/100,50,512,400/,200/0/default"),
        ] {
            let (avif, png) = avif_and_png(server.port, &view);
            let db = psnr(&avif, &png);
            assert!(db >= 35.0, "{view}: {db:.1} dB");
        }
    }
    let info = get(server.port, "/iiif/rgb.tif/info.json");
    let j: serde_json::Value = serde_json::from_slice(&info.body).expect("json");
    assert!(j["extraFormats"]
        .as_array()
        .is_some_and(|f| f.contains(&"avif".into())));
}

#[test]
fn iip_converts_and_tiles_in_avif_at_its_quality() {
    let dir = tempdir();
    images(dir.path());
    let server = Server::start(&[("FILESYSTEM_PREFIX", &dir.path().to_string_lossy())]);
    let iip = |q: &str| format!("/fcgi-bin/iipsrv.fcgi?FIF=rgb.tif&{q}");
    let cvt = avifdec(&get_avif(server.port, &iip("WID=300&CVT=avif")));
    let png = fetch(server.port, &iip("WID=300&CVT=png"));
    assert!(psnr(&cvt, &png) >= 35.0);
    let tile = get_avif(server.port, &iip("ATL=2,0"));
    let tile_png = fetch(server.port, &iip("PTL=2,0"));
    assert!(psnr(&avifdec(&tile), &tile_png) >= 35.0);
    let low = get_avif(server.port, &iip("QLT=10&ATL=2,0"));
    let high = get_avif(server.port, &iip("QLT=90&ATL=2,0"));
    assert!(low.len() < tile.len() && tile.len() < high.len());
}

#[test]
fn the_icc_profile_is_embedded_per_max_icc() {
    let dir = tempdir();
    images(dir.path());
    let prefix = dir.path().to_string_lossy().to_string();
    let colr_prof = |b: &[u8]| b.windows(8).any(|w| w == b"colrprof");
    let view = "/iiif/rgb.tif/0,0,256,256/256,/0/default.avif";
    let on = Server::start(&[("FILESYSTEM_PREFIX", &prefix)]);
    let avif = get_avif(on.port, view);
    assert!(colr_prof(&avif));
    let file = dir.path().join("icc.avif");
    std::fs::write(&file, &avif).expect("write");
    let out = Command::new("avifdec")
        .arg("--info")
        .arg(&file)
        .output()
        .expect("avifdec");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ICC Profile    : Present ("), "{text}");
    let grey = get_avif(on.port, "/iiif/rgb.tif/0,0,256,256/256,/0/gray.avif");
    assert!(!colr_prof(&grey), "no RGB profile on grey");
    let off = Server::start(&[("FILESYSTEM_PREFIX", &prefix), ("MAX_ICC", "0")]);
    assert!(!colr_prof(&get_avif(off.port, view)));
}

#[test]
fn lossless_is_exact_for_8_bit() {
    let dir = tempdir();
    images(dir.path());
    let server = Server::start(&[
        ("FILESYSTEM_PREFIX", &dir.path().to_string_lossy()),
        ("AVIF_QUALITY", "-1"),
    ]);
    for id in ["rgb.tif", "grey.tif"] {
        let (avif, png) = avif_and_png(
            server.port,
            &format!("/iiif/{id}/0,0,256,256/256,/0/default"),
        );
        assert!(avif == png, "{id}: {:.1} dB", psnr(&avif, &png));
        let (avif, png) = avif_and_png(
            server.port,
            &format!("/iiif/{id}/10,20,301,199/301,/0/default"),
        );
        assert!(avif == png, "{id} region: {:.1} dB", psnr(&avif, &png));
    }
}

#[test]
fn every_avif_codec_makes_valid_files() {
    let dir = tempdir();
    images(dir.path());
    let prefix = dir.path().to_string_lossy().to_string();
    for codec in ["1", "2", "3"] {
        let server = Server::start(&[("FILESYSTEM_PREFIX", &prefix), ("AVIF_CODEC", codec)]);
        for view in [
            "/iiif/rgb.tif/0,0,256,256/256,/0/default",
            "/iiif/rgb.tif/512,256,188,244/188,/0/default",
            "/iiif/grey.tif/0,0,256,256/256,/0/default",
        ] {
            let (avif, png) = avif_and_png(server.port, view);
            let db = psnr(&avif, &png);
            assert!(db >= 30.0, "AVIF_CODEC={codec} {view}: {db:.1} dB");
        }
    }
}

#[test]
fn a_bogus_avif_codec_is_a_start_up_warning() {
    let dir = tempdir();
    let (head, started) = start_up_log(&[
        ("FILESYSTEM_PREFIX", dir.path().as_os_str()),
        ("AVIF_CODEC", "9".as_ref()),
    ]);
    assert!(started, "{head:?}");
    let warned = head
        .iter()
        .any(|l| l.contains("WARN") && l.contains("AVIF_CODEC=9 names no encoder"));
    assert!(warned, "{head:?}");
}
