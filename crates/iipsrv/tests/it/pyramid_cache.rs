//! The pyramid cache (PYRAMID_CACHE_DIR): flat images over PYRAMID_THRESHOLD get a pyramid
//! built on first use, answered meanwhile with 503 + Retry-After (or from a TIFF's stored
//! level near full resolution), then served zoomed out with the pixels libvips's shrink
//! gives; a changed source is rebuilt; the cache stays under PYRAMID_CACHE_SIZE; two servers
//! sharing the directory build once; a build killed half-way is cleaned up at the next
//! start; `iipsrv warm` and `iipsrv check` see the same cache. Small images and a 1-megapixel
//! threshold here. The same tests run on sources of any size with `IIPSRV_FLAT_TEST_SIZE=WxH`
//! (multiples of 8), e.g. `12000x12800` for 150 megapixels: a manual run, too long for CI.

use crate::harness::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The size of the test sources: 3000 × 2000, or IIPSRV_FLAT_TEST_SIZE (`WxH`).
fn size() -> (u32, u32) {
    let Ok(v) = std::env::var("IIPSRV_FLAT_TEST_SIZE") else {
        return (3000, 2000);
    };
    let (w, h) = v.split_once('x').expect("IIPSRV_FLAT_TEST_SIZE is WxH");
    let (w, h) = (w.parse().expect("width"), h.parse().expect("height"));
    assert!(
        w % 8 == 0 && h % 8 == 0,
        "IIPSRV_FLAT_TEST_SIZE: multiples of 8"
    );
    (w, h)
}

/// The view a source's pyramid is first asked for: zoomed out 8 times.
fn zoomed_out(id: &str) -> String {
    format!("/iiif/{id}/full/{},/0/default.png", size().0 / 8)
}

/// The scale factors of a pyramid of the test size: halved until it fits one 256-px tile.
fn scale_factors() -> Vec<u32> {
    let (mut w, mut h) = size();
    let mut factors = vec![1];
    while w > 256 || h > 256 {
        (w, h) = (w.div_ceil(2), h.div_ceil(2));
        factors.push(factors[factors.len() - 1] * 2);
    }
    factors
}

/// A server over `images` with its pyramid cache in `cache` (threshold 1 megapixel), its
/// log in `log`, and `extra` settings.
fn start_server(images: &Path, cache: &Path, log: &Path, extra: &[(&str, &str)]) -> Server {
    let (images, cache, log) = (s(images), s(cache), s(log));
    let mut env = vec![
        ("FILESYSTEM_PREFIX", images.as_str()),
        ("PYRAMID_CACHE_DIR", cache.as_str()),
        ("PYRAMID_THRESHOLD", "1"),
        ("LOGFILE", log.as_str()),
    ];
    env.extend_from_slice(extra);
    Server::start(&env)
}

fn s(p: &Path) -> String {
    p.to_string_lossy().to_string()
}

/// `src` shrunk 8 × 8 by libvips (box average), as 8-bit PNG pixels.
fn vips_shrink(src: &Path, dir: &Path) -> iipsrv_core::raster::Raster {
    let out = dir.join("shrunk.png");
    vips(&["shrink", &s(src), &s(&out), "8", "8"]);
    decode_image(&std::fs::read(out).expect("shrunk"))
}

/// `DIR/images`, made.
fn images_dir(dir: &Path) -> PathBuf {
    let images = dir.join("images");
    std::fs::create_dir_all(&images).expect("images");
    images
}

/// `DIR/images/flat.png` of the test pattern: the directory and the file.
fn one_png(dir: &Path) -> (PathBuf, PathBuf) {
    let images = images_dir(dir);
    let png = images.join("flat.png");
    let (w, h) = size();
    write_png(&pattern(w, h), &png);
    (images, png)
}

/// The test sources: a deflate striped TIFF, a baseline JPEG, a PNG and a 16-bit striped
/// TIFF, all of the same pattern.
fn sources(dir: &Path) -> (PathBuf, Vec<&'static str>) {
    let (images, png) = one_png(dir);
    let p = |n: &str| s(&images.join(n));
    vips(&["jpegsave", &p("flat.png"), &p("flat.jpg"), "--Q", "95"]);
    vips(&[
        "tiffsave",
        &p("flat.png"),
        &p("flat.tif"),
        "--compression",
        "deflate",
    ]);
    let u16 = sixteen_bit(dir, &png);
    vips(&[
        "tiffsave",
        &s(&u16),
        &p("flat16.tif"),
        "--compression",
        "deflate",
    ]);
    (
        images,
        vec!["flat.tif", "flat.jpg", "flat.png", "flat16.tif"],
    )
}

