//! Microscope slides: Aperio SVS files written by tifffile in Aperio's layout (JPEG tiles
//! with shared JPEGTables, JPEG2000 tiles of compression 33005 and 33003, the thumbnail,
//! label and macro), Philips TIFF (sparse tiles, the label and macro as base64 JPEGs) and
//! Ventana BIF, read by OpenSlide as the oracle: our levels, microns per pixel,
//! pixels of regions and tiles at every level and associated images against OpenSlide's
//! `level_dimensions`, properties, `read_region` and `associated_images`.

use crate::harness::*;
use iipsrv_core::raster::Raster;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository's root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The python of the slide tests' environment (tifffile, imagecodecs, OpenSlide), made
/// once by `scripts/slide-venv.sh`.
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = run_stdout(&mut Command::new(repo().join("scripts/slide-venv.sh")));
        PathBuf::from(out.trim())
    })
}

/// Runs one of the fixture scripts (`tests/fixtures/<script>`) with the arguments and
/// returns its standard output.
pub fn fixture_script(script: &str, args: &[&str]) -> String {
    run_stdout(
        Command::new(python())
            .arg(repo().join("tests/fixtures").join(script))
            .args(args),
    )
}

/// `make-slides.py svs` of `codec` as `<dir>/<name>`.
fn make_svs(dir: &Path, name: &str, codec: &str) -> PathBuf {
    let out = dir.join(name);
    fixture_script(
        "make-slides.py",
        &["svs", &out.to_string_lossy(), "--codec", codec],
    );
    out
}

/// `make-slides.py <kind> --size <size>` as `<dir>/<name>`.
fn make_slide(dir: &Path, kind: &str, name: &str, size: &str) -> PathBuf {
    let out = dir.join(name);
    fixture_script(
        "make-slides.py",
        &[kind, &out.to_string_lossy(), "--size", size],
    );
    out
}

/// OpenSlide's description of a slide.
fn props(slide: &Path) -> Value {
    let text = fixture_script("openslide-oracle.py", &["props", &slide.to_string_lossy()]);
    serde_json::from_str(&text).expect("oracle json")
}

/// OpenSlide's `read_region` of a slide (x, y at level 0; w, h at `level`).
fn oracle_region(slide: &Path, level: u32, (x, y, w, h): (u32, u32, u32, u32)) -> Raster {
    let out = slide.with_extension(format!("{level}-{x}-{y}-{w}-{h}.png"));
    let args: Vec<String> = [level, x, y, w, h].iter().map(u32::to_string).collect();
    let mut all = vec!["region", slide.to_str().expect("path")];
    all.extend(args.iter().map(String::as_str));
    all.push(out.to_str().expect("path"));
    fixture_script("openslide-oracle.py", &all);
    decode_image(&std::fs::read(out).expect("oracle png"))
}

/// OpenSlide's associated image `name` of a slide.
fn oracle_associated(slide: &Path, name: &str) -> Raster {
    let out = slide.with_extension(format!("{name}.png"));
    let path = slide.to_string_lossy();
    fixture_script(
        "openslide-oracle.py",
        &["associated", &path, name, &out.to_string_lossy()],
    );
    decode_image(&std::fs::read(out).expect("oracle png"))
}

/// A JSON answer of the handler.
fn json(app: &iipsrv_server::handler::App, path: &str) -> Value {
    let r = call(app, path);
    assert_eq!(r.status, 200, "{path}: {}", text(&r));
    serde_json::from_slice(&r.body).expect("json")
}

/// An image answer of the handler, decoded.
fn image(app: &iipsrv_server::handler::App, path: &str) -> Raster {
    let r = call(app, path);
    assert_eq!(r.status, 200, "{path}: {}", text(&r));
    decode_image(&r.body)
}

/// Every codec of Aperio's level tiles: our info.json (v3 and v2) and IIP answers give
/// OpenSlide's level sizes and microns per pixel; regions read at each level match
/// OpenSlide's `read_region` within 40 dB.
#[test]
fn svs_levels_size_and_pixels_match_openslide() {
    let dir = tempdir();
    let app = app(dir.path(), &[]);
    for codec in ["jpeg", "jp2k-rgb", "jp2k-ycbcr"] {
        let name = format!("{codec}.svs");
        let slide = make_svs(dir.path(), &name, codec);
        let oracle = props(&slide);
        assert_eq!(oracle["vendor"], "aperio");
        let info = json(&app, &format!("/iiif/{name}/info.json"));
        levels_are_openslides(&info, &oracle);
        assert_eq!(
            info["tiles"][0]["scaleFactors"],
            serde_json::json!([1, 4, 16])
        );
        let mpp = oracle["mpp"][0].as_f64().expect("mpp");
        let service = &info["service"][0];
        assert_eq!(
            service["profile"],
            "http://iiif.io/api/annex/services/physdim"
        );
        let cm = service["physicalScale"].as_f64().expect("scale");
        assert!((cm * 1e4 - mpp).abs() < 1e-9, "{cm} cm against {mpp} µm");
        let v2 = json(&app, &format!("/iiif/2/{name}/info.json"));
        assert_eq!(v2["service"][0]["physicalScale"], service["physicalScale"]);
        let obj = text(&call(&app, &format!("/iip?FIF={name}&OBJ=DPI")));
        let dpi = 25400.0 / mpp;
        assert!(obj.contains(&format!("DPI:{dpi:.6} {dpi:.6}")), "{obj}");
        regions_match(&app, &name, &slide, &REGIONS_4X);
    }
}

