//! Availability under hostile files and load (issue 24): a corrupt tile must not poison
//! the decoders other images use, nothing in the image folder may hang a request or the
//! shutdown, health probes answer while image work queues, flat images and renders are
//! held to memory budgets, and answers carry no raw control characters.

use crate::harness::{app, call, pattern, tempdir, text, vips_tiff, write_png};
use std::path::Path;

/// A JPEG-tiled pyramid (128-px tiles) of the test pattern at `name` in `dir`.
fn jpeg_pyramid(dir: &Path, name: &str) -> std::path::PathBuf {
    let png = dir.join(format!("{name}.png"));
    write_png(&pattern(1024, 768), &png);
    let args = [
        "--compression",
        "jpeg",
        "--tile-width",
        "128",
        "--tile-height",
        "128",
    ];
    vips_tiff(dir, &png, name, &args)
}

/// Changes the first component id of every JPEG scan header (SOS) in the file: each tile
/// then names a component its frame does not have.
fn corrupt_scan_headers(path: &Path) -> usize {
    let mut bytes = std::fs::read(path).expect("read");
    let mut changed = 0;
    let mut i = 0;
    while i + 6 < bytes.len() {
        if bytes[i] == 0xff && bytes[i + 1] == 0xda && bytes[i + 4] == 3 {
            bytes[i + 5] = bytes[i + 5].wrapping_add(7);
            changed += 1;
        }
        i += 1;
    }
    std::fs::write(path, bytes).expect("write");
    changed
}