#[test]
fn flat_sources_get_pyramids_built_on_first_use() {
    let dir = tempdir();
    let (images, ids) = sources(dir.path());
    let cache = dir.path().join("cache");
    let log = dir.path().join("log.txt");
    let server = start_server(&images, &cache, &log, &[]);
    let expected = vips_shrink(&images.join("flat.png"), dir.path());
    for id in &ids {
        // Full resolution from a TIFF's stored level while its pyramid is built; a
        // JPEG or PNG waits for it. (The first request starts the build: the small
        // ones here may be done before a second.)
        let asked = Instant::now();
        let first = get(
            server.port,
            &format!("/iiif/{id}/0,0,256,256/256,/0/default.png"),
        );
        let latency = asked.elapsed();
        let expect_first = if id.ends_with(".tif") { 200 } else { 503 };
        assert_eq!(first.status, expect_first, "{id} full-resolution tile");
        assert!(
            latency < Duration::from_secs(5),
            "{id}: first answer after {latency:?}"
        );
        let (answer, _) = until_built(server.port, &zoomed_out(id));
        eprintln!(
            "{id}: first answer in {latency:?}, built after {:?}",
            asked.elapsed()
        );
        let got = decode_image(&answer.body);
        let db = psnr(&got, &expected);
        eprintln!("{id}: {db:.1} dB against vips shrink");
        assert!(db >= 35.0, "{id}: {db:.1} dB against vips shrink");
        assert_eq!(get(server.port, &format!("/viewer/{id}")).status, 200);
        let info = get(server.port, &format!("/iiif/{id}/info.json"));
        let j: serde_json::Value = serde_json::from_slice(&info.body).expect("json");
        assert_eq!(
            j["tiles"][0]["scaleFactors"],
            serde_json::json!(scale_factors()),
            "{id}"
        );
    }
    assert_eq!(pyramids(&cache).len(), ids.len());
    // Bounded by bands of rows, not by the image (a 150-megapixel 16-bit source is 900 MB).
    let rss_mb = peak_rss_kb(server.pid()) / 1024;
    eprintln!("peak RSS of the server: {rss_mb} MB");
    assert!(rss_mb < 512, "peak RSS {rss_mb} MB");
    let text = std::fs::read_to_string(&log).expect("log");
    assert_eq!(text.matches(" built in ").count(), ids.len(), "{text}");
    assert!(!text.contains(&s(&images)), "the log shows no image path");
    let m = String::from_utf8(get(server.port, "/metrics").body).expect("metrics");
    assert!(
        m.contains("iipsrv_pyramid_builds_total{outcome=\"built\"} 4"),
        "{m}"
    );
}

#[test]
fn a_changed_source_is_rebuilt() {
    let dir = tempdir();
    let (images, png) = one_png(dir.path());
    let cache = dir.path().join("cache");
    let server = start_server(&images, &cache, &dir.path().join("log"), &[]);
    let path = &zoomed_out("flat.png");
    until_built(server.port, path);
    // The same pattern turned upside down, written in place.
    let flipped = dir.path().join("flipped.png");
    vips(&["flip", &s(&png), &s(&flipped), "vertical"]);
    std::thread::sleep(Duration::from_millis(20));
    std::fs::copy(&flipped, &png).expect("replace");
    let (answer, waits) = until_built(server.port, path);
    assert!(waits > 0, "the changed file waited for a new pyramid");
    let expected = vips_shrink(&png, dir.path());
    let db = psnr(&decode_image(&answer.body), &expected);
    assert!(db >= 35.0, "{db:.1} dB against the changed file");
    assert_eq!(pyramids(&cache).len(), 2, "the old pyramid ages out later");
}