/// IIIF info.json's full size and `sizes` are OpenSlide's level dimensions (`oracle` its
/// `props`).
fn levels_are_openslides(info: &Value, oracle: &Value) {
    let levels = oracle["levels"].as_array().expect("levels");
    assert_eq!(
        [&info["width"], &info["height"]],
        [&levels[0][0], &levels[0][1]]
    );
    let mut sizes: Vec<Value> = levels[1..]
        .iter()
        .map(|l| serde_json::json!({"width": l[0], "height": l[1]}))
        .collect();
    sizes.reverse();
    assert_eq!(info["sizes"], Value::Array(sizes), "{}", oracle["vendor"]);
}

/// A region of a level: the level, its downsample, the box at full resolution.
type Region = (u32, u32, (u32, u32, u32, u32));

/// Regions of the levels of the 2000 × 1500 slides (downsamples 1, 4 and 16).
const REGIONS_4X: [Region; 3] = [
    (0, 1, (100, 130, 500, 400)),
    (1, 4, (400, 240, 1200, 800)),
    (2, 16, (0, 0, 2000, 1488)),
];

/// Regions of each level through IIIF against OpenSlide's `read_region` of that level.
fn regions_match(app: &iipsrv_server::handler::App, name: &str, slide: &Path, cases: &[Region]) {
    for &(level, ds, (x, y, w, h)) in cases {
        let (lw, lh) = (w / ds, h / ds);
        let ours = image(
            app,
            &format!("/iiif/{name}/{x},{y},{w},{h}/{lw},{lh}/0/default.png"),
        );
        let theirs = oracle_region(slide, level, (x, y, lw, lh));
        let db = psnr(&ours, &theirs);
        assert!(db >= 40.0, "{name} level {level} at {x},{y}: {db:.1} dB");
    }
}

/// A view that is one stored JPEG tile is answered with that tile (its JPEGTables put in
/// front), and decodes to OpenSlide's pixels.
#[test]
fn svs_jpeg_tiles_are_passed_through() {
    let dir = tempdir();
    let slide = make_svs(dir.path(), "t.svs", "jpeg");
    let app = app(dir.path(), &[]);
    // tile 10 of level 0 (directory 0): column 1, row 1 of 240-px tiles, 9 across
    let stored = dir.path().join("tile10");
    let args = [
        "tile",
        slide.to_str().expect("path"),
        "0",
        "10",
        stored.to_str().expect("path"),
    ];
    fixture_script("openslide-oracle.py", &args);
    let stored = std::fs::read(stored).expect("tile");
    let r = call(&app, "/iiif/t.svs/240,240,240,240/240,/0/default.jpg");
    assert_eq!(r.status, 200);
    assert!(
        r.body.ends_with(&stored[2..]),
        "the answer is not the stored tile"
    );
    let theirs = oracle_region(&slide, 0, (240, 240, 240, 240));
    let db = psnr(&decode_image(&r.body), &theirs);
    assert!(db >= 50.0, "{db:.1} dB");
}

