//! IIP image processing and the watermark, end to end through the handler on TIFFs made by
//! vips, with lossless (PNG) answers so values can be asserted exactly. The same operations
//! are compared with Debian's iipsrv by scripts/compat-test.sh.

use crate::harness::{app, call, decode_image, mean_error, tempdir, text, vips_tiff, write_png};
use iipsrv_core::raster::Raster;
use std::path::Path;

/// A 512×512 image: left half the colour `a`, right half `b`.
fn halves(dir: &Path, name: &str, a: [u8; 3], b: [u8; 3]) {
    let data = (0..512 * 512)
        .flat_map(|i| if i % 512 < 256 { a } else { b })
        .collect();
    let r = Raster::from_vec(512, 512, 3, data).expect("raster");
    let png = dir.join(format!("{name}.png"));
    write_png(&r, &png);
    vips_tiff(dir, &png, name, &["--compression", "deflate"]);
}

/// A 512×512 grey image rising from 0 (west) to 255 (east).
fn ramp(dir: &Path, name: &str) {
    let data = (0..512 * 512).map(|i| ((i % 512) / 2) as u8).collect();
    let r = Raster::from_vec(512, 512, 1, data).expect("raster");
    let png = dir.join(format!("{name}.png"));
    write_png(&r, &png);
    vips_tiff(dir, &png, name, &["--compression", "deflate"]);
}

fn png(app: &iipsrv_server::handler::App, query: &str) -> Raster {
    let r = call(app, &format!("/fcgi-bin/iipsrv.fcgi?{query}"));
    assert_eq!(
        r.status,
        200,
        "{query}: {}",
        String::from_utf8_lossy(&r.body)
    );
    decode_image(&r.body)
}

fn pixel(r: &Raster, x: u32, y: u32) -> Vec<u8> {
    let ch = r.channels as usize;
    let at = (y * r.width + x) as usize * ch;
    r.data[at..at + ch].to_vec()
}

#[test]
fn colour_operations_give_the_originals_values() {
    let dir = tempdir();
    halves(dir.path(), "h.tif", [200, 100, 50], [10, 20, 30]);
    let a = app(dir.path(), &[]);
    let q = |ops: &str| png(&a, &format!("FIF=h.tif&WID=256&{ops}&CVT=png"));
    assert_eq!(pixel(&q("CMP=JET"), 10, 10), vec![255, 92, 0]);
    assert_eq!(pixel(&q("CMP=HOT"), 200, 10), vec![30, 0, 0]);
    assert_eq!(
        pixel(&q("CTW=[0,1,0;0,0,1;1,0,0]"), 10, 10),
        vec![100, 50, 200]
    );
    let one_row = q("CTW=[0.5,0.5,0]");
    assert_eq!((one_row.channels, pixel(&one_row, 10, 10)), (1, vec![150]));
    assert_eq!(pixel(&q("SHD=0,0"), 10, 10), vec![27]);
    assert_eq!(
        pixel(&q("INV&GAM=2"), 10, 10),
        vec![98, 215, 245],
        "gamma, then invert"
    );
    assert_eq!(pixel(&q("GAM=log"), 200, 10), vec![110, 140, 157]);
    assert_eq!(pixel(&q("MINMAX=0:0,100"), 10, 10), vec![255, 100, 50]);
    let binary = q("COL=binary");
    assert!(binary.data.iter().all(|&v| v == 0 || v == 255));
    assert_eq!(
        (pixel(&binary, 10, 10), pixel(&binary, 200, 10)),
        (vec![255], vec![0])
    );
    let flat = q("CNV=gaussian");
    assert_eq!(
        pixel(&flat, 100, 100),
        vec![200, 100, 50],
        "a flat area stays flat"
    );
    let eq = q("CNT=eq");
    assert_eq!(pixel(&eq, 10, 10)[0], 255);
}

#[test]
fn stretch_and_hill_shading_of_a_height_field() {
    let dir = tempdir();
    ramp(dir.path(), "r.tif");
    let a = app(dir.path(), &[]);
    let st = png(&a, "FIF=r.tif&WID=256&CNT=st&CVT=png");
    assert!(pixel(&st, 0, 5)[0] <= 2 && pixel(&st, 255, 5)[0] >= 253);
    let west = png(&a, "FIF=r.tif&WID=256&SHD=270,30&CVT=png");
    let east = png(&a, "FIF=r.tif&WID=256&SHD=90,30&CVT=png");
    assert_eq!(west.channels, 1);
    let (w, e) = (pixel(&west, 128, 128)[0], pixel(&east, 128, 128)[0]);
    assert!(
        w > e + 40,
        "a slope rising east faces west: lit {w} from the west, {e} from the east"
    );
}

