//! Every image type through the four protocols: the full-resolution top-left tile asked
//! through IIIF, IIP (JTL), DeepZoom and Zoomify is the same view, so the same bytes — for
//! 8-bit, 16-bit, float, CIELAB, multi-band TIFF and JPEG2000 alike.

use crate::harness::*;
use std::process::Command;

#[test]
fn every_type_answers_the_same_tile_through_four_protocols() {
    let dir = tempdir();
    let p = |n: &str| dir.path().join(n).to_string_lossy().to_string();
    write_png(&pattern(700, 500), &dir.path().join("src.png"));
    let tiff = |src: &str, out: &str, extra: &[&str]| {
        let mut args = vec!["tiffsave", src, out, "--tile", "--pyramid"];
        args.extend_from_slice(&["--tile-width", "256", "--tile-height", "256"]);
        args.extend_from_slice(extra);
        vips(&args);
    };
    tiff(&p("src.png"), &p("rgb8.tif"), &["--compression", "deflate"]);
    let png = dir.path().join("src.png");
    let u16 = sixteen_bit(dir.path(), &png).to_string_lossy().to_string();
    tiff(&u16, &p("u16.tif"), &["--compression", "lzw"]);
    let f32 = unit_float(dir.path(), &png).to_string_lossy().to_string();
    tiff(
        &f32,
        &p("f32.tif"),
        &["--compression", "deflate", "--predictor", "float"],
    );
    vips(&["colourspace", &p("src.png"), &p("lab.v"), "lab"]);
    vips(&["Lab2LabQ", &p("lab.v"), &p("labq.v")]);
    tiff(&p("labq.v"), &p("lab.tif"), &["--compression", "deflate"]);
    vips(&[
        "bandjoin",
        &format!("{} {}", p("src.png"), p("src.png")),
        &p("six.v"),
    ]);
    tiff(&p("six.v"), &p("six.tif"), &["--compression", "deflate"]);
    run(Command::new("opj_compress").args(["-i", &p("src.png"), "-o", &p("rgb.jp2"), "-n", "4"]));
    let server = Server::start(&[("FILESYSTEM_PREFIX", &p(""))]);
    let port = server.port;
    for id in [
        "rgb8.tif", "u16.tif", "f32.tif", "lab.tif", "six.tif", "rgb.jp2",
    ] {
        let info = get(port, &format!("/iiif/{id}/info.json"));
        assert_eq!(info.status, 200, "{id}");
        let j: serde_json::Value = serde_json::from_slice(&info.body).expect("json");
        let levels = j["tiles"][0]["scaleFactors"].as_array().map_or(0, Vec::len);
        assert!(levels >= 2, "{id}");
        let top = levels - 1;
        let urls = [
            format!("/iiif/{id}/0,0,256,256/256,/0/default.jpg"),
            format!("/fcgi-bin/iipsrv.fcgi?FIF={id}&JTL={top},0"),
            format!("/deepzoom/{id}_files/10/0_0.jpg"),
            format!("/zoomify/{id}/TileGroup0/{top}-0-0.jpg"),
        ];
        let bodies: Vec<Vec<u8>> = urls
            .iter()
            .map(|u| {
                let r = get(port, u);
                assert_eq!(r.status, 200, "{u}: {}", String::from_utf8_lossy(&r.body));
                r.body.to_vec()
            })
            .collect();
        for (u, b) in urls.iter().zip(&bodies).skip(1) {
            assert!(b == &bodies[0], "{u} differs from the IIIF tile of {id}");
        }
        let tile = decode_image(&bodies[0]);
        assert_eq!((tile.width, tile.height), (256, 256), "{id}");
    }
}

/// The size of the ICC profile libvips finds in an image file, if any.
fn icc_size_by_vips(path: &std::path::Path) -> Option<usize> {
    blob_size_by_vips(path, "icc-profile-data")
}