/// The label, macro and thumbnail are `<id>;<name>`: the thumbnail by default, the
/// label and macro only when SLIDE_ASSOCIATED_IMAGES lists them; their pixels are
/// OpenSlide's (the LZW label exactly).
#[test]
fn svs_associated_images_are_ids_hidden_by_default() {
    let dir = tempdir();
    let slide = make_svs(dir.path(), "s.svs", "jpeg");
    let shut = app(dir.path(), &[]);
    for hidden in ["label", "macro"] {
        let r = call(&shut, &format!("/iiif/s.svs;{hidden}/info.json"));
        assert_eq!(
            (r.status, text(&r)),
            (404, format!("image not found: s.svs;{hidden}"))
        );
    }
    let sizes = props(&slide)["associated"].clone();
    let open = app(
        dir.path(),
        &["--slide-associated-images", "label,macro,thumbnail"],
    );
    for (name, exact) in [("label", true), ("macro", false), ("thumbnail", false)] {
        let app = if name == "thumbnail" { &shut } else { &open };
        let info = json(app, &format!("/iiif/s.svs;{name}/info.json"));
        assert_eq!(
            [&info["width"], &info["height"]],
            [&sizes[name][0], &sizes[name][1]]
        );
        let ours = image(app, &format!("/iiif/s.svs;{name}/full/max/0/default.png"));
        let theirs = oracle_associated(&slide, name);
        if exact {
            assert!(ours == theirs, "{name}: {:.1} dB", psnr(&ours, &theirs));
        } else {
            assert!(
                psnr(&ours, &theirs) >= 40.0,
                "{name}: {:.1} dB",
                psnr(&ours, &theirs)
            );
        }
    }
    let iip = call(&open, "/iip?FIF=s.svs;label&OBJ=Max-size");
    assert_eq!(text(&iip).trim(), "Max-size:300 360");
    let r = call(&open, "/iiif/s.svs;nothing/info.json");
    assert_eq!(r.status, 404);
    // a TIFF that is no slide has no associated images
    let plain = dir.path().join("plain.tif");
    write_png(&pattern(300, 200), &dir.path().join("p.png"));
    vips_tiff(dir.path(), &dir.path().join("p.png"), "plain.tif", &[]);
    assert!(plain.exists());
    let r = call(&open, "/iiif/plain.tif;label/info.json");
    assert_eq!(
        (r.status, text(&r)),
        (404, "plain.tif has no label image".to_string())
    );
}

/// tifffile's plane `plane` of level `level` of an OME-TIFF, as 8-bit.
fn oracle_plane(ome: &Path, plane: u32, level: u32) -> Raster {
    let out = ome.with_extension(format!("plane{plane}-{level}.png"));
    let (p, l) = (plane.to_string(), level.to_string());
    fixture_script(
        "openslide-oracle.py",
        &[
            "plane",
            &ome.to_string_lossy(),
            &p,
            &l,
            &out.to_string_lossy(),
        ],
    );
    decode_image(&std::fs::read(out).expect("oracle png"))
}

/// OME-TIFFs of three channel planes (8 and 16-bit), each with a SubIFD pyramid: the
/// planes are the pages of a stack named after the channels, the pixel size and the
/// channels' names and colours are in info.json, and every plane at every level is
/// tifffile's (8-bit exactly, 16-bit within rounding to 8 bits).
#[test]
fn ome_tiff_planes_channels_and_size() {
    let dir = tempdir();
    let app = app(dir.path(), &["--iiif-delimiter", ";"]);
    for bits in ["8", "16"] {
        let name = format!("o{bits}.ome.tif");
        let ome = dir.path().join(&name);
        let path = ome.to_string_lossy();
        fixture_script(
            "make-slides.py",
            &["ome", &path, "--size", "600x400", "--bits", bits],
        );
        let info = json(&app, &format!("/iiif/{name}/info.json"));
        assert_eq!(
            (&info["width"], &info["height"]),
            (&600.into(), &400.into())
        );
        let sizes =
            serde_json::json!([{"width": 150, "height": 100}, {"width": 300, "height": 200}]);
        assert_eq!(info["sizes"], sizes);
        assert_eq!(info["service"][0]["physicalScale"], 3.25e-5);
        let channels = &info["service"][1];
        assert_eq!(
            channels["profile"],
            "https://iipimage.sourceforge.io/api/channels"
        );
        let expected = serde_json::json!([
            {"label": "DAPI", "color": "#0000ff"},
            {"label": "FITC", "color": "#00ff00"},
            {"label": "TRITC", "color": "#ff0000"}
        ]);
        assert_eq!(channels["channels"], expected);
        let stack = text(&call(&app, &format!("/iip?FIF={name}&OBJ=stack")));
        assert!(
            stack.contains("\"DAPI\"") && stack.contains("\"TRITC\""),
            "{stack}"
        );
        for plane in 0..3u32 {
            for (level, width) in [(0, 600), (1, 300)] {
                let url = format!("/iiif/{name};{plane}/full/{width},/0/default.png");
                let ours = image(&app, &url);
                let theirs = oracle_plane(&ome, plane, level);
                // 16-bit samples are scaled to 8 bits: off by one at most in rounding
                let db = psnr(&ours, &theirs);
                assert!(
                    ours == theirs || (bits == "16" && db >= 50.0),
                    "{url}: {db:.1} dB"
                );
            }
        }
    }
}

/// numpy's composite (`openslide-oracle.py composite`) of tifffile's planes of a box
/// (x, y, w, h) of a level of an OME-TIFF, `spec` as IIP CHN.
fn oracle_composite(ome: &Path, level: u32, area: (u32, u32, u32, u32), spec: &str) -> Raster {
    let (x, y, w, h) = area;
    let out = ome.with_extension(format!("mix{level}-{x}-{y}.png"));
    let nums: Vec<String> = [level, x, y, w, h].iter().map(u32::to_string).collect();
    let mut args = vec!["composite", ome.to_str().expect("path")];
    args.extend(nums.iter().map(String::as_str));
    args.extend([spec, out.to_str().expect("path")]);
    fixture_script("openslide-oracle.py", &args);
    decode_image(&std::fs::read(out).expect("oracle png"))
}

