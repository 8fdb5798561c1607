//! `iipsrv check`: reports what the server sees in image files, advice for slow ones, and a
//! failing exit status for files it cannot serve.

use crate::harness::*;
use std::process::Command;

fn check(paths: &[std::path::PathBuf]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_iipsrv"))
        .arg("check")
        .args(paths)
        .output()
        .expect("run iipsrv check");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

#[test]
fn check_reports_servable_slow_and_broken_files() {
    let dir = tempdir();
    let png = dir.path().join("src.png");
    write_png(&pattern(900, 600), &png);
    let good = vips_tiff(dir.path(), &png, "good.tif", &["--compression", "jpeg"]);
    let flat = dir.path().join("flat.tif");
    run(Command::new("vips").arg("tiffsave").arg(&png).arg(&flat));
    let bytes = std::fs::read(&good).expect("tiff");
    let cut = dir.path().join("cut.tif");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");

    let (ok, text) = check(&[good.clone(), flat.clone(), png.clone()]);
    assert!(ok, "{text}");
    assert!(text.contains("900×600, 3 levels, tiles 256×256"), "{text}");
    assert!(
        text.contains("stored JPEG\n  ok: served as it is"),
        "{text}"
    );
    assert!(
        text.contains("no pyramid") && text.contains("not tiled"),
        "{text}"
    );
    assert!(
        text.contains("a plain PNG has no tiles or pyramid"),
        "{text}"
    );

    let (ok, text) = check(&[good, cut]);
    assert!(!ok);
    assert!(text.contains("NOT SERVABLE"), "{text}");
}
