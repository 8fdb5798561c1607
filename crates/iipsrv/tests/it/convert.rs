//! `iipsrv convert`: pyramids made from PNG, JPEG and striped/tiled TIFF inputs, 8 and
//! 16-bit, read back by libtiff (`tiffinfo`), libvips and our own server; lossless modes
//! pixel-exact, JPEG close; large inputs in bounded memory; bad inputs a one-line error
//! with no partial file left.

use crate::harness::{app, call, decode_image, mean_error, pattern, run, tempdir, vips, write_png};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `iipsrv convert` with `args`.
pub(crate) fn convert(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iipsrv"))
        .arg("convert")
        .args(args)
        .output()
        .expect("run iipsrv convert")
}

/// `iipsrv convert INPUT OUTPUT ARGS`, which must succeed quietly.
pub(crate) fn converted(input: &Path, output: &Path, args: &[&str]) {
    let mut all = vec![
        input.to_str().expect("path"),
        output.to_str().expect("path"),
    ];
    all.extend_from_slice(args);
    let out = convert(&all);
    assert!(
        out.status.success(),
        "convert {all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty(), "quiet when not on a terminal");
}

/// The largest sample difference libvips finds between two images.
pub(crate) fn vips_max_difference(a: &Path, b: &Path, dir: &Path) -> f64 {
    let p = |n: &str| dir.join(n).to_string_lossy().to_string();
    vips(&[
        "subtract",
        a.to_str().expect("a"),
        b.to_str().expect("b"),
        &p("d.v"),
    ]);
    vips(&["abs", &p("d.v"), &p("a.v")]);
    let out = Command::new("vips")
        .args(["max", &p("a.v")])
        .output()
        .expect("vips max");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a number")
}

/// What `tiffinfo` prints of a file.
fn tiffinfo(path: &Path) -> String {
    let out = Command::new("tiffinfo")
        .arg(path)
        .output()
        .expect("tiffinfo");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// `tiffinfo`'s directories: (width, height) of each, checked to be tiled.
fn tiff_levels(path: &Path) -> Vec<(u32, u32)> {
    let out = Command::new("tiffinfo")
        .arg(path)
        .output()
        .expect("tiffinfo");
    assert!(out.status.success(), "tiffinfo failed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Tile Width: 256 Tile Length: 256"), "{text}");
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Image Width: "))
        .map(|l| {
            let mut n = l.split_whitespace().filter_map(|w| w.parse().ok());
            (n.next().expect("width"), n.next().expect("height"))
        })
        .collect()
}

/// Inputs made from the drawn pattern: PNG, baseline JPEG, striped and tiled TIFF.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let png = dir.join("in.png");
    write_png(&pattern(1001, 777), &png);
    let p = |n: &str| dir.join(n).to_string_lossy().to_string();
    vips(&["copy", &p("in.png"), &format!("{}[Q=95]", p("in.jpg"))]);
    vips(&[
        "tiffsave",
        &p("in.png"),
        &p("strips.tif"),
        "--compression",
        "lzw",
    ]);
    vips(&[
        "tiffsave",
        &p("in.png"),
        &p("tiles.tif"),
        "--tile",
        "--tile-width",
        "112",
        "--tile-height",
        "96",
    ]);
    vec![
        png,
        dir.join("in.jpg"),
        dir.join("strips.tif"),
        dir.join("tiles.tif"),
    ]
}

#[test]
fn lossless_pyramids_are_pixel_exact_everywhere() {
    let dir = tempdir();
    let src = pattern(1001, 777);
    for input in inputs(dir.path())
        .into_iter()
        .filter(|p| !p.ends_with("in.jpg"))
    {
        for method in ["deflate", "zstd", "lzw", "none"] {
            let name = format!(
                "{}-{method}.tif",
                input.file_stem().and_then(|s| s.to_str()).expect("name")
            );
            let out = dir.path().join(&name);
            converted(&input, &out, &["--compression", method]);
            assert_eq!(
                tiff_levels(&out),
                vec![(1001, 777), (500, 388), (250, 194)],
                "{name}: levels down to one tile, halved as libvips does"
            );
            if method != "zstd" {
                // Debian's libvips reads zstd TIFF only when its libtiff has it; the
                // others it must read exactly.
                assert_eq!(
                    vips_max_difference(&out, &input, dir.path()),
                    0.0,
                    "{name} in vips"
                );
            }
            let served = call(
                &app(dir.path(), &[]),
                &format!("/iiif/{name}/full/max/0/default.png"),
            );
            assert_eq!(served.status, 200, "{name}");
            assert_eq!(
                mean_error(&decode_image(&served.body), &src),
                0.0,
                "{name} served"
            );
        }
    }
}

