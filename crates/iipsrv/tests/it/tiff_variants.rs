//! Every container and compression variant of pyramidal TIFF, made by libvips and libtiff
//! from a pattern this test draws, served by the real binary over a real socket; the
//! decoded answers are compared with the source pixels.

use crate::harness::*;
use iipsrv_core::raster::Raster;
use iipsrv_core::view::Rect;
use std::path::Path;
use std::process::Command;

const W: u32 = 1001;
const H: u32 = 777;

struct Variant {
    name: &'static str,
    /// Mean error allowed on full-resolution pixels (0 for lossless storage).
    tolerance: f64,
    levels: usize,
    tile: u32,
}

fn make_variants(dir: &Path, src: &Path, grey_src: &Path) -> Vec<Variant> {
    let v = |name, tolerance, levels, tile| Variant {
        name,
        tolerance,
        levels,
        tile,
    };
    vips_tiff(
        dir,
        src,
        "jpeg.tif",
        &["--compression", "jpeg", "--Q", "95"],
    );
    vips_tiff(
        dir,
        src,
        "deflate.tif",
        &["--compression", "deflate", "--predictor", "horizontal"],
    );
    vips_tiff(
        dir,
        src,
        "lzw.tif",
        &["--compression", "lzw", "--predictor", "horizontal"],
    );
    vips_tiff(dir, src, "zstd.tif", &["--compression", "zstd"]);
    vips_tiff(
        dir,
        src,
        "webp.tif",
        &["--compression", "webp", "--Q", "95"],
    );
    vips_tiff(dir, src, "none.tif", &["--compression", "none"]);
    vips_tiff(
        dir,
        src,
        "bigtiff.tif",
        &["--compression", "jpeg", "--Q", "95", "--bigtiff"],
    );
    vips_tiff(
        dir,
        src,
        "subifd.tif",
        &["--compression", "deflate", "--subifd"],
    );
    vips_tiff(
        dir,
        src,
        "tile512.tif",
        &[
            "--compression",
            "deflate",
            "--tile-width",
            "512",
            "--tile-height",
            "512",
        ],
    );
    vips_tiff(dir, grey_src, "grey.tif", &["--compression", "deflate"]);
    vips_tiff(
        dir,
        grey_src,
        "grey-jpeg.tif",
        &["--compression", "jpeg", "--Q", "95"],
    );
    run(Command::new("tiffcp")
        .arg("-B")
        .arg(dir.join("lzw.tif"))
        .arg(dir.join("bigendian.tif")));
    run(Command::new("tiffcp")
        .args(["-c", "jpeg:95", "-t", "-w", "256", "-l", "256"])
        .arg(dir.join("none.tif"))
        .arg(dir.join("ycbcr.tif")));
    vec![
        v("jpeg.tif", 2.0, 3, 256),
        v("deflate.tif", 0.0, 3, 256),
        v("lzw.tif", 0.0, 3, 256),
        v("zstd.tif", 0.0, 3, 256),
        v("webp.tif", 3.0, 3, 256),
        v("none.tif", 0.0, 3, 256),
        v("bigtiff.tif", 2.0, 3, 256),
        v("subifd.tif", 0.0, 3, 256),
        v("tile512.tif", 0.0, 2, 512),
        v("grey.tif", 0.0, 3, 256),
        v("grey-jpeg.tif", 2.0, 3, 256),
        v("bigendian.tif", 0.0, 3, 256),
        v("ycbcr.tif", 3.0, 3, 256),
    ]
}