#[test]
fn the_cache_stays_under_its_size() {
    let dir = tempdir();
    let images = images_dir(dir.path());
    for i in 0..3 {
        let (w, h) = size();
        let img = pattern(w + 16 * i, h);
        write_png(&img, &images.join(format!("f{i}.png")));
    }
    let cache = dir.path().join("cache");
    let server = start_server(&images, &cache, &dir.path().join("log"), &[]);
    until_built(server.port, "/iiif/f0.png/full/100,/0/default.jpg");
    let one = std::fs::metadata(&pyramids(&cache)[0]).expect("size").len();
    drop(server);
    // Room for two pyramids, not three.
    let limit = format!("{}", (one as f64 * 2.5) / 1048576.0);
    let server = start_server(
        &images,
        &cache,
        &dir.path().join("log"),
        &[("PYRAMID_CACHE_SIZE", &limit)],
    );
    for i in 1..3 {
        until_built(
            server.port,
            &format!("/iiif/f{i}.png/full/100,/0/default.jpg"),
        );
    }
    let kept = pyramids(&cache);
    let total: u64 = kept
        .iter()
        .map(|p| std::fs::metadata(p).expect("size").len())
        .sum();
    assert_eq!(kept.len(), 2, "the least recently used went");
    assert!(
        total as f64 <= one as f64 * 2.5 * 1.05,
        "{total} bytes kept"
    );
    // f0's went (the oldest); it is built again when asked.
    let (_, waits) = until_built(server.port, "/iiif/f0.png/full/100,/0/default.jpg");
    assert!(waits > 0);
}

/// A noisy image large enough that building its pyramid takes a while: `IMAGES/NAME`
/// (`slow.jpg`, or `slow.tif` deflate-compressed in strips).
fn slow_source(images: &Path, dir: &Path, name: &str) {
    let noise = dir.join("noise.v");
    vips(&[
        "gaussnoise",
        &s(&noise),
        "6000",
        "6000",
        "--mean",
        "128",
        "--sigma",
        "40",
    ]);
    let rgb = dir.join("rgb.v");
    vips(&[
        "bandjoin",
        &format!("{} {} {}", s(&noise), s(&noise), s(&noise)),
        &s(&rgb),
    ]);
    let cast = dir.join("cast.v");
    vips(&["cast", &s(&rgb), &s(&cast), "uchar"]);
    let out = s(&images.join(name));
    match name.ends_with(".jpg") {
        true => vips(&["jpegsave", &s(&cast), &out, "--Q", "95"]),
        false => vips(&["tiffsave", &s(&cast), &out, "--compression", "deflate"]),
    }
}

#[test]
fn two_servers_sharing_a_directory_build_once() {
    let dir = tempdir();
    let images = images_dir(dir.path());
    slow_source(&images, dir.path(), "slow.jpg");
    let cache = dir.path().join("cache");
    let (log_a, log_b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    let a = start_server(&images, &cache, &log_a, &[]);
    let b = start_server(&images, &cache, &log_b, &[]);
    // The viewer page says the image is being prepared and reloads itself.
    let page = get(a.port, "/viewer/slow.jpg");
    assert_eq!(page.status, 503, "viewer");
    assert!(page.header("retry-after").is_some());
    let html = String::from_utf8_lossy(&page.body).to_string();
    assert!(
        html.contains("http-equiv=\"refresh\"") && html.contains("being prepared"),
        "{html}"
    );
    let path = "/iiif/slow.jpg/full/200,/0/default.jpg";
    assert_eq!(get(a.port, path).status, 503);
    assert_eq!(get(b.port, path).status, 503);
    until_built(a.port, path);
    until_built(b.port, path);
    assert_eq!(get(a.port, "/viewer/slow.jpg").status, 200);
    let built = |log: &Path| {
        std::fs::read_to_string(log)
            .expect("log")
            .matches(" built in ")
            .count()
    };
    assert_eq!(built(&log_a) + built(&log_b), 1, "built once between them");
    assert_eq!(pyramids(&cache).len(), 1);
}

#[test]
fn a_build_killed_half_way_is_cleaned_up_at_the_next_start() {
    let dir = tempdir();
    let images = images_dir(dir.path());
    slow_source(&images, dir.path(), "slow.jpg");
    let cache = dir.path().join("cache");
    let log = dir.path().join("log");
    let path = "/iiif/slow.jpg/full/200,/0/default.jpg";
    let first = start_server(&images, &cache, &log, &[]);
    assert_eq!(get(first.port, path).status, 503);
    let partial = |c: &Path| {
        std::fs::read_dir(c)
            .expect("cache")
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().ends_with(".partial"))
    };
    let start = Instant::now();
    while !partial(&cache) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no build started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    first.signal("KILL");
    drop(first);
    assert!(partial(&cache), "the killed build left its partial file");
    let second = start_server(&images, &cache, &log, &[]);
    assert!(!partial(&cache), "removed at start-up");
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.contains("of an interrupted build"), "{text}");
    until_built(second.port, path);
    assert_eq!(pyramids(&cache).len(), 1);
}