#[test]
fn jpeg_and_webp_pyramids_are_close_and_levels_match_the_source() {
    let dir = tempdir();
    let src = pattern(1001, 777);
    for input in inputs(dir.path()) {
        let stem = input
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("name")
            .to_string();
        for (method, quality) in [("jpeg", "90"), ("webp", "90")] {
            let name = format!("{stem}-{method}.tif");
            let out = dir.path().join(&name);
            converted(
                &input,
                &out,
                &["--compression", method, "--quality", quality],
            );
            assert_eq!(tiff_levels(&out).len(), 3, "{name}");
            let a = app(dir.path(), &[]);
            let full =
                decode_image(&call(&a, &format!("/iiif/{name}/full/max/0/default.png")).body);
            let e = mean_error(&full, &src);
            assert!(e < 3.0, "{name}: mean error {e} at full size");
            let small =
                decode_image(&call(&a, &format!("/iiif/{name}/full/250,/0/default.png")).body);
            let reference = crate::harness::reference(
                &src,
                iipsrv_core::view::Rect {
                    x: 0,
                    y: 0,
                    w: 1001,
                    h: 777,
                },
                250,
                194,
            );
            let e = mean_error(&small, &reference);
            assert!(e < 4.0, "{name}: mean error {e} of the smallest level");
        }
    }
}

#[test]
fn sixteen_bit_inputs_stay_sixteen_bit_when_lossless() {
    let dir = tempdir();
    let png = dir.path().join("in.png");
    write_png(&pattern(600, 400), &png);
    let u16v = crate::harness::sixteen_bit(dir.path(), &png);
    let p = |n: &str| dir.path().join(n);
    // Spread the values off multiples of 257, so a trip through 8 bits would show.
    vips(&[
        "linear",
        u16v.to_str().expect("v"),
        p("s.v").to_str().expect("s"),
        "0.99",
        "0",
    ]);
    vips(&[
        "cast",
        p("s.v").to_str().expect("s"),
        p("c.v").to_str().expect("c"),
        "ushort",
    ]);
    vips(&[
        "pngsave",
        p("c.v").to_str().expect("c"),
        p("in16.png").to_str().expect("p"),
    ]);
    vips(&[
        "tiffsave",
        p("c.v").to_str().expect("c"),
        p("in16.tif").to_str().expect("t"),
    ]);
    for input in ["in16.png", "in16.tif"] {
        let out = p(&format!("{input}-zstd.tif"));
        converted(&p(input), &out, &["--compression", "deflate"]);
        let info = tiffinfo(&out);
        assert!(info.contains("Bits/Sample: 16"), "{info}");
        assert_eq!(
            vips_max_difference(&out, &p("c.v"), dir.path()),
            0.0,
            "{input}"
        );
        let j = call(
            &app(dir.path(), &[]),
            &format!("/iiif/{input}-zstd.tif/info.json"),
        );
        assert_eq!(j.status, 200);
        // JPEG tiles hold 8 bits: v × 255 / 65535, rounded.
        let out8 = p(&format!("{input}-jpeg.tif"));
        converted(
            &p(input),
            &out8,
            &["--compression", "jpeg", "--quality", "95"],
        );
        assert!(tiffinfo(&out8).contains("Bits/Sample: 8"));
    }
}

#[test]
fn bigtiff_alpha_and_icc_are_carried() {
    let dir = tempdir();
    let p = |n: &str| dir.path().join(n).to_string_lossy().to_string();
    write_png(&pattern(700, 500), Path::new(&p("in.png")));
    vips(&["bandjoin_const", &p("in.png"), &p("rgba.v"), "200"]);
    vips(&["pngsave", &p("rgba.v"), &p("rgba.png")]);
    let out = dir.path().join("big.tif");
    converted(
        Path::new(&p("rgba.png")),
        &out,
        &["--bigtiff", "--compression", "deflate"],
    );
    let head = std::fs::read(&out).expect("read");
    assert_eq!(&head[..4], b"II\x2b\x00", "BigTIFF header");
    assert_eq!(
        vips_max_difference(&out, Path::new(&p("rgba.png")), dir.path()),
        0.0
    );
    // JPEG drops alpha; an ICC profile on the input goes to the output.
    vips(&["jpegsave", &p("in.png"), &p("icc.jpg"), "--profile", "srgb"]);
    let jpeg = dir.path().join("icc.tif");
    converted(Path::new(&p("icc.jpg")), &jpeg, &[]);
    let info = tiffinfo(&jpeg);
    assert!(info.contains("ICC Profile: <present>"), "{info}");
    let rgb = dir.path().join("rgb.tif");
    converted(Path::new(&p("rgba.png")), &rgb, &["--compression", "jpeg"]);
    let info = tiffinfo(&rgb);
    assert!(info.contains("Samples/Pixel: 3"), "{info}");
}