#[test]
fn bad_processing_arguments_are_400_with_a_reason() {
    let dir = tempdir();
    halves(dir.path(), "h.tif", [1, 2, 3], [4, 5, 6]);
    let a = app(dir.path(), &[]);
    for q in [
        "GAM=abc",
        "CNT=-1",
        "SHD=1",
        "CNV=[1,2,3,4]",
        "CTW=[a,b]",
        "MINMAX=x:1,2",
    ] {
        let r = call(&a, &format!("/fcgi-bin/iipsrv.fcgi?FIF=h.tif&{q}&CVT=jpeg"));
        assert_eq!(r.status, 400, "{q}");
        assert!(
            String::from_utf8_lossy(&r.body).contains("IIP: bad argument") || q.starts_with("CNV")
        );
    }
    let unknown_map = call(
        &a,
        "/fcgi-bin/iipsrv.fcgi?FIF=h.tif&CMP=rainbow&WID=64&CVT=jpeg",
    );
    assert_eq!(
        unknown_map.status, 200,
        "unknown colour maps are ignored, as in the original"
    );
}

#[test]
fn watermark_is_added_repeatably_and_only_when_likely() {
    let dir = tempdir();
    halves(dir.path(), "black.tif", [0, 0, 0], [0, 0, 0]);
    let mark = Raster::filled(32, 32, 3, 255);
    let mark_png = dir.path().join("mark.png");
    write_png(&mark, &mark_png);
    let wm = vips_tiff(
        dir.path(),
        &mark_png,
        "mark.tif",
        &["--compression", "none"],
    );
    let wm = wm.to_str().expect("path");
    let args = [
        "--watermark",
        wm,
        "--watermark-opacity",
        "0.5",
        "--max-image-cache-size",
        "0",
    ];
    let a = app(dir.path(), &args);
    let tile = || call(&a, "/fcgi-bin/iipsrv.fcgi?FIF=black.tif&PTL=1,0").body;
    let t = decode_image(&tile());
    let marked = t.data.iter().filter(|&&v| v == 127).count();
    assert_eq!(
        marked,
        32 * 32 * 3,
        "one half-opacity 32x32 mark in the tile"
    );
    assert_eq!(tile(), tile(), "the same request gives the same bytes");
    let never = app(
        dir.path(),
        &[&args[..4], &["--watermark-probability", "0"]].concat(),
    );
    let t = decode_image(&call(&never, "/fcgi-bin/iipsrv.fcgi?FIF=black.tif&PTL=1,0").body);
    assert!(t.data.iter().all(|&v| v == 0));
}

#[test]
fn spectra_reads_every_band_of_a_sequence_and_pfl_a_line() {
    let dir = tempdir();
    for (band, v) in [(0, 51u8), (1, 102), (2, 204)] {
        let r = Raster::filled(300, 200, 1, v);
        let png = dir.path().join(format!("b{band}.png"));
        write_png(&r, &png);
        vips_tiff(
            dir.path(),
            &png,
            &format!("bands_pyr_{band:03}_090.tif"),
            &[],
        );
    }
    let a = app(dir.path(), &[]);
    let r = call(&a, "/fcgi-bin/iipsrv.fcgi?FIF=bands&SPECTRA=1,0,10,10");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/xml"));
    let xml = String::from_utf8_lossy(&r.body).to_string();
    for (band, value) in [(0, "0.200000"), (1, "0.400000"), (2, "0.800000")] {
        assert!(
            xml.contains(&format!(
                "<wavelength>{band}</wavelength>\n\t\t<reflectance>{value}</reflectance>"
            )),
            "{xml}"
        );
    }
    let line = call(
        &a,
        "/fcgi-bin/iipsrv.fcgi?FIF=bands&SDS=2,90&PFL=1:10,5-14,5",
    );
    assert_eq!(
        String::from_utf8_lossy(&line.body),
        "{\n\t\"profile\": [204,204,204,204]\n}"
    );
    let outside = call(&a, "/fcgi-bin/iipsrv.fcgi?FIF=bands&SPECTRA=1,0,299,10");
    assert_eq!(outside.status, 400);
    assert_eq!(
        call(&a, "/fcgi-bin/iipsrv.fcgi?FIF=bands&PFL=1:10,5-900,5").status,
        400
    );
}