/// Fluorescence composites of a 16-bit OME-TIFF's channel planes, each in a colour and with
/// its own min/max, through IIIF `?channels=` (only with IIIF_EXTENSIONS=1) and IIP `CHN`,
/// against numpy's mix of tifffile's planes: a whole reduced level and regions across tiles
/// of the full level (PSNR ≥ 40 dB); IIP tiles are composites too.
#[test]
fn ome_tiff_fluorescence_composites_match_numpy() {
    let dir = tempdir();
    let ome = dir.path().join("f.ome.tif");
    let path = ome.to_string_lossy();
    fixture_script(
        "make-slides.py",
        &["ome", &path, "--size", "600x400", "--bits", "16"],
    );
    let spec = "0:0000ff:2000,40000;2:ff8000;1:00ff00:0,30000";
    let query = spec.replace(';', "%3B");
    let ext = app(dir.path(), &["--iiif-extensions", "1"]);
    let cases = [
        ("full/300,/0/default.png", 1, (0, 0, 300, 200)),
        ("100,50,300,250/300,/0/default.png", 0, (100, 50, 300, 250)),
    ];
    for (params, level, area) in cases {
        let url = format!("/iiif/f.ome.tif/{params}?channels={query}");
        let ours = image(&ext, &url);
        let db = psnr(&ours, &oracle_composite(&ome, level, area, spec));
        assert!(db >= 40.0, "{url}: {db:.1} dB");
    }
    let iip = "/iip?FIF=f.ome.tif&RGN=0.25,0.25,0.5,0.5&WID=300&CVT=png";
    let ours = image(&ext, &format!("{iip}&CHN={query}"));
    let theirs = oracle_composite(&ome, 0, (150, 100, 300, 200), spec);
    let db = psnr(&ours, &theirs);
    assert!(db >= 40.0, "IIP CHN: {db:.1} dB");
    let tile = image(&ext, &format!("/iip?FIF=f.ome.tif&CHN={query}&JTL=2,1"));
    assert_eq!((tile.width, tile.height, tile.channels), (256, 256, 3));
    // DeepZoom and Zoomify tiles take `?channels=` too (OpenSeadragon passes a .dzi's query
    // on to its tiles): the same pixels as the IIIF region and the IIP tile of that box.
    let dz = image(
        &ext,
        &format!("/deepzoom/f.ome.tif_files/10/1_0.png?channels={query}"),
    );
    let region = image(
        &ext,
        &format!("/iiif/f.ome.tif/256,0,256,256/256,/0/default.png?channels={query}"),
    );
    assert_eq!((dz.width, dz.height), (256, 256));
    assert!(dz.data == region.data, "DeepZoom composite tile");
    let zoomify = image(
        &ext,
        &format!("/zoomify/f.ome.tif/TileGroup0/2-1-0.jpg?channels={query}"),
    );
    assert!(zoomify.data == tile.data, "Zoomify composite tile");
    let plain_dz = image(&ext, "/deepzoom/f.ome.tif_files/10/1_0.png");
    assert!(
        plain_dz.data != dz.data,
        "a plane alone is not the composite"
    );
    let plain = app(dir.path(), &[]);
    let off = call(
        &plain,
        &format!("/iiif/f.ome.tif/full/300,/0/default.png?channels={query}"),
    );
    assert_eq!(off.status, 400);
    let off = call(
        &plain,
        &format!("/deepzoom/f.ome.tif_files/10/1_0.png?channels={query}"),
    );
    assert_eq!(off.status, 400);
    for bad in ["9:ff0000", "0:red", "0:ff0000:5,1"] {
        let r = call(
            &ext,
            &format!("/iip?FIF=f.ome.tif&CHN={bad}&WID=100&CVT=png"),
        );
        assert!((400..500).contains(&r.status), "{bad}: {}", r.status);
    }
}