/// The XMP packet of a JPEG (given by ImageMagick), of a PNG (given by vips from it) and of
/// a TIFF goes to the output's XMLPacket tag, as libtiff reads it back.
#[test]
fn xmp_packets_are_carried() {
    let dir = tempdir();
    let p = |n: &str| dir.path().join(n).to_string_lossy().to_string();
    write_png(&pattern(300, 200), Path::new(&p("in.png")));
    let packet = "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><carried/></x:xmpmeta>";
    std::fs::write(p("in.xmp"), packet).expect("write");
    let xmp = format!("XMP:{}", p("in.xmp"));
    run(Command::new("convert").args([&p("in.png"), "-profile", &xmp, &p("x.jpg")]));
    vips(&["pngsave", &p("x.jpg"), &p("x.png")]);
    vips(&["tiffsave", &p("x.jpg"), &p("x.tif")]);
    for input in ["x.jpg", "x.png", "x.tif"] {
        let out = dir.path().join(format!("{input}.out.tif"));
        converted(Path::new(&p(input)), &out, &[]);
        let info = tiffinfo(&out);
        assert!(info.contains("<carried/>"), "{input}: {info}");
    }
}

/// A 12000 × 9000 JPEG (324 MB of pixels) converts in well under that: the input is read
/// in bands and the pyramid kept to rows of tiles.
#[test]
fn large_inputs_convert_in_bounded_memory() {
    let dir = tempdir();
    let p = |n: &str| dir.path().join(n).to_string_lossy().to_string();
    vips(&[
        "gaussnoise",
        &p("n.v"),
        "12000",
        "9000",
        "--mean",
        "128",
        "--sigma",
        "40",
    ]);
    vips(&[
        "bandjoin",
        &format!("{} {} {}", p("n.v"), p("n.v"), p("n.v")),
        &p("rgb.v"),
    ]);
    vips(&["cast", &p("rgb.v"), &p("u8.v"), "uchar"]);
    vips(&["jpegsave", &p("u8.v"), &p("big.jpg"), "--Q", "85"]);
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(env!("CARGO_BIN_EXE_iipsrv"))
        .args(["convert", &p("big.jpg"), &p("big.tif")])
        .output()
        .expect("run under /usr/bin/time (Debian package time)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kb: u64 = String::from_utf8_lossy(&out.stderr)
        .trim()
        .lines()
        .last()
        .and_then(|l| l.parse().ok())
        .expect("max RSS");
    assert!(kb < 200_000, "peak RSS {kb} kB for a 324 MB image");
    assert_eq!(
        tiff_levels(Path::new(&p("big.tif")))[..2],
        [(12000, 9000), (6000, 4500)]
    );
}

#[test]
fn bad_inputs_are_one_line_errors_and_leave_nothing() {
    let dir = tempdir();
    let p = |n: &str| dir.path().join(n);
    write_png(&pattern(300, 200), &p("in.png"));
    vips(&[
        "copy",
        p("in.png").to_str().expect("p"),
        p("in.jpg").to_str().expect("p"),
    ]);
    let jpeg = std::fs::read(p("in.jpg")).expect("read");
    std::fs::write(p("cut.jpg"), &jpeg[..jpeg.len() / 2]).expect("write");
    std::fs::write(p("text.tif"), "not an image").expect("write");
    let float = crate::harness::unit_float(dir.path(), &p("in.png"));
    run(Command::new("vips").args([
        "tiffsave",
        float.to_str().expect("f"),
        p("float.tif").to_str().expect("f"),
    ]));
    for (input, expect) in [
        ("cut.jpg", "JPEG"),
        ("text.tif", "not a TIFF, JPEG, PNG or JPEG2000"),
        ("float.tif", "8 or 16-bit"),
        ("missing.png", "cannot open"),
    ] {
        let out = convert(&[
            p(input).to_str().expect("p"),
            p("out.tif").to_str().expect("p"),
        ]);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(1), "{input}: {err}");
        assert!(
            err.contains(expect) && err.trim().lines().count() == 1,
            "{input}: {err}"
        );
        assert!(
            !p("out.tif").exists() && !p("out.tif.partial").exists(),
            "{input}: no output left"
        );
    }
    let bad_tile = convert(&[
        p("in.png").to_str().expect("p"),
        p("out.tif").to_str().expect("p"),
        "--tile",
        "100",
    ]);
    assert!(String::from_utf8_lossy(&bad_tile.stderr).contains("multiple of 16"));
    let webp_grey = {
        vips(&[
            "colourspace",
            p("in.png").to_str().expect("p"),
            p("g.png").to_str().expect("p"),
            "b-w",
        ]);
        convert(&[
            p("g.png").to_str().expect("p"),
            p("out.tif").to_str().expect("p"),
            "--compression",
            "webp",
        ])
    };
    assert!(String::from_utf8_lossy(&webp_grey.stderr).contains("WebP tiles hold RGB"));
}