#[test]
fn multiband_file_bands_render_and_spectra_lists_them() {
    let dir = tempdir();
    let p = |n: &str| dir.path().join(n).to_string_lossy().to_string();
    // Six constant bands: band k holds 40k + 10.
    let mut bands = Vec::new();
    for k in 0..6u32 {
        let name = format!("b{k}.png");
        write_png(
            &Raster::filled(300, 200, 1, (40 * k + 10) as u8),
            &dir.path().join(&name),
        );
        bands.push(p(&name));
    }
    crate::harness::run(std::process::Command::new("vips").args([
        "bandjoin",
        &bands.join(" "),
        &p("six.v"),
    ]));
    vips_tiff(
        dir.path(),
        Path::new(&p("six.v")),
        "six.tif",
        &["--compression", "deflate"],
    );
    let a = app(dir.path(), &[]);
    // Without a selection the first three bands are the colours; CTW picks any three.
    assert_eq!(
        pixel(&png(&a, "FIF=six.tif&CVT=png"), 5, 5),
        vec![10, 50, 90]
    );
    let picked = png(
        &a,
        "FIF=six.tif&CTW=[0,0,0,1,0,0;0,0,0,0,1,0;0,0,0,0,0,1]&CVT=png",
    );
    assert_eq!(pixel(&picked, 5, 5), vec![130, 170, 210]);
    let one = png(&a, "FIF=six.tif&CTW=[0,0,0,0,0,1]&CVT=png");
    assert_eq!(pixel(&one, 5, 5), vec![210]);
    let r = call(&a, "/fcgi-bin/iipsrv.fcgi?FIF=six.tif&SPECTRA=0,0,10,10");
    let xml = String::from_utf8_lossy(&r.body).to_string();
    for k in 0..6u32 {
        let value = format!("{:.6}", (40 * k + 10) as f64 / 255.0);
        assert!(
            xml.contains(&format!(
                "<wavelength>{k}</wavelength>\n\t\t<reflectance>{value}"
            )),
            "{xml}"
        );
    }
}

/// A three-page TIFF stack `stack.tif` in `dir` (each page one grey 20, 80, 140, named
/// 450nm, 550nm, 650nm), made by vips and tiffcp as the original's stacks are.
fn stack(dir: &Path) {
    let p = |n: &str| dir.join(n).to_string_lossy().to_string();
    let mut pages = Vec::new();
    for k in 0..3u32 {
        let png = format!("p{k}.png");
        write_png(
            &Raster::filled(300, 200, 1, (60 * k + 20) as u8),
            &dir.join(&png),
        );
        let tif = format!("p{k}.tif");
        crate::harness::run(std::process::Command::new("vips").args([
            "tiffsave",
            &p(&png),
            &p(&tif),
            "--tile",
            "--tile-width",
            "256",
            "--tile-height",
            "256",
        ]));
        pages.push(p(&tif));
    }
    let mut cp = std::process::Command::new("tiffcp");
    cp.args(&pages).arg(p("stack.tif"));
    crate::harness::run(&mut cp);
    for (k, name) in ["450nm", "550nm", "650nm"].iter().enumerate() {
        for (tag, value) in [("254", "2"), ("269", *name)] {
            crate::harness::run(std::process::Command::new("tiffset").args([
                "-d",
                &k.to_string(),
                "-s",
                tag,
                value,
                &p("stack.tif"),
            ]));
        }
    }
}

#[test]
fn multipage_stack_pages_are_bands_with_names() {
    let dir = tempdir();
    stack(dir.path());
    let a = app(dir.path(), &[]);
    let stack = call(&a, "/fcgi-bin/iipsrv.fcgi?FIF=stack.tif&OBJ=stack");
    assert_eq!(stack.status, 200);
    let json: serde_json::Value = serde_json::from_slice(&stack.body).expect("json");
    assert_eq!(json[1]["name"], "550nm");
    assert_eq!(json[2]["id"], 2);
    let views = call(
        &a,
        "/fcgi-bin/iipsrv.fcgi?FIF=stack.tif&OBJ=Horizontal-views",
    );
    assert!(crate::harness::text(&views).contains("Horizontal-views:0 1 2"));
    // SDS picks a page; without it page 0 is served.
    assert_eq!(pixel(&png(&a, "FIF=stack.tif&CVT=png"), 5, 5), vec![20]);
    assert_eq!(
        pixel(&png(&a, "FIF=stack.tif&SDS=2,0&CVT=png"), 5, 5),
        vec![140]
    );
    assert_eq!(
        call(&a, "/fcgi-bin/iipsrv.fcgi?FIF=stack.tif&SDS=7,0&CVT=png").status,
        404
    );
    let r = call(&a, "/fcgi-bin/iipsrv.fcgi?FIF=stack.tif&SPECTRA=0,0,10,10");
    let xml = String::from_utf8_lossy(&r.body).to_string();
    for (name, v) in [("450nm", 20.0), ("550nm", 80.0), ("650nm", 140.0)] {
        let point = format!(
            "<wavelength>{name}</wavelength>\n\t\t<reflectance>{:.6}",
            v / 255.0
        );
        assert!(xml.contains(&point), "{xml}");
    }
}