#[test]
fn a_corrupt_jpeg_tile_does_not_poison_other_images() {
    let dir = tempdir();
    jpeg_pyramid(dir.path(), "good.tif");
    let bad = jpeg_pyramid(dir.path(), "bad.tif");
    assert!(corrupt_scan_headers(&bad) > 10, "no scan header changed");
    let app = app(dir.path(), &[]);
    for _ in 0..8 {
        let r = call(&app, "/iiif/bad.tif/0,0,1024,768/700,/0/default.jpg");
        assert_eq!(r.status, 500, "{}", text(&r));
    }
    let failed: Vec<String> = (0..100)
        .map(|i| {
            let (x, y) = ((i * 37) % 700, (i * 53) % 450);
            format!("/iiif/good.tif/{x},{y},300,300/200,/0/default.jpg")
        })
        .filter_map(|path| {
            let r = call(&app, &path);
            (r.status != 200).then(|| format!("{path}: {} {}", r.status, text(&r)))
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
}

/// A GET answered within `secs` seconds, or None when the server took longer.
fn get_within(port: u16, path: &str, secs: u64) -> Option<crate::harness::Reply> {
    let (tx, rx) = std::sync::mpsc::channel();
    let path = path.to_string();
    std::thread::spawn(move || {
        let _ = tx.send(crate::harness::get(port, &path));
    });
    rx.recv_timeout(std::time::Duration::from_secs(secs)).ok()
}

#[test]
fn a_fifo_in_the_image_folder_hangs_nothing() {
    let dir = tempdir();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).expect("mkdir");
    jpeg_pyramid(&images, "a.tif");
    jpeg_pyramid(dir.path(), "outside.tif");
    crate::harness::run(std::process::Command::new("mkfifo").arg(images.join("y.tif")));
    std::os::unix::fs::symlink(dir.path().join("outside.tif"), images.join("link.tif"))
        .expect("symlink");
    let prefix = images.to_string_lossy().to_string();
    let mut server = crate::harness::Server::start(&[("FILESYSTEM_PREFIX", &prefix)]);
    let index = get_within(server.port, "/", 10).expect("GET / hung");
    let page = String::from_utf8_lossy(&index.body).to_string();
    assert_eq!(index.status, 200);
    assert!(
        page.contains("a.tif") && page.contains("1024 × 768"),
        "{page}"
    );
    assert!(
        !page.contains("y.tif") && !page.contains("link.tif"),
        "{page}"
    );
    for path in [
        "/iiif/y.tif/info.json",
        "/fcgi-bin/iipsrv.fcgi?FIF=y.tif&OBJ=Max-size",
    ] {
        let r = get_within(server.port, path, 10).unwrap_or_else(|| panic!("{path} hung"));
        assert_eq!(r.status, 404, "{path}");
    }
    let health = get_within(server.port, "/health", 5).expect("health hung");
    assert_eq!(health.status, 200);
    server.signal("TERM");
    let ended = server.wait_exit(std::time::Duration::from_secs(10));
    assert!(
        ended.is_some_and(|s| s.success()),
        "no clean exit after SIGTERM"
    );
}

/// A server without an answer cache serving `big.tif` (3000×2000, deflate tiles) from
/// `dir`, with the `extra` settings.
fn big_image_server(dir: &Path, extra: &[(&str, &str)]) -> crate::harness::Server {
    let png = dir.join("big.png");
    write_png(&pattern(3000, 2000), &png);
    vips_tiff(dir, &png, "big.tif", &["--compression", "deflate"]);
    let prefix = dir.to_string_lossy().to_string();
    let mut env = vec![
        ("FILESYSTEM_PREFIX", prefix.as_str()),
        ("MAX_IMAGE_CACHE_SIZE", "0"),
    ];
    env.extend_from_slice(extra);
    crate::harness::Server::start(&env)
}

#[test]
fn health_probes_answer_while_renders_queue() {
    let dir = tempdir();
    let server = big_image_server(
        dir.path(),
        &[("DECODED_CACHE_SIZE", "0"), ("OMP_NUM_THREADS", "2")],
    );
    let port = server.port;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..24)
        .map(|c| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let w = 2500 + (c * 97 + i) % 400;
                    let _ = get_within(port, &format!("/iiif/big.tif/full/{w},/0/default.png"), 60);
                    i += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut slowest = std::time::Duration::ZERO;
    for probe in 0..40 {
        let path = ["/health", "/ready", "/metrics"][probe % 3];
        let start = std::time::Instant::now();
        let r = get_within(port, path, 5).unwrap_or_else(|| panic!("{path} took over 5 s"));
        assert_eq!(r.status, 200, "{path}");
        slowest = slowest.max(start.elapsed());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let working = crate::harness::get(port, "/metrics");
    for c in clients {
        let _ = c.join();
    }
    assert!(
        slowest < std::time::Duration::from_millis(500),
        "slowest probe {slowest:?}"
    );
    assert!(String::from_utf8_lossy(&working.body).contains("iipsrv_requests_working"));
}

#[test]
fn flat_images_are_held_within_a_byte_budget_and_never_opened_by_the_index() {
    let dir = tempdir();
    for i in 0..4 {
        write_png(
            &pattern(2400, 2000),
            &dir.path().join(format!("flat{i}.png")),
        );
    }
    write_png(&pattern(4000, 3000), &dir.path().join("huge.png"));
    let prefix = dir.path().to_string_lossy().to_string();
    let server = crate::harness::Server::start(&[
        ("FILESYSTEM_PREFIX", &prefix),
        ("MAX_FLAT_CACHE_SIZE", "40"),
    ]);
    let index = crate::harness::get(server.port, "/");
    assert!(String::from_utf8_lossy(&index.body).contains("2400 × 2000, 1 levels"));
    assert_eq!(
        crate::harness::metric(server.port, "iipsrv_open_images"),
        0,
        "the index opened images"
    );
    for round in 0..2 {
        for i in 0..4 {
            let r = crate::harness::get(server.port, &format!("/iiif/flat{i}.png/info.json"));
            assert_eq!(r.status, 200, "round {round} flat{i}");
            let held = crate::harness::metric(server.port, "iipsrv_open_image_bytes");
            assert!(held > 0 && held <= 40 << 20, "{held} bytes held");
        }
    }
    let huge = crate::harness::get(server.port, "/iiif/huge.png/info.json");
    let reason = String::from_utf8_lossy(&huge.body).to_string();
    assert_eq!(huge.status, 500, "{reason}");
    assert!(
        reason.contains("MAX_FLAT_CACHE_SIZE") && !reason.contains('\n'),
        "{reason}"
    );
}

/// Peak resident memory of a process in MB (VmHWM).
fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[test]
fn renders_beyond_the_memory_budget_are_refused_with_503() {
    let dir = tempdir();
    let server = big_image_server(dir.path(), &[("MAX_RENDER_MEMORY", "100")]);
    let port = server.port;
    let answers: Vec<crate::harness::Reply> = (0..12)
        .map(|i| {
            std::thread::spawn(move || {
                let path = format!("/iiif/big.tif/full/{},/0/default.png", 2900 + i);
                crate::harness::get(port, &path)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().expect("client"))
        .collect();
    let ok = answers.iter().filter(|r| r.status == 200).count();
    let busy: Vec<&crate::harness::Reply> = answers.iter().filter(|r| r.status == 503).collect();
    assert_eq!(ok + busy.len(), answers.len(), "only 200 and 503");
    assert!(
        ok >= 1 && !busy.is_empty(),
        "{ok} answered, {} refused",
        busy.len()
    );
    assert_eq!(busy[0].header("retry-after"), Some("1"));
    assert!(String::from_utf8_lossy(&busy[0].body).contains("render memory"));
    let peak = peak_rss_mb(server.pid());
    assert!(peak < 400.0, "peak RSS {peak} MB");
}

#[test]
fn error_bodies_and_log_lines_are_one_line_without_server_paths() {
    let dir = tempdir();
    write_png(&pattern(1200, 900), &dir.path().join("flat.png"));
    let log = dir.path().join("server.log");
    let prefix = dir.path().to_string_lossy().to_string();
    let server = crate::harness::Server::start(&[
        ("FILESYSTEM_PREFIX", &prefix),
        ("LOGFILE", &log.to_string_lossy()),
        ("VERBOSITY", "1"),
    ]);
    let forged = "/iiif/foo%0a2026-01-01T00:00:00Z%20INFO%20FORGED%1b[2J/info.json";
    let r = crate::harness::get(server.port, forged);
    assert_eq!(r.status, 404);
    assert!(!r.body.iter().any(|b| b.is_ascii_control()), "{:?}", r.body);
    assert_eq!(
        crate::harness::get(server.port, "/iiif/flat.png/info.json").status,
        200
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.contains("FORGED"), "{text}");
    for line in text.lines().filter(|l| l.contains("FORGED")) {
        assert!(
            line.contains("foo") && !line.contains('\u{1b}'),
            "forged line: {line}"
        );
    }
    assert!(
        text.contains("flat.png") && !text.contains(&prefix),
        "{text}"
    );
}

#[test]
fn conditional_requests_follow_the_rfc() {
    let dir = tempdir();
    jpeg_pyramid(dir.path(), "a.tif");
    let app = app(dir.path(), &["--cache-control", "max-age=60"]);
    let later = "Fri, 01 Jan 2100 00:00:00 GMT";
    let get = |path: &str| {
        iipsrv_server::handler::Request::get(path).with_header("if-modified-since", later)
    };
    let info = app.handle(&get("/iiif/a.tif/info.json"));
    assert_eq!(info.status, 304);
    assert_eq!(info.header("cache-control"), Some("max-age=60"));
    assert_eq!(info.header("vary"), Some("Accept"));
    let tile = app.handle(&get("/iiif/a.tif/0,0,128,128/128,/0/default.jpg"));
    assert_eq!(
        (tile.status, tile.header("cache-control")),
        (304, Some("max-age=60"))
    );
    let with_etag = get("/iiif/a.tif/info.json").with_header("if-none-match", "\"x\"");
    assert_eq!(app.handle(&with_etag).status, 200, "If-None-Match wins");
    let mut post = get("/iiif/a.tif/info.json");
    post.method = iipsrv_server::handler::Method::Post;
    assert_eq!(app.handle(&post).status, 200, "no 304 for POST");
}

#[test]
fn info_json_lists_only_sizes_it_serves_and_401_challenges() {
    let dir = tempdir();
    jpeg_pyramid(dir.path(), "a.tif");
    let app = app(dir.path(), &["--max-cvt", "300", "--admin-token", "secret"]);
    let info: serde_json::Value =
        serde_json::from_slice(&call(&app, "/iiif/a.tif/info.json").body).expect("json");
    let sizes = info["sizes"].as_array().expect("sizes");
    assert!(!sizes.is_empty());
    for size in sizes {
        let (w, h) = (
            size["width"].as_u64().expect("w"),
            size["height"].as_u64().expect("h"),
        );
        assert!(w <= 300 && h <= 300, "{size}");
        let r = call(&app, &format!("/iiif/a.tif/full/{w},{h}/0/default.jpg"));
        assert_eq!(r.status, 200, "{w},{h}: {}", text(&r));
    }
    let mut purge = iipsrv_server::handler::Request::get("/admin/purge/a.tif");
    purge.method = iipsrv_server::handler::Method::Post;
    let refused = app.handle(&purge);
    assert_eq!(refused.status, 401);
    assert!(refused
        .header("www-authenticate")
        .is_some_and(|v| v.starts_with("Bearer")));
}

#[test]
fn http_requests_need_exactly_one_host() {
    let dir = tempdir();
    jpeg_pyramid(dir.path(), "a.tif");
    let prefix = dir.path().to_string_lossy().to_string();
    let server = crate::harness::Server::start(&[("FILESYSTEM_PREFIX", &prefix)]);
    let raw = |head: &str| crate::harness::raw_request(server.port, head).status;
    assert_eq!(raw("GET /iiif/a.tif/info.json HTTP/1.1\r\n"), 400);
    assert_eq!(
        raw("GET /iiif/a.tif/info.json HTTP/1.1\r\nHost: a\r\nHost: b\r\n"),
        400
    );
    assert_eq!(
        raw("GET /iiif/a.tif/info.json HTTP/1.1\r\nHost: a\r\n"),
        200
    );
    assert_eq!(raw("GET /iiif/a.tif/info.json HTTP/1.0\r\n"), 200);
}