/// The size of a binary field libvips finds in an image file (`vipsheader -a` says
/// "FIELD: N bytes of binary data"), if any.
fn blob_size_by_vips(path: &std::path::Path, field: &str) -> Option<usize> {
    let out = Command::new("vipsheader")
        .arg("-a")
        .arg(path)
        .output()
        .expect("vipsheader");
    assert!(out.status.success(), "vips cannot read {}", path.display());
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let line = text.lines().find(|l| l.starts_with(&format!("{field}:")))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The ICC profile of a plain PNG or JPEG (Display P3, written by vips) reaches answers in
/// every output format, as libvips reads them back; a grey answer of a colour image and an
/// answer with EMBED_ICC=0 carry none.
#[test]
fn icc_profiles_of_plain_files_reach_every_format() {
    let dir = tempdir();
    let p = |n: &str| dir.path().join(n).to_string_lossy().to_string();
    write_png(&pattern(600, 400), &dir.path().join("src.png"));
    vips(&["pngsave", &p("src.png"), &p("p3.png"), "--profile", "p3"]);
    vips(&["jpegsave", &p("src.png"), &p("p3.jpg"), "--profile", "p3"]);
    let profile = icc_size_by_vips(&dir.path().join("p3.png")).expect("vips wrote a profile");
    let server = Server::start(&[("FILESYSTEM_PREFIX", &p(""))]);
    let plain = Server::start(&[("FILESYSTEM_PREFIX", &p("")), ("EMBED_ICC", "0")]);
    let answer = |port: u16, url: &str, name: &str| {
        let r = get(port, url);
        assert_eq!(r.status, 200, "{url}: {}", String::from_utf8_lossy(&r.body));
        let path = dir.path().join(name);
        std::fs::write(&path, &r.body).expect("write");
        icc_size_by_vips(&path)
    };
    let mut formats = vec!["jpg", "png", "webp", "tif"];
    if cfg!(feature = "avif") {
        formats.push("avif");
    }
    for id in ["p3.png", "p3.jpg"] {
        for (k, ext) in formats.iter().enumerate() {
            let url = format!("/iiif/{id}/0,0,300,300/150,/0/default.{ext}");
            assert_eq!(
                answer(server.port, &url, &format!("a{k}.{ext}")),
                Some(profile),
                "{url}"
            );
            assert_eq!(
                answer(plain.port, &url, &format!("b{k}.{ext}")),
                None,
                "{url} EMBED_ICC=0"
            );
            let grey = format!("/iiif/{id}/full/100,/0/gray.{ext}");
            assert_eq!(
                answer(server.port, &grey, &format!("c{k}.{ext}")),
                None,
                "{grey}"
            );
        }
        let cvt = format!("/fcgi-bin/iipsrv.fcgi?FIF={id}&WID=200&CVT=png");
        assert_eq!(answer(server.port, &cvt, "cvt.png"), Some(profile), "{cvt}");
    }
}

/// An XMP packet with a title.
const PACKET: &str = "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF \
    xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"><rdf:Description \
    xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:title>Test title</dc:title>\
    </rdf:Description></rdf:RDF></x:xmpmeta>";

/// The XMP packet of a plain JPEG (given by ImageMagick), of a TIFF (tag 700) and a PNG
/// (a zTXt chunk) written by vips from that JPEG goes into answers that are not one stored tile — the
/// original's CVT answers — in JPEG, PNG, WebP, TIFF and AVIF, as libvips reads them
/// back; tiles carry none; OBJ=xmp answers it.
#[test]
fn xmp_packets_reach_region_answers_not_tiles() {
    let dir = tempdir();
    let p = |n: &str| dir.path().join(n).to_string_lossy().to_string();
    write_png(&pattern(600, 400), &dir.path().join("src.png"));
    std::fs::write(dir.path().join("t.xmp"), PACKET).expect("write");
    run(Command::new("convert").args([
        &p("src.png"),
        "-profile",
        &format!("XMP:{}", p("t.xmp")),
        &p("xmp.jpg"),
    ]));
    let tiled = [
        "--tile",
        "--pyramid",
        "--tile-width",
        "256",
        "--tile-height",
        "256",
    ];
    vips(&[&["tiffsave", &p("xmp.jpg"), &p("xmp.tif")][..], &tiled].concat());
    vips(&["pngsave", &p("xmp.jpg"), &p("xmp.png")]);
    let server = Server::start(&[("FILESYSTEM_PREFIX", &p(""))]);
    let answer = |url: &str, name: &str| {
        let r = get(server.port, url);
        assert_eq!(r.status, 200, "{url}: {}", String::from_utf8_lossy(&r.body));
        let path = dir.path().join(name);
        std::fs::write(&path, &r.body).expect("write");
        blob_size_by_vips(&path, "xmp-data")
    };
    let mut formats = vec!["jpg", "png", "webp", "tif"];
    if cfg!(feature = "avif") {
        formats.push("avif");
    }
    for id in ["xmp.tif", "xmp.jpg", "xmp.png"] {
        for &ext in &formats {
            let url = format!("/iiif/{id}/full/300,/0/default.{ext}");
            assert_eq!(
                answer(&url, &format!("a.{ext}")),
                Some(PACKET.len()),
                "{url}"
            );
            let tile = format!("/iiif/{id}/0,0,256,256/256,/0/default.{ext}");
            assert_eq!(answer(&tile, &format!("t.{ext}")), None, "{tile}");
        }
        let cvt = format!("/fcgi-bin/iipsrv.fcgi?FIF={id}&WID=200&CVT=jpeg");
        assert_eq!(answer(&cvt, "cvt.jpg"), Some(PACKET.len()), "{cvt}");
        let obj = get(
            server.port,
            &format!("/fcgi-bin/iipsrv.fcgi?FIF={id}&OBJ=xmp"),
        );
        assert!(String::from_utf8_lossy(&obj.body).contains("<dc:title>Test title</dc:title>"));
    }
}