/// IIIF_EXTENSIONS: the four extra qualities are the IIP operations of the same meaning, in
/// every output format, listed and accepted only when enabled.
#[test]
fn iiif_extra_qualities_are_the_iip_operations() {
    let dir = tempdir();
    halves(dir.path(), "h.tif", [50, 60, 70], [150, 160, 170]);
    let off = app(dir.path(), &[]);
    let on = app(dir.path(), &["--iiif-extensions", "1"]);
    let listed = |a| {
        let info = call(a, "/iiif/h.tif/info.json");
        let j: serde_json::Value = serde_json::from_slice(&info.body).expect("json");
        j["extraQualities"].clone()
    };
    assert_eq!(
        listed(&off),
        serde_json::json!(["color", "gray", "bitonal"])
    );
    let extra = listed(&on);
    let names: Vec<&str> = extra
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(names[3..], ["negative", "stretch", "equalization", "log"]);
    let iiif = |a, q: &str, f: &str| call(a, &format!("/iiif/h.tif/full/max/0/{q}.{f}"));
    for (quality, iip) in [
        ("negative", "INV"),
        ("stretch", "CNT=st"),
        ("equalization", "CNT=eq"),
        ("log", "GAM=log"),
    ] {
        let refused = iiif(&off, quality, "png");
        assert_eq!(refused.status, 400);
        assert!(text(&refused).contains(&format!("unsupported quality: {quality}")));
        let r = iiif(&on, quality, "png");
        assert_eq!(r.status, 200, "{quality}: {}", text(&r));
        assert!(r
            .header("link")
            .is_some_and(|l| l.contains(&format!("/full/max/0/{quality}.png>"))));
        let ours = decode_image(&r.body);
        assert_eq!(
            ours,
            png(&on, &format!("FIF=h.tif&{iip}&CVT=png")),
            "{quality}"
        );
        let mut formats = vec![
            ("jpg", "image/jpeg"),
            ("webp", "image/webp"),
            ("tif", "image/tiff"),
        ];
        if cfg!(feature = "avif") {
            formats.push(("avif", "image/avif"));
        }
        for (format, mime) in formats {
            let other = iiif(&on, quality, format);
            assert_eq!(
                (other.status, other.header("content-type")),
                (200, Some(mime))
            );
            assert_ne!(
                other.body,
                iiif(&on, "default", format).body,
                "{quality}.{format}"
            );
        }
        let jpeg = decode_image(&iiif(&on, quality, "jpg").body);
        assert!(mean_error(&jpeg, &ours) < 3.0, "{quality}.jpg");
    }
    // Values: the negative is 255 - v; log is ln(1 + 255 v) / ln(256); stretch widens the range.
    let at = |q: &str, x| pixel(&decode_image(&iiif(&on, q, "png").body), x, 5);
    assert_eq!(at("negative", 5), vec![205, 195, 185]);
    let log = |v: f64| ((1.0 + v).ln() / 256f64.ln() * 255.0).round() as u8;
    let near = |a: &[u8], b: &[u8]| a.iter().zip(b).all(|(x, y)| x.abs_diff(*y) <= 1);
    assert!(near(&at("log", 5), &[log(50.0), log(60.0), log(70.0)]));
    let (low, high) = (at("stretch", 5), at("stretch", 500));
    assert!(low[0] < 50 && high[2] > 170, "{low:?} {high:?}");
}

/// IIIF_DELIMITER: `stack.tif;2` is page 2 of the stack, in info.json and image requests,
/// with the identifier kept as asked in `id`; without the setting it names no file.
#[test]
fn iiif_delimiter_selects_a_page_of_a_stack() {
    let dir = tempdir();
    stack(dir.path());
    let a = app(dir.path(), &["--iiif-delimiter", ";"]);
    let grey = |path: &str| {
        let r = call(&a, path);
        assert_eq!(r.status, 200, "{path}: {}", text(&r));
        pixel(&decode_image(&r.body), 5, 5)
    };
    assert_eq!(grey("/iiif/stack.tif;2/full/max/0/default.png"), vec![140]);
    assert_eq!(
        grey("/iiif/stack.tif;1/0,0,256,200/256,/0/default.png"),
        vec![80]
    );
    assert_eq!(grey("/iiif/stack.tif/full/max/0/default.png"), vec![20]);
    assert_eq!(
        grey("/iiif/stack.tif%3B2/full/max/0/default.png"),
        vec![140]
    );
    let info = call(&a, "/iiif/stack.tif;2/info.json");
    let j: serde_json::Value = serde_json::from_slice(&info.body).expect("json");
    assert!(
        j["id"]
            .as_str()
            .is_some_and(|id| id.ends_with("/iiif/stack.tif;2")),
        "{j}"
    );
    assert_eq!(
        (j["width"].as_u64(), j["height"].as_u64()),
        (Some(300), Some(200))
    );
    assert_eq!(call(&a, "/iiif/stack.tif;7/info.json").status, 404);
    let plain = app(dir.path(), &[]);
    assert_eq!(call(&plain, "/iiif/stack.tif;2/info.json").status, 404);
}
