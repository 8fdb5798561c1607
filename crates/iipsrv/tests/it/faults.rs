//! Faults while serving: an image replaced, truncated or deleted under the server, a
//! directory where an image should be. Answers follow the file as it is now (the caches are
//! keyed by modification time), errors are clean, and the server goes on.

use crate::harness::{app, call, decode_image, tempdir, write_png};
use iipsrv_core::raster::Raster;
use std::time::{Duration, SystemTime};

/// Writes a uniform-colour pyramid TIFF with the given modification time.
fn write_uniform(path: &std::path::Path, value: u8, mtime: SystemTime) {
    let dir = path.parent().expect("dir");
    let png = dir.join(format!("u{value}.png"));
    write_png(&Raster::filled(600, 400, 3, value), &png);
    let tmp = dir.join("tmp.tif");
    crate::harness::run(
        std::process::Command::new("vips")
            .arg("tiffsave")
            .arg(&png)
            .arg(&tmp)
            .args(["--tile", "--pyramid", "--compression", "deflate"]),
    );
    std::fs::rename(&tmp, path).expect("replace");
    let f = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open");
    f.set_modified(mtime).expect("mtime");
}

fn centre_value(a: &iipsrv_server::handler::App) -> u8 {
    let r = call(a, "/iiif/a.tif/full/100,/0/default.png");
    assert_eq!(r.status, 200);
    let img = decode_image(&r.body);
    img.data[(img.width as usize * img.height as usize / 2) * img.channels as usize]
}

#[test]
fn replaced_truncated_and_deleted_images() {
    let dir = tempdir();
    let path = dir.path().join("a.tif");
    let t0 = SystemTime::now() - Duration::from_secs(100);
    write_uniform(&path, 40, t0);
    let a = app(dir.path(), &[]);
    assert_eq!(centre_value(&a), 40);
    // Replaced by another image: the new pixels, not a cached mix of old and new.
    write_uniform(&path, 200, t0 + Duration::from_secs(10));
    assert_eq!(centre_value(&a), 200);
    let tile = call(&a, "/iiif/a.tif/0,0,256,256/256,/0/default.png");
    assert_eq!(decode_image(&tile.body).data[0], 200);
    // Truncated in place: a clean error, then the server serves other requests.
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() / 3]).expect("truncate");
    let f = std::fs::File::options()
        .write(true)
        .open(&path)
        .expect("open");
    f.set_modified(t0 + Duration::from_secs(20)).expect("mtime");
    let r = call(&a, "/iiif/a.tif/full/100,/0/default.png");
    assert!((400..600).contains(&r.status), "truncated: {}", r.status);
    // Deleted: 404.
    std::fs::remove_file(&path).expect("delete");
    assert_eq!(call(&a, "/iiif/a.tif/info.json").status, 404);
    // A directory where an image is asked for: a clean error, never a crash.
    std::fs::create_dir(dir.path().join("d.tif")).expect("dir");
    let r = call(&a, "/iiif/d.tif/info.json");
    assert!((400..600).contains(&r.status), "directory: {}", r.status);
    // Back again: served.
    write_uniform(&path, 90, t0 + Duration::from_secs(30));
    assert_eq!(centre_value(&a), 90);
}