/// A Philips TIFF (levels as a chain of tiled directories, Philips' XML) with tile 1 of
/// level 0 left out: OpenSlide's vendor and level sizes, the pixel size of the XML, and the
/// pixels of each level equal OpenSlide's `read_region` on white (the missing tile white,
/// the others tifffile's deflate tiles exactly), whether the view is the missing tile
/// alone (a JPEG answer that cannot be passed through) or a region across it.
#[test]
fn philips_sparse_tiles_are_white_and_levels_match_openslide() {
    let dir = tempdir();
    let slide = dir.path().join("p.tiff");
    let path = slide.to_string_lossy();
    fixture_script("make-slides.py", &["philips", &path, "--size", "700x500"]);
    let oracle = props(&slide);
    assert_eq!(oracle["vendor"], "philips");
    let app = app(dir.path(), &[]);
    let info = json(&app, "/iiif/p.tiff/info.json");
    let levels = oracle["levels"].as_array().expect("levels");
    assert_eq!(levels.len(), 3);
    assert_eq!(
        [&info["width"], &info["height"]],
        [&levels[0][0], &levels[0][1]]
    );
    assert_eq!(
        info["sizes"][0],
        serde_json::json!({"width": 175, "height": 125})
    );
    assert_eq!(info["service"][0]["physicalScale"], 2.5e-5);
    let missing = image(&app, "/iiif/p.tiff/256,0,256,256/256,/0/default.png");
    assert!(
        missing.data.iter().all(|&v| v == 255),
        "the missing tile is white"
    );
    let jpeg = image(&app, "/iiif/p.tiff/256,0,256,256/256,/0/default.jpg");
    assert!(
        jpeg.data.iter().all(|&v| v >= 250),
        "the missing tile as JPEG"
    );
    for (level, ds, (x, y, w, h)) in [(0, 1, (100, 0, 500, 400)), (1, 2, (0, 0, 700, 500))] {
        let (lw, lh) = (w / ds, h / ds);
        let url = format!("/iiif/p.tiff/{x},{y},{w},{h}/{lw},{lh}/0/default.png");
        let ours = image(&app, &url);
        let theirs = oracle_region(&slide, level, (x, y, lw, lh));
        let db = psnr(&ours, &theirs);
        assert!(ours == theirs || db >= 40.0, "{url}: {db:.1} dB");
    }
}

/// A generic tiled pyramid whose reduced levels are SubIFDs of level 0 (tifffile, no
/// OME-XML): its levels and the pixels of each equal tifffile's.
#[test]
fn generic_subifd_pyramid_matches_tifffile() {
    let dir = tempdir();
    let file = dir.path().join("s.tif");
    let path = file.to_string_lossy();
    fixture_script("make-slides.py", &["subifd", &path, "--size", "700x500"]);
    let app = app(dir.path(), &[]);
    let info = json(&app, "/iiif/s.tif/info.json");
    let sizes = serde_json::json!([{"width": 175, "height": 125}, {"width": 350, "height": 250}]);
    assert_eq!(info["sizes"], sizes);
    for (level, width) in [(0, 700), (1, 350), (2, 175)] {
        let ours = image(&app, &format!("/iiif/s.tif/full/{width},/0/default.png"));
        let theirs = oracle_plane(&file, 0, level);
        assert!(
            ours == theirs,
            "level {level}: {:.1} dB",
            psnr(&ours, &theirs)
        );
    }
}

/// `make-slides.py trestle` as `<dir>/<name>`, with its macro beside it.
#[cfg(feature = "openslide")]
fn make_trestle(dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    fixture_script("make-slides.py", &["trestle", &out.to_string_lossy()]);
    out
}

/// A Trestle slide (a format no native reader claims, its macro a JPEG beside it) is read
/// through OpenSlide as the oracle reads it ([`served_as_openslide_reads`]); its
/// properties are in IIP OBJ=metadata, and `iipsrv check` says OpenSlide reads it.
#[cfg(feature = "openslide")]
#[test]
fn trestle_is_read_through_openslide() {
    let dir = tempdir();
    let slide = make_trestle(dir.path(), "t.tif");
    let oracle = served_as_openslide_reads(dir.path(), &slide, "trestle", &REGIONS_4X);
    let app = app(dir.path(), &[]);
    let obj = text(&call(&app, "/iip?FIF=t.tif&OBJ=Max-size"));
    assert_eq!(obj.trim(), "Max-size:2000 1500");
    let meta = text(&call(&app, "/iip?FIF=t.tif&OBJ=metadata"));
    for (key, value) in [
        ("openslide.vendor", "trestle"),
        (
            "openslide.objective-power",
            oracle["objective"].as_str().expect("objective"),
        ),
        ("trestle.Objective Power", "20"),
    ] {
        assert!(
            meta.contains(&format!("\"{key}\": \"{value}\"")),
            "{key}: {meta}"
        );
    }
    let open = crate::harness::app(dir.path(), &["--slide-associated-images", "label,macro"]);
    let r = call(&open, "/iiif/t.tif;label/info.json");
    assert_eq!(
        (r.status, text(&r)),
        (404, "t.tif has no label image".into())
    );
    let check = run_stdout(
        Command::new(env!("CARGO_BIN_EXE_iipsrv"))
            .arg("check")
            .arg(&slide),
    );
    assert!(
        check.contains("trestle slide read through OpenSlide"),
        "{check}"
    );
}