fn check_variant(port: u16, v: &Variant, src: &Raster) {
    let id = v.name;
    let info = get(port, &format!("/iiif/{id}/info.json"));
    assert_eq!(info.status, 200, "{id} info");
    let j: serde_json::Value = serde_json::from_slice(&info.body).expect("json");
    assert_eq!(
        (j["width"].as_u64(), j["height"].as_u64()),
        (Some(W as u64), Some(H as u64)),
        "{id}"
    );
    let factors = j["tiles"][0]["scaleFactors"].as_array().map(Vec::len);
    assert_eq!(factors, Some(v.levels), "{id} levels");
    assert_eq!(
        j["tiles"][0]["width"].as_u64(),
        Some(v.tile as u64),
        "{id} tile"
    );

    // a full-resolution interior tile, an edge tile, and an odd region, losslessly
    for (x, y, w, h) in [
        (256, 256, 256, 256),
        (768, 512, 233, 265),
        (17, 33, 300, 200),
    ] {
        let got = fetch(
            port,
            &format!("/iiif/{id}/{x},{y},{w},{h}/max/0/default.png"),
        );
        let want = src.crop(x, y, w, h);
        let err = mean_error(&got, &want);
        assert!(
            err <= v.tolerance,
            "{id} region {x},{y},{w},{h}: mean error {err}"
        );
    }
    // scaled answers: whole image and a region, from reduced levels
    for (region, size, r, w, h) in [
        (
            "full",
            "250,",
            Rect {
                x: 0,
                y: 0,
                w: W,
                h: H,
            },
            250,
            194,
        ),
        (
            "100,100,600,400",
            "300,",
            Rect {
                x: 100,
                y: 100,
                w: 600,
                h: 400,
            },
            300,
            200,
        ),
        (
            "0,0,512,512",
            "128,",
            Rect {
                x: 0,
                y: 0,
                w: 512,
                h: 512,
            },
            128,
            128,
        ),
    ] {
        let got = fetch(port, &format!("/iiif/{id}/{region}/{size}/0/default.png"));
        let err = mean_error(&got, &reference(src, r, w, h));
        assert!(
            err <= v.tolerance + 4.0,
            "{id} {region} at {size}: mean error {err}"
        );
    }
    // JPEG answer of a tile (passthrough where possible) decodes to the right pixels
    let got = fetch(
        port,
        &format!("/iiif/{id}/512,0,256,256/256,/0/default.jpg"),
    );
    let err = mean_error(&got, &src.crop(512, 0, 256, 256));
    assert!(err <= v.tolerance + 3.0, "{id} jpeg tile: mean error {err}");
}

#[test]
fn every_variant_serves_the_source_pixels() {
    let dir = tempdir();
    let rgb = pattern(W, H);
    let grey = iipsrv_core::pixel::to_gray(&rgb);
    let (src_png, grey_png) = (dir.path().join("src.png"), dir.path().join("grey.png"));
    write_png(&rgb, &src_png);
    write_png(&grey, &grey_png);
    let variants = make_variants(dir.path(), &src_png, &grey_png);
    let prefix = dir.path().to_string_lossy().to_string();
    let server = Server::start(&[("FILESYSTEM_PREFIX", &prefix)]);
    for v in &variants {
        let src = if v.name.starts_with("grey") {
            &grey
        } else {
            &rgb
        };
        check_variant(server.port, v, src);
    }
}

#[test]
fn one_pixel_image_and_our_own_writer() {
    let dir = tempdir();
    let one = Raster::from_vec(1, 1, 3, vec![200, 100, 50]).expect("1x1");
    write_png(&one, &dir.path().join("one.png"));
    vips_tiff(
        dir.path(),
        &dir.path().join("one.png"),
        "one.tif",
        &["--compression", "deflate"],
    );
    // a YCbCr JPEG pyramid written by our own TIFF writer (the demo image's format)
    iipsrv_server::demo::write_demo(&dir.path().join("demo.tif"), 700, 500).expect("demo");
    let prefix = dir.path().to_string_lossy().to_string();
    let server = Server::start(&[("FILESYSTEM_PREFIX", &prefix)]);
    let got = fetch(server.port, "/iiif/one.tif/full/max/0/default.png");
    assert_eq!(got.data, vec![200, 100, 50]);
    let up = fetch(server.port, "/iiif/one.tif/full/^10,/0/default.png");
    assert_eq!((up.width, up.height), (10, 10));
    let src = pattern(700, 500);
    let got = fetch(
        server.port,
        "/iiif/demo.tif/300,200,256,256/max/0/default.png",
    );
    assert!(mean_error(&got, &src.crop(300, 200, 256, 256)) < 3.0);
}

#[test]
fn huge_image_without_pyramid_is_refused_not_allocated() {
    let dir = tempdir();
    let black = dir.path().join("black.v");
    run(Command::new("vips")
        .arg("black")
        .arg(&black)
        .args(["12000", "12000"]));
    run(Command::new("vips")
        .arg("tiffsave")
        .arg(&black)
        .arg(dir.path().join("flat.tif"))
        .args([
            "--tile",
            "--tile-width",
            "256",
            "--tile-height",
            "256",
            "--compression",
            "deflate",
        ]));
    let prefix = dir.path().to_string_lossy().to_string();
    let mut server = Server::start(&[("FILESYSTEM_PREFIX", &prefix)]);
    assert_eq!(
        get(server.port, "/iiif/flat.tif/full/100,/0/default.jpg").status,
        400
    );
    let tile = fetch(
        server.port,
        "/iiif/flat.tif/2048,2048,256,256/max/0/default.png",
    );
    assert!(tile.data.iter().all(|&v| v == 0));
    assert!(server.alive());
}

