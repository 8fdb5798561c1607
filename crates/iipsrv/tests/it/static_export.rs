//! `iipsrv convert INPUT --static LAYOUT OUT_DIR`: level-0 tile trees (IIIF 3.0 and 2.1,
//! DeepZoom, Zoomify) from a flat PNG and from a pyramidal TIFF. Each tree holds the files
//! the level and tile math promise, every file is byte for byte what the server answers
//! for the same URL, the IIIF info.json is a level-0 document with the public id; a failed
//! export leaves nothing behind.

use crate::convert::convert;
use crate::harness::{app, call, pattern, run, tempdir, vips, vips_tiff, write_png};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The layouts, with the server's URL prefix of each.
const LAYOUTS: [(&str, &str); 4] = [
    ("deepzoom", "/deepzoom/"),
    ("zoomify", "/zoomify/"),
    ("iiif3", "/iiif/3/"),
    ("iiif2", "/iiif/2/"),
];

/// Exports `input` as `layout` into `out` with `--id http://cdn.test/tiles`, asserting
/// success and silence (no terminal).
fn export(input: &Path, layout: &str, out: &Path) {
    let (i, o) = (input.to_str().expect("path"), out.to_str().expect("path"));
    let run = convert(&[i, "--static", layout, o, "--id", "http://cdn.test/tiles/"]);
    assert!(
        run.status.success(),
        "{layout}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.stderr.is_empty(), "quiet when not on a terminal");
}

/// Every file under `dir`, as paths relative to it.
fn files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("under dir");
                found.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}

/// The server URL of a tree file: `name` (the tree's NAME) replaced by the server's `id`.
fn url_of(file: &str, name: &str, id: &str, prefix: &str) -> String {
    let rest = file.strip_prefix(name).expect("the tree's name first");
    format!("{prefix}{id}{rest}")
}

/// Checks every image of the tree in `out` against the server's answer to its URL, and
/// returns the count of files (descriptor included).
fn matches_server(out: &Path, name: &str, server: &(PathBuf, &str), prefix: &str) -> usize {
    let app = app(&server.0, &[]);
    let all = files(out);
    for file in all.iter().filter(|f| !f.ends_with("info.json")) {
        let url = url_of(file, name, server.1, prefix);
        let answer = call(&app, &url);
        assert_eq!(answer.status, 200, "{url}");
        let written = std::fs::read(out.join(file)).expect("read");
        assert!(written == answer.body, "{file} differs from {url}");
    }
    all.len()
}

/// The tree's info.json, checked to be a level-0 document of the image at the public id
/// (`--id` and `segment`, the tree's name percent-encoded).
fn level0_info(out: &Path, name: &str, segment: &str, v3: bool) -> serde_json::Value {
    let text = std::fs::read(out.join(name).join("info.json")).expect("info.json");
    let doc: serde_json::Value = serde_json::from_slice(&text).expect("JSON");
    let (key, profile) = if v3 {
        ("id", serde_json::json!("level0"))
    } else {
        (
            "@id",
            serde_json::json!(["http://iiif.io/api/image/2/level0.json"]),
        )
    };
    assert_eq!(doc[key], format!("http://cdn.test/tiles/{segment}"));
    assert_eq!(doc["profile"], profile);
    for gone in [
        "extraFeatures",
        "extraFormats",
        "extraQualities",
        "maxWidth",
    ] {
        assert!(doc.get(gone).is_none(), "{gone}");
    }
    doc
}

/// Exports `input` in every layout into `dir/LAYOUT`, checks each tree (named `name`)
/// against the server's answers and returns the count of files of each.
fn export_each(input: &Path, dir: &Path, name: &str, server: &(PathBuf, &str)) -> Vec<usize> {
    let count = |(layout, prefix): (&str, &str)| {
        let out = dir.join(layout);
        export(input, layout, &out);
        matches_server(&out, name, server, prefix)
    };
    LAYOUTS.into_iter().map(count).collect()
}

/// A 1001×600 PNG of the pattern in `dir`.
fn flat_png(dir: &Path) -> PathBuf {
    let png = dir.join("scan.png");
    write_png(&pattern(1001, 600), &png);
    png
}

/// A temporary directory holding the PNG of [`flat_png`] and an empty directory `sub`.
fn workspace(sub: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempdir();
    let png = flat_png(dir.path());
    let sub = dir.path().join(sub);
    std::fs::create_dir(&sub).expect("mkdir");
    (dir, png, sub)
}