/// A Leica SCN (tifffile, Leica's XML: a main image placed inside a larger collection, and
/// the macro) is read through OpenSlide: levels of the whole collection with the main
/// image at its offset and white around it, as OpenSlide gives them.
#[cfg(feature = "openslide")]
#[test]
fn leica_scn_is_read_through_openslide() {
    let dir = tempdir();
    let slide = dir.path().join("l.scn");
    fixture_script("make-slides.py", &["leica", &slide.to_string_lossy()]);
    let regions = [(0, 1, (0, 0, 600, 500)), (1, 4, (0, 0, 1200, 900))];
    let oracle = served_as_openslide_reads(dir.path(), &slide, "leica", &regions);
    assert_eq!(oracle["levels"][0], serde_json::json!([1200, 900]));
    let app = app(dir.path(), &[]);
    let corner = image(&app, "/iiif/l.scn/0,0,80,60/80,/0/default.png");
    assert!(
        corner.data.iter().all(|&v| v == 255),
        "white outside the main image"
    );
}

/// What every slide read through OpenSlide shows (`vendor` as OpenSlide names it): the
/// Python oracle's (OpenSlide 4) level sizes and microns per pixel through Debian's
/// OpenSlide, `regions` within 40 dB of its `read_region`, and its macro as `<id>;macro`,
/// hidden unless SLIDE_ASSOCIATED_IMAGES lists it. OpenSlide's description, for more.
#[cfg(feature = "openslide")]
fn served_as_openslide_reads(dir: &Path, slide: &Path, vendor: &str, regions: &[Region]) -> Value {
    let name = slide.file_name().expect("name").to_string_lossy();
    let oracle = props(slide);
    assert_eq!(oracle["vendor"], vendor);
    let app = app(dir, &[]);
    let info = json(&app, &format!("/iiif/{name}/info.json"));
    levels_are_openslides(&info, &oracle);
    let mpp = oracle["mpp"][0].as_f64().expect("mpp");
    let cm = info["service"][0]["physicalScale"].as_f64().expect("scale");
    assert!((cm * 1e4 - mpp).abs() < 1e-9, "{cm} cm against {mpp} µm");
    regions_match(&app, &name, slide, regions);
    let r = call(&app, &format!("/iiif/{name};macro/info.json"));
    assert_eq!(r.status, 404, "the macro is hidden by default");
    let open = crate::harness::app(dir, &["--slide-associated-images", "macro"]);
    let macro_size = &oracle["associated"]["macro"];
    let info = json(&open, &format!("/iiif/{name};macro/info.json"));
    assert_eq!(
        [&info["width"], &info["height"]],
        [&macro_size[0], &macro_size[1]]
    );
    let ours = image(&open, &format!("/iiif/{name};macro/full/max/0/default.png"));
    let db = psnr(&ours, &oracle_associated(slide, "macro"));
    assert!(db >= 40.0, "{vendor} macro: {db:.1} dB");
    oracle
}

/// A Trestle slide whose first tile points past the end of the file, and one cut short:
/// clear one-line errors naming no path, never a crash; the rest of the first slide (read
/// through a new OpenSlide handle, the failed one being useless) and other images are
/// still served.
#[cfg(feature = "openslide")]
#[test]
fn broken_openslide_slides_give_clear_errors() {
    let dir = tempdir();
    let slide = make_trestle(dir.path(), "bad.tif");
    let at: u64 = fixture_script(
        "openslide-oracle.py",
        &["table", &slide.to_string_lossy(), "0"],
    )
    .trim()
    .parse()
    .expect("offset");
    let mut bytes = std::fs::read(&slide).expect("slide");
    bytes[at as usize..at as usize + 4].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    std::fs::write(&slide, &bytes).expect("write");
    std::fs::write(dir.path().join("cut.tif"), &bytes[..bytes.len() / 3]).expect("write");
    let good = make_trestle(dir.path(), "good.tif");
    let app = app(dir.path(), &[]);
    for url in [
        "/iiif/bad.tif/0,0,256,256/256,/0/default.png",
        "/iiif/cut.tif/info.json",
    ] {
        let r = call(&app, url);
        let why = text(&r);
        assert!((400..600).contains(&r.status), "{url}: {}", r.status);
        assert!(
            !why.is_empty() && !why.trim().contains('\n'),
            "{url}: {why}"
        );
        assert!(
            !why.contains(&*dir.path().to_string_lossy()),
            "{url}: {why}"
        );
    }
    assert!(good.exists());
    assert_eq!(call(&app, "/iiif/good.tif/info.json").status, 200);
    let rest = call(&app, "/iiif/bad.tif/full/125,/0/default.png");
    assert_eq!(rest.status, 200, "{}", text(&rest));
}