#[test]
fn cielab_renders_as_vips_converts_it() {
    let dir = tempdir();
    let p = |n: &str| dir.path().join(n).to_string_lossy().to_string();
    write_png(&pattern(300, 200), &dir.path().join("src.png"));
    vips(&["colourspace", &p("src.png"), &p("lab.v"), "lab"]);
    vips(&["Lab2LabQ", &p("lab.v"), &p("labq.v")]);
    vips_tiff(
        dir.path(),
        Path::new(&p("labq.v")),
        "lab.tif",
        &["--compression", "deflate", "--predictor", "horizontal"],
    );
    // The independent decode: vips reads the CIELAB TIFF and converts it to sRGB.
    vips(&["colourspace", &p("lab.tif"), &p("back.v"), "srgb"]);
    vips(&["pngsave", &p("back.v"), &p("back.png")]);
    let expected = decode_image(&std::fs::read(p("back.png")).expect("png"));
    let prefix = dir.path().to_string_lossy().to_string();
    let server = Server::start(&[("FILESYSTEM_PREFIX", &prefix)]);
    let ours = fetch(server.port, "/iiif/lab.tif/full/max/0/default.png");
    assert_eq!(ours.channels, 3);
    // Two colour engines (vips's own formulas, ours through Little CMS) differ by a few
    // levels on saturated colours (3.2 on this pattern, 2.3 on make-images.sh's lab8.tif);
    // a wrong white point or sign gives 6 or more.
    let err = mean_error(&ours, &expected);
    assert!(err < 4.0, "CIELAB vs vips sRGB: mean error {err}");
    let obj = get(
        server.port,
        "/fcgi-bin/iipsrv.fcgi?FIF=lab.tif&OBJ=Colorspace,0-2,0",
    );
    assert!(String::from_utf8_lossy(&obj.body).contains(":1 0 4 3 0 1 2"));
}

#[test]
fn sixteen_bit_float_and_signed_samples_scale_by_their_range() {
    let dir = tempdir();
    let src = pattern(300, 200);
    let png = dir.path().join("src.png");
    write_png(&src, &png);
    vips_tiff(
        dir.path(),
        &sixteen_bit(dir.path(), &png),
        "u16.tif",
        &["--compression", "deflate", "--predictor", "horizontal"],
    );
    vips_tiff(
        dir.path(),
        &unit_float(dir.path(), &png),
        "f32.tif",
        &["--compression", "deflate", "--predictor", "float"],
    );
    let prefix = dir.path().to_string_lossy().to_string();
    let server = Server::start(&[("FILESYSTEM_PREFIX", &prefix)]);
    for id in ["u16.tif", "f32.tif"] {
        let ours = fetch(server.port, &format!("/iiif/{id}/full/max/0/default.png"));
        let err = mean_error(&ours, &src);
        assert!(err <= 1.0, "{id}: mean error {err}");
    }
    let obj = |id: &str| {
        let r = get(
            server.port,
            &format!(
                "/fcgi-bin/iipsrv.fcgi?FIF={id}&OBJ=Bits-per-channel&OBJ=Min-Max-sample-values"
            ),
        );
        String::from_utf8_lossy(&r.body).to_string()
    };
    assert!(obj("u16.tif").contains("Bits-per-channel:16"));
    assert!(obj("u16.tif").contains("0  65535"), "{}", obj("u16.tif"));
    assert!(obj("f32.tif").contains("Bits-per-channel:32"));
    // MINMAX narrows the input range: values at or above 0.5 turn white.
    let half = fetch(
        server.port,
        "/fcgi-bin/iipsrv.fcgi?FIF=f32.tif&MINMAX=-:0,0.5&CVT=png",
    );
    let mut doubled = src.clone();
    doubled
        .data
        .iter_mut()
        .for_each(|v| *v = (*v as u32 * 2).min(255) as u8);
    let err = mean_error(&half, &doubled);
    assert!(err <= 1.0, "MINMAX: mean error {err}");
    // SPECTRA: 16-bit values are divided by 65535, PFL gives them raw.
    let spectra = get(
        server.port,
        "/fcgi-bin/iipsrv.fcgi?FIF=u16.tif&SPECTRA=1,0,10,10",
    );
    let v = src.data[(10 * 300 + 10) * 3] as f64 * 257.0;
    assert!(
        String::from_utf8_lossy(&spectra.body).contains(&format!("{:.6}", v / 65535.0)),
        "{}",
        String::from_utf8_lossy(&spectra.body)
    );
}