#[test]
fn warm_builds_ahead_and_check_reports_it() {
    let dir = tempdir();
    let (images, _) = sources(dir.path());
    let cache = dir.path().join("cache");
    let iipsrv = |args: &[&str]| {
        run_stdout(
            Command::new(env!("CARGO_BIN_EXE_iipsrv"))
                .args(args)
                .env("PYRAMID_CACHE_DIR", &cache)
                .env("PYRAMID_THRESHOLD", "1"),
        )
    };
    let png = s(&images.join("flat.png"));
    let before = iipsrv(&["check", &png]);
    assert!(before.contains("pyramid cache: would be built"), "{before}");
    let warm = iipsrv(&["warm", &s(&images), "--match", "*.png"]);
    assert!(warm.starts_with("warm: 1 built, 0 already built"), "{warm}");
    let after = iipsrv(&["check", &png]);
    assert!(after.contains("pyramid cache: built"), "{after}");
    let again = iipsrv(&["warm", &s(&images)]);
    assert!(
        again.starts_with("warm: 3 built, 1 already built"),
        "{again}"
    );
    // Served at once: no 503 for a warmed image.
    let server = start_server(&images, &cache, &dir.path().join("log"), &[]);
    let r = get(server.port, &zoomed_out("flat.png"));
    assert_eq!(r.status, 200);
}

#[test]
fn a_corrupt_flat_file_fails_its_build_once_and_is_then_refused() {
    let dir = tempdir();
    let (images, png) = one_png(dir.path());
    let bytes = std::fs::read(&png).expect("png");
    std::fs::write(&png, &bytes[..bytes.len() / 2]).expect("truncate");
    let cache = dir.path().join("cache");
    let log = dir.path().join("log");
    let mut server = start_server(&images, &cache, &log, &[]);
    let path = &zoomed_out("flat.png");
    let start = Instant::now();
    let answer = loop {
        let r = get(server.port, path);
        if r.status != 503 {
            break r;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "still 503");
        std::thread::sleep(Duration::from_millis(50));
    };
    let body = String::from_utf8_lossy(&answer.body).to_string();
    assert_eq!(answer.status, 500, "{body}");
    assert!(
        !body.contains('\n') && !body.contains(&s(&images)),
        "{body}"
    );
    assert!(server.alive());
    assert!(pyramids(&cache).is_empty());
    let text = std::fs::read_to_string(&log).expect("log");
    assert_eq!(text.matches("not built").count(), 1, "tried once: {text}");
    assert_eq!(get(server.port, path).status, 500, "not tried again");
}

/// An If-Modified-Since far in the future: every file is older.
const FUTURE: &str = "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n";

#[test]
fn answers_during_a_build_are_not_kept_and_foreign_files_stay() {
    let dir = tempdir();
    let images = images_dir(dir.path());
    slow_source(&images, dir.path(), "slow.tif");
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&cache).expect("cache");
    // Not a name the cache gives: never evicted, even when over the size.
    let foreign = cache.join("scan.tif");
    std::fs::write(&foreign, vec![7u8; 2 << 20]).expect("foreign");
    let server = start_server(
        &images,
        &cache,
        &dir.path().join("log"),
        &[("PYRAMID_CACHE_SIZE", "1")],
    );
    let info = |port| {
        raw_request(
            port,
            &format!("GET /iiif/slow.tif/info.json HTTP/1.1\r\nHost: x\r\n{FUTURE}"),
        )
    };
    // The first request starts the build: answered from the stored level, not kept.
    let during = info(server.port);
    assert_eq!(during.status, 200, "no 304 while building");
    assert_eq!(during.header("cache-control"), Some("no-store"));
    assert!(during.header("last-modified").is_none());
    until_built(server.port, "/iiif/slow.tif/full/200,/0/default.jpg");
    let after = info(server.port);
    assert_eq!(after.status, 304, "kept once built");
    assert_eq!(pyramids(&cache).len(), 2, "the new pyramid beside scan.tif");
    assert_eq!(std::fs::read(&foreign).expect("foreign").len(), 2 << 20);
}