/// A file no reader takes (a `.mrxs` index without its slide) is answered as an
/// unsupported format with a one-line reason, with or without OpenSlide in the build.
#[test]
fn files_no_reader_takes_are_unsupported() {
    let dir = tempdir();
    std::fs::write(
        dir.path().join("x.mrxs"),
        "[GENERAL]\nSLIDE_VERSION = 2.2\n",
    )
    .expect("write");
    let app = app(dir.path(), &[]);
    let r = call(&app, "/iiif/x.mrxs/info.json");
    assert_eq!(r.status, 501);
    let why = text(&r);
    assert!(
        why.starts_with("not a TIFF, JPEG2000, JPEG or PNG image"),
        "{why}"
    );
    assert_eq!(
        why.contains("without OpenSlide"),
        cfg!(not(feature = "openslide")),
        "{why}"
    );
}

/// A Ventana BIF (BigTIFF; the label directory with the iScan XMP, the thumbnail, levels
/// described `level=N mag=M`): OpenSlide's vendor, level sizes, microns per pixel and
/// `ventana.*` properties (IIP OBJ=metadata), and the pixels of each level against
/// `read_region`.
#[test]
fn bif_levels_properties_and_pixels_match_openslide() {
    let dir = tempdir();
    let slide = make_slide(dir.path(), "bif", "b.bif", "1000x750");
    let oracle = props(&slide);
    assert_eq!(oracle["vendor"], "ventana");
    let app = app(dir.path(), &[]);
    let info = json(&app, "/iiif/b.bif/info.json");
    levels_are_openslides(&info, &oracle);
    let mpp = oracle["mpp"][0].as_f64().expect("mpp");
    let cm = info["service"][0]["physicalScale"].as_f64().expect("scale");
    assert!((cm * 1e4 - mpp).abs() < 1e-9, "{cm} cm against {mpp} µm");
    let meta: Value = serde_json::from_str(&text(&call(&app, "/iip?FIF=b.bif&OBJ=metadata")))
        .expect("metadata json");
    let theirs = oracle["properties"].as_object().expect("properties");
    let ventana: Vec<_> = theirs
        .keys()
        .filter(|k| k.starts_with("ventana."))
        .collect();
    assert!(ventana.len() >= 5, "{theirs:?}");
    for key in ventana.into_iter().chain(
        ["openslide.objective-power"]
            .iter()
            .map(|k| theirs.get_key_value(*k).expect(k).0),
    ) {
        assert_eq!(meta[key], theirs[key], "{key}");
    }
    let cases = [
        (0, 1, (100, 130, 500, 400)),
        (1, 2, (0, 0, 1000, 750)),
        (2, 4, (0, 0, 1000, 748)),
    ];
    regions_match(&app, "b.bif", &slide, &cases);
}

/// The associated images of Philips TIFF (label and macro: base64 JPEGs in the XML) and
/// Ventana BIF (macro: the label directory; thumbnail): OpenSlide's names, sizes and
/// pixels (the BIF's LZW macro exactly); the label and macro hidden by default (404 as an unknown id), shown when
/// SLIDE_ASSOCIATED_IMAGES lists them.
#[test]
fn philips_and_bif_associated_images_match_openslide() {
    let dir = tempdir();
    let philips = make_slide(dir.path(), "philips", "p.tiff", "700x500");
    let bif = make_slide(dir.path(), "bif", "b.bif", "600x400");
    let shut = app(dir.path(), &[]);
    let open = app(
        dir.path(),
        &["--slide-associated-images", "label,macro,thumbnail"],
    );
    let cases = [
        (&philips, "p.tiff", ["label", "macro"].as_slice()),
        (&bif, "b.bif", ["macro", "thumbnail"].as_slice()),
    ];
    for (slide, name, kinds) in cases {
        let sizes = props(slide)["associated"].clone();
        let names: Vec<&String> = sizes.as_object().expect("associated").keys().collect();
        assert_eq!(names, kinds, "{name}");
        for kind in ["label", "macro"] {
            let r = call(&shut, &format!("/iiif/{name};{kind}/info.json"));
            assert_eq!(
                (r.status, text(&r)),
                (404, format!("image not found: {name};{kind}"))
            );
        }
        for &kind in kinds {
            let info = json(&open, &format!("/iiif/{name};{kind}/info.json"));
            assert_eq!(
                [&info["width"], &info["height"]],
                [&sizes[kind][0], &sizes[kind][1]]
            );
            let ours = image(
                &open,
                &format!("/iiif/{name};{kind}/full/max/0/default.png"),
            );
            let theirs = oracle_associated(slide, kind);
            let db = psnr(&ours, &theirs);
            // the BIF's macro is stored in LZW strips: exactly OpenSlide's
            let exact = (name, kind) == ("b.bif", "macro");
            assert!(
                ours == theirs || (!exact && db >= 40.0),
                "{name};{kind}: {db:.1} dB"
            );
        }
    }
    // the label's base64 JPEG is not shown as text either (IIP OBJ=description)
    let description = text(&call(&shut, "/iip?FIF=p.tiff&OBJ=description"));
    assert!(
        description.contains("DPUfsImport") && !description.contains("/9j/"),
        "{description}"
    );
    // an embedded JPEG is served as JPEG too
    let jpeg = call(&open, "/iiif/p.tiff;label/full/max/0/default.jpg");
    assert_eq!(jpeg.status, 200);
    let theirs = oracle_associated(&philips, "label");
    assert!(psnr(&decode_image(&jpeg.body), &theirs) >= 40.0);
    let r = call(&open, "/iiif/b.bif;label/info.json");
    assert_eq!(
        (r.status, text(&r)),
        (404, "b.bif has no label image".to_string())
    );
}