/// Sets every FLOAT value of `tag` (written by `tiffset` as a placeholder: libtiff 4.5
/// writes 0 for SMin/SMaxSampleValue, one per sample) in the first IFD of a little-endian
/// classic TIFF.
fn patch_float_tag(path: &Path, tag: u16, value: f32) {
    let mut b = std::fs::read(path).expect("tiff");
    assert_eq!(&b[..4], b"II*\0", "little-endian classic TIFF");
    let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let ifd = u32_at(&b, 4) as usize;
    let entry = (0..u16_at(&b, ifd) as usize)
        .map(|n| ifd + 2 + 12 * n)
        .find(|&e| u16_at(&b, e) == tag)
        .expect("tag");
    assert_eq!(u16_at(&b, entry + 2), 11, "FLOAT");
    let count = u32_at(&b, entry + 4) as usize;
    let at = if count == 1 {
        entry + 8
    } else {
        u32_at(&b, entry + 8) as usize
    };
    for k in 0..count {
        b[at + 4 * k..at + 4 * k + 4].copy_from_slice(&value.to_le_bytes());
    }
    std::fs::write(path, b).expect("write");
}

/// A float TIFF's SMin/SMaxSampleValue are printed as the newest original prints them
/// (`%.9g`: `796.809326 1827.85742`, the range of make-images.sh's elevation), not as
/// the shortest round-trip decimal of the double.
#[test]
fn float_ranges_print_as_the_original() {
    let dir = tempdir();
    let png = dir.path().join("src.png");
    write_png(&pattern(300, 200), &png);
    let tif = vips_tiff(dir.path(), &unit_float(dir.path(), &png), "f.tif", &[]);
    for tag in ["340", "341"] {
        run(Command::new("tiffset")
            .args(["-s", tag, "1", "0"])
            .arg(&tif));
    }
    patch_float_tag(&tif, 340, 796.809_3);
    patch_float_tag(&tif, 341, 1_827.857_4);
    let app = app(dir.path(), &[]);
    let obj = text(&call(
        &app,
        "/fcgi-bin/iipsrv.fcgi?FIF=f.tif&OBJ=Min-Max-sample-values",
    ));
    // The original's layout: " min  max " per channel, the line's end trimmed.
    let pairs = " 796.809326  1827.85742 ".repeat(3);
    assert_eq!(
        obj.trim_end(),
        format!("Min-Max-sample-values:{}", pairs.trim_end())
    );
}

/// TIFF_QUALITY beside TIFF_COMPRESSION, as the original's one number: the deflate level
/// (1-9), the zstd level (1-19), the JPEG quality (0-100) of TIFF answers, read back by
/// libvips.
#[test]
fn tiff_quality_sets_the_compression_level() {
    let dir = tempdir();
    let src = pattern(600, 400);
    let png = dir.path().join("src.png");
    write_png(&src, &png);
    vips_tiff(dir.path(), &png, "a.tif", &["--compression", "deflate"]);
    let answer = |compression: &str, quality: &str| {
        let a = app(
            dir.path(),
            &["--tiff-compression", compression, "--tiff-quality", quality],
        );
        let r = call(&a, "/iiif/a.tif/full/max/0/default.tif");
        assert_eq!(r.status, 200, "{compression}/{quality}: {}", text(&r));
        let out = dir
            .path()
            .join(format!("answer-{compression}-{quality}.tif"));
        std::fs::write(&out, &r.body).expect("write");
        let back = out.with_extension("png");
        vips(&["copy", &out.to_string_lossy(), &back.to_string_lossy()]);
        (
            r.body.len(),
            decode_image(&std::fs::read(&back).expect("png")),
        )
    };
    // Lossless: the same pixels, fewer bytes at the higher level.
    for (compression, low, high) in [("2", "1", "9"), ("5", "1", "19")] {
        let (fast, a) = answer(compression, low);
        let (small, b) = answer(compression, high);
        assert_eq!(a, src);
        assert_eq!(b, src);
        assert!(small < fast, "{compression}: {small} !< {fast}");
    }
    // JPEG: the quality.
    let (coarse_len, coarse) = answer("3", "10");
    let (fine_len, fine) = answer("3", "95");
    assert!(fine_len > coarse_len);
    assert!(mean_error(&fine, &src) < mean_error(&coarse, &src));
    // Out of range is a start-up error naming the variable.
    let bad = iipsrv_server::settings::Config::from_args(["iipsrv", "--tiff-quality", "101"]);
    assert!(bad.is_err());
}

