//! Images without a pyramid — plain JPEG and PNG files, a striped TIFF — served with levels
//! built in memory, compared with the pattern they were made from; the log says a
//! pyramidal TIFF would be faster.

use crate::harness::*;
use iipsrv_core::view::Rect;
use std::process::Command;

const W: u32 = 1500;
const H: u32 = 1000;

#[test]
fn jpeg_png_and_striped_tiff_get_levels() {
    let dir = tempdir();
    let src = pattern(W, H);
    let png = dir.path().join("plain.png");
    write_png(&src, &png);
    let p = |n: &str| dir.path().join(n).to_string_lossy().to_string();
    run(Command::new("vips").args(["jpegsave", &p("plain.png"), &p("plain.jpg"), "--Q", "95"]));
    run(Command::new("vips").args([
        "tiffsave",
        &p("plain.png"),
        &p("striped.tif"),
        "--compression",
        "deflate",
    ]));
    let log = dir.path().join("log.txt");
    let images = dir.path().to_string_lossy().to_string();
    let logfile = log.to_string_lossy().to_string();
    let mut server = Server::start(&[("FILESYSTEM_PREFIX", &images), ("LOGFILE", &logfile)]);
    let port = server.port;
    for (id, full_tolerance) in [("plain.png", 0.0), ("plain.jpg", 2.0), ("striped.tif", 0.0)] {
        let info = get(port, &format!("/iiif/{id}/info.json"));
        assert_eq!(info.status, 200, "{id}");
        let j: serde_json::Value = serde_json::from_slice(&info.body).expect("json");
        assert_eq!(
            j["tiles"][0]["scaleFactors"],
            serde_json::json!([1, 2, 4, 8]),
            "{id}"
        );
        let full = fetch(port, &format!("/iiif/{id}/full/max/0/default.png"));
        assert!(mean_error(&full, &src) <= full_tolerance, "{id} full");
        let region = Rect {
            x: 200,
            y: 100,
            w: 1000,
            h: 800,
        };
        let small = fetch(
            port,
            &format!("/iiif/{id}/200,100,1000,800/250,/0/default.png"),
        );
        let expected = reference(&src, region, 250, 200);
        let err = mean_error(&small, &expected);
        assert!(err < 3.0, "{id} scaled: mean error {err}");
        let tile = fetch(port, &format!("/fcgi-bin/iipsrv.fcgi?FIF={id}&JTL=1,1"));
        assert_eq!((tile.width, tile.height), (119, 250), "{id} edge tile");
    }
    assert!(server.alive());
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.contains("has no pyramid"), "{text}");
}

#[test]
fn damaged_plain_files_are_errors() {
    let dir = tempdir();
    let png = dir.path().join("ok.png");
    write_png(&pattern(600, 400), &png);
    let bytes = std::fs::read(&png).expect("png");
    std::fs::write(dir.path().join("cut.png"), &bytes[..bytes.len() / 2]).expect("write");
    let mut jpeg = vec![0xff, 0xd8, 0xff, 0xe0];
    jpeg.extend(std::iter::repeat_n(7u8, 500));
    std::fs::write(dir.path().join("junk.jpg"), &jpeg).expect("write");
    let prefix = dir.path().to_string_lossy().to_string();
    let mut server = Server::start(&[("FILESYSTEM_PREFIX", &prefix)]);
    for id in ["cut.png", "junk.jpg"] {
        let r = get(server.port, &format!("/iiif/{id}/info.json"));
        assert!((400..600).contains(&r.status), "{id}: {}", r.status);
    }
    assert!(server.alive());
    assert_eq!(get(server.port, "/iiif/ok.png/info.json").status, 200);
}