/// A Hamamatsu NDPI (`make-slides.py ndpi`: each level one JPEG in one strip, restart
/// markers every 16 or 8 MCUs, McuStarts, a macro of source lens -1) of whole MCUs (OpenSlide
/// 4.0 misreads partial ones): OpenSlide's vendor, objective, level 0 and stored reduced
/// level (OpenSlide adds the levels it makes by JPEG scaling) and microns per pixel;
/// regions of both levels across our virtual tiles and to the level's edges, and the macro
/// (hidden by default), match OpenSlide's pixels.
#[test]
fn ndpi_levels_size_and_pixels_match_openslide() {
    let dir = tempdir();
    let slide = make_slide(dir.path(), "ndpi", "h.ndpi", "2048x1536");
    let oracle = props(&slide);
    assert_eq!(oracle["vendor"], "hamamatsu");
    assert_eq!(oracle["objective"], "20");
    let app = app(dir.path(), &[]);
    let info = json(&app, "/iiif/h.ndpi/info.json");
    let levels = oracle["levels"].as_array().expect("levels");
    assert_eq!(
        [&info["width"], &info["height"]],
        [&levels[0][0], &levels[0][1]]
    );
    assert_eq!(levels[2], serde_json::json!([512, 384]));
    assert_eq!(
        info["sizes"],
        serde_json::json!([{"width": 512, "height": 384}])
    );
    assert_eq!(info["tiles"][0]["scaleFactors"], serde_json::json!([1, 4]));
    let mpp = oracle["mpp"][0].as_f64().expect("mpp");
    let cm = info["service"][0]["physicalScale"].as_f64().expect("scale");
    // info.json gives the scale to 10 decimal places of a centimetre
    assert!((cm * 1e4 - mpp).abs() < 1e-5, "{cm} cm against {mpp} µm");
    let metadata = text(&call(&app, "/iip?FIF=h.ndpi&OBJ=metadata"));
    for field in [
        "hamamatsu.SourceLens",
        "openslide.mpp-x",
        "hamamatsu.XOffsetFromSlideCentre",
    ] {
        assert!(metadata.contains(field), "{field}: {metadata}");
    }
    // (OpenSlide's level, downsample, region at full resolution)
    let cases = [
        (0, 1, (100, 130, 500, 400)),
        (0, 1, (1700, 1300, 348, 236)),
        (2, 4, (400, 240, 1200, 800)),
        (2, 4, (0, 0, 2048, 1536)),
    ];
    regions_match(&app, "h.ndpi", &slide, &cases);
    let r = call(&app, "/iiif/h.ndpi;macro/info.json");
    assert_eq!(r.status, 404);
    let open = self::app(dir.path(), &["--slide-associated-images", "macro"]);
    let ours = image(&open, "/iiif/h.ndpi;macro/full/max/0/default.png");
    let theirs = oracle_associated(&slide, "macro");
    assert_eq!((ours.width, ours.height), (409, 153));
    let db = psnr(&ours, &theirs);
    assert!(db >= 40.0, "macro: {db:.1} dB");
}

/// An NDPI whose levels end in partial MCUs (2000×1500 and 500×375 in MCUs of 16×8, the
/// last restart interval of a row padded): whole levels and a region at the corner match
/// tifffile's decoding of the levels; IIP tiles are served.
#[test]
fn ndpi_partial_mcus_at_the_edges_match_tifffile() {
    let dir = tempdir();
    let slide = make_slide(dir.path(), "ndpi", "p.ndpi", "2000x1500");
    let app = app(dir.path(), &[]);
    for (level, width) in [(0, 2000), (1, 500)] {
        let ours = image(&app, &format!("/iiif/p.ndpi/full/{width},/0/default.png"));
        let theirs = oracle_plane(&slide, 0, level);
        let db = psnr(&ours, &theirs);
        assert!(ours == theirs || db >= 50.0, "level {level}: {db:.1} dB");
    }
    let tile = image(&app, "/iip?FIF=p.ndpi&JTL=0,0");
    assert_eq!(tile.channels, 3);
    let edge = image(&app, "/iiif/p.ndpi/1900,1400,100,100/100,/0/default.png");
    let level = oracle_plane(&slide, 0, 0);
    let theirs = level.crop(1900, 1400, 100, 100);
    assert!(edge == theirs, "{:.1} dB", psnr(&edge, &theirs));
}