/// ImageMagick's pyramidal TIFF (`convert … ptif:`) stores every level as a full directory
/// marked as a page. Its reduced pages are the pyramid, as the original reads them, not a
/// stack: every stored level is listed (as many as libtiff counts directories) and served
/// from its own pixels, and there are no pages to pick.
#[test]
fn imagemagick_ptif_pages_are_the_pyramid() {
    let dir = tempdir();
    let src = pattern(2000, 1500);
    let png = dir.path().join("src.png");
    write_png(&src, &png);
    let ptif = dir.path().join("im.tif");
    run(Command::new("convert")
        .arg(&png)
        .args(["-define", "tiff:tile-geometry=256x256", "-compress", "zip"])
        .arg(format!("ptif:{}", ptif.display())));
    let listing = Command::new("tiffinfo")
        .arg(&ptif)
        .output()
        .expect("tiffinfo");
    let listing = String::from_utf8_lossy(&listing.stdout).to_string();
    let directories = listing.matches("TIFF Directory").count();
    assert!(
        listing.contains("multi-page document") && directories >= 5,
        "{listing}"
    );
    let a = app(dir.path(), &[]);
    let obj = text(&call(
        &a,
        "/fcgi-bin/iipsrv.fcgi?FIF=im.tif&OBJ=Resolution-number",
    ));
    assert!(
        obj.contains(&format!("Resolution-number:{directories}")),
        "{obj}"
    );
    // Not a stack: SDS picks no other page.
    let page = |sds: &str| {
        call(
            &a,
            &format!("/fcgi-bin/iipsrv.fcgi?FIF=im.tif{sds}&WID=300&CVT=png"),
        )
    };
    assert!(
        page("&SDS=1,0").body == page("").body,
        "SDS=1 picked another page"
    );
    // A zoomed-out view comes from the stored 500×375 page (ImageMagick's own reduction).
    let r = call(&a, "/iiif/im.tif/full/500,/0/default.png");
    assert_eq!(r.status, 200, "{}", text(&r));
    let got = decode_image(&r.body);
    let whole = Rect {
        x: 0,
        y: 0,
        w: 2000,
        h: 1500,
    };
    let want = reference(&src, whole, 500, 375);
    assert!(mean_error(&got, &want) < 3.0, "{}", mean_error(&got, &want));
}

/// Pages that shrink but are not halvings of each other (a scan whose second page is a
/// little narrower) stay a stack: each page is served, none is taken for a level.
#[test]
fn shrinking_pages_that_are_not_halvings_stay_a_stack() {
    let dir = tempdir();
    let p = |n: &str| dir.path().join(n).to_string_lossy().to_string();
    for (k, (w, v)) in [(600, 40u8), (580, 200)].into_iter().enumerate() {
        write_png(
            &Raster::filled(w, 400, 1, v),
            &dir.path().join(format!("p{k}.png")),
        );
        vips(&[
            "tiffsave",
            &p(&format!("p{k}.png")),
            &p(&format!("p{k}.tif")),
            "--tile",
        ]);
    }
    run(Command::new("tiffcp").args([&p("p0.tif"), &p("p1.tif"), &p("pages.tif")]));
    for k in ["0", "1"] {
        run(Command::new("tiffset").args(["-d", k, "-s", "254", "2", &p("pages.tif")]));
    }
    let a = app(dir.path(), &[]);
    let views = text(&call(
        &a,
        "/fcgi-bin/iipsrv.fcgi?FIF=pages.tif&OBJ=Horizontal-views",
    ));
    assert!(views.contains("Horizontal-views:0 1"), "{views}");
    let second = call(&a, "/fcgi-bin/iipsrv.fcgi?FIF=pages.tif&SDS=1,0&CVT=png");
    assert_eq!(decode_image(&second.body).data[0], 200, "page 1 is served");
}

/// A palette TIFF (ColorMap, written by ImageMagick at 1 and 8 bits) is refused with 501
/// at info.json, not served as grey indices.
#[test]
fn palette_tiffs_are_refused_not_served_as_indices() {
    let dir = tempdir();
    let png = dir.path().join("src.png");
    write_png(&pattern(300, 200), &png);
    let a = app(dir.path(), &[]);
    for (name, colours) in [("pal1.tif", "2"), ("pal8.tif", "200")] {
        let out = dir.path().join(name);
        run(Command::new("convert")
            .arg(&png)
            .args(["-colors", colours, "-type", "Palette"])
            .arg(&out));
        let info = Command::new("tiffinfo")
            .arg(&out)
            .output()
            .expect("tiffinfo");
        assert!(String::from_utf8_lossy(&info.stdout).contains("palette color"));
        let r = call(&a, &format!("/iiif/{name}/info.json"));
        assert_eq!(r.status, 501, "{name}: {}", text(&r));
        assert!(text(&r).contains("palette"), "{}", text(&r));
    }
}