#[test]
fn flat_png_trees_hold_the_tiles_the_math_promises_as_the_server_answers_them() {
    // The server's view of the same pyramid: convert's own, with the same options.
    let (dir, png, reference) = workspace("ref");
    let made = convert(&[
        png.to_str().expect("path"),
        reference.join("scan.tif").to_str().expect("path"),
    ]);
    assert!(made.status.success());
    let server = (reference, "scan.tif");
    // Pyramid 1001×600, 500×300, 250×150 in tiles of 256. DeepZoom: level 10 4×3 tiles,
    // level 9 2×2, levels 0-8 one each, and the .dzi. Zoomify: 12 + 4 + 1 and the XML.
    // IIIF (scale factors 1, 2, 4): full/max (full), sizes 251×150 and 501×300, 12 + 4 + 1
    // tiles, and info.json.
    let counts = export_each(&png, dir.path(), "scan", &server);
    assert_eq!(counts, [25 + 1, 17 + 1, 20 + 1, 20 + 1]);
    let dz = files(&dir.path().join("deepzoom"));
    assert!(dz.contains(&"scan_files/10/3_2.jpg".to_string()), "{dz:?}");
    assert!(dz.contains(&"scan_files/0/0_0.jpg".to_string()));
    let v3 = level0_info(&dir.path().join("iiif3"), "scan", "scan", true);
    assert_eq!(
        v3["sizes"],
        serde_json::json!([{"width": 251, "height": 150}, {"width": 501, "height": 300}])
    );
    assert!(dir
        .path()
        .join("iiif3/scan/512,512,489,88/245,44/0/default.jpg")
        .is_file());
    level0_info(&dir.path().join("iiif2"), "scan", "scan", false);
    assert!(dir
        .path()
        .join("iiif2/scan/512,512,489,88/245,/0/default.jpg")
        .is_file());
    assert!(dir
        .path()
        .join("iiif2/scan/full/full/0/default.jpg")
        .is_file());
}

#[test]
fn pyramidal_tiff_inputs_are_served_as_they_are() {
    let (dir, png, images) = workspace("images");
    vips_tiff(&images, &png, "page one.tif", &["--compression", "jpeg"]);
    let input = images.join("page one.tif");
    let server = (images.clone(), "page%20one.tif");
    let counts = export_each(&input, dir.path(), "page one", &server);
    assert!(counts.iter().all(|&n| n > 17), "{counts:?}");
    for (layout, _) in LAYOUTS {
        let names: Vec<_> = std::fs::read_dir(dir.path().join(layout))
            .expect("out")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            names
                .iter()
                .all(|n| n.to_string_lossy().starts_with("page one")),
            "{names:?}"
        );
    }
    level0_info(&dir.path().join("iiif3"), "page one", "page%20one", true);
    level0_info(&dir.path().join("iiif2"), "page one", "page%20one", false);
    // The input's directory is left as it was: no intermediate pyramid was needed.
    assert_eq!(files(&images), ["page one.tif"]);
}

#[test]
fn jpeg2000_inputs_are_served_as_they_are() {
    let (dir, png, images) = workspace("images");
    let ppm = dir.path().join("scan.ppm");
    vips(&[
        "copy",
        png.to_str().expect("path"),
        ppm.to_str().expect("path"),
    ]);
    let jp2 = images.join("scan.jp2");
    run(Command::new("opj_compress")
        .arg("-i")
        .arg(&ppm)
        .arg("-o")
        .arg(&jp2)
        .args(["-n", "4"]));
    let counts = export_each(&jp2, dir.path(), "scan", &(images.clone(), "scan.jp2"));
    // Four resolution levels (1001, 501, 251, 126 wide): more tiles than convert's three.
    assert!(counts.iter().all(|&n| n > 17), "{counts:?}");
    assert_eq!(files(&images), ["scan.jp2"]);
}

#[test]
fn a_second_export_replaces_the_first() {
    let dir = tempdir();
    let png = flat_png(dir.path());
    let out = dir.path().join("out");
    export(&png, "deepzoom", &out);
    std::fs::write(out.join("scan_files/stale.jpg"), b"x").expect("write");
    export(&png, "deepzoom", &out);
    assert!(!out.join("scan_files/stale.jpg").exists());
    let mut top: Vec<_> = std::fs::read_dir(&out)
        .expect("out")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    top.sort();
    assert_eq!(top, ["scan.dzi", "scan_files"]);
}

#[test]
fn failed_exports_are_one_line_errors_and_leave_nothing() {
    let dir = tempdir();
    let png = flat_png(dir.path());
    let bytes = std::fs::read(&png).expect("png");
    let truncated = dir.path().join("cut.png");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    let text = dir.path().join("notes.png");
    std::fs::write(&text, b"not an image").expect("write");
    let blocked = dir.path().join("file");
    std::fs::write(&blocked, b"a file, not a directory").expect("write");
    let out = dir.path().join("out");
    let p = |p: &Path| p.to_str().expect("path").to_string();
    let cases: [(Vec<String>, &str); 4] = [
        (vec![p(&truncated), p(&out)], "PNG"),
        (vec![p(&text), p(&out)], "not an image"),
        (vec![p(&png), p(&blocked.join("out"))], "cannot create"),
        (
            vec![p(&png), p(&out), "--id".into(), "ftp://x".into()],
            "--id",
        ),
    ];
    for (args, says) in cases {
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.extend(["--static", "iiif3"]);
        let run = convert(&all);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{args:?}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        let left = std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0, "{args:?} left files in OUT_DIR");
    }
}

#[test]
fn a_tree_never_replaces_its_input() {
    let (_dir, png, images) = workspace("images");
    let input = images.join("scan");
    std::fs::copy(&png, &input).expect("copy");
    let (i, o) = (
        input.to_str().expect("path"),
        images.to_str().expect("path"),
    );
    let run = convert(&[i, "--static", "zoomify", o]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(stderr.contains("would replace the input"), "{stderr}");
    assert_eq!(files(&images), ["scan"]);
    let same = std::fs::read(&input).expect("input") == std::fs::read(&png).expect("png");
    assert!(same, "the input is untouched");
}
