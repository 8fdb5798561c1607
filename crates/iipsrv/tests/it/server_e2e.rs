//! The real binary over real sockets: the demo image when nothing is configured, HEAD,
//! keep-alive, hostile requests, and the process still answering afterwards.

use crate::harness::*;
use std::io::{BufReader, Write};
use std::net::TcpStream;

#[test]
fn serves_the_demo_image_without_configuration() {
    let tmp = tempdir();
    let tmpdir = tmp.path().to_string_lossy().to_string();
    let server = Server::start(&[("TMPDIR", &tmpdir)]);
    let index = get(server.port, "/");
    assert_eq!(index.status, 200);
    assert!(String::from_utf8_lossy(&index.body).contains("demo.tif"));
    let info = get(server.port, "/iiif/demo.tif/info.json");
    assert_eq!(info.status, 200);
    let j: serde_json::Value = serde_json::from_slice(&info.body).expect("json");
    assert_eq!(
        (j["width"].as_u64(), j["height"].as_u64()),
        (Some(4096), Some(3072))
    );
    let tile = get(server.port, "/iiif/demo.tif/0,0,256,256/256,/0/default.jpg");
    assert_eq!(tile.status, 200);
    assert_eq!(tile.header("content-type"), Some("image/jpeg"));
}

#[test]
fn head_keep_alive_and_hostile_requests() {
    let dir = tempdir();
    iipsrv_server::demo::write_demo(&dir.path().join("a.tif"), 800, 600).expect("image");
    let prefix = dir.path().to_string_lossy().to_string();
    let mut server = Server::start(&[("FILESYSTEM_PREFIX", &prefix), ("CORS", "*")]);
    let port = server.port;

    let head = raw_request(
        port,
        &format!("HEAD /iiif/a.tif/full/200,/0/default.jpg HTTP/1.1\r\nHost: h:{port}\r\n"),
    );
    let full = get(port, "/iiif/a.tif/full/200,/0/default.jpg");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(full.body.len().to_string().as_str())
    );
    assert_eq!(full.header("access-control-allow-origin"), Some("*"));

    // two requests on one connection
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let req = format!("GET /iiif/a.tif/info.json HTTP/1.1\r\nHost: h:{port}\r\n\r\n");
    s.write_all(req.as_bytes()).expect("send");
    s.write_all(req.as_bytes()).expect("send");
    let mut r = BufReader::new(s);
    assert_eq!(read_reply(&mut r, false).status, 200);
    assert_eq!(read_reply(&mut r, false).status, 200);

    let hostile = [
        "/iiif/a.tif/full/99999999,/0/default.jpg",
        "/iiif/a.tif/full/^99999999,99999999/0/default.jpg",
        "/iiif/a.tif/0,0,0,0/max/0/default.jpg",
        "/iiif/a.tif/-5,0,10,10/max/0/default.jpg",
        "/iiif/a.tif/full/pct:NaN/0/default.jpg",
        "/iiif/a.tif/full/max/NaN/default.jpg",
        "/iiif/a.tif/full/max/1e999/default.jpg",
        "/iiif/%ff%fe/info.json",
        "/iiif/../../etc/passwd",
    ];
    for path in hostile {
        let r = get(port, path);
        assert!((400..500).contains(&r.status), "{path}: {}", r.status);
    }
    let garbage = raw_request(port, "THIS IS NOT HTTP\r\n");
    assert!(garbage.status >= 400);
    let big_header = raw_request(
        port,
        &format!("GET / HTTP/1.1\r\nX-Big: {}\r\n", "a".repeat(200_000)),
    );
    assert!(big_header.status >= 400);
    assert!(server.alive());
    assert_eq!(
        get(port, "/iiif/a.tif/info.json").status,
        200,
        "still answering"
    );
}

#[test]
fn logfile_gets_a_line_per_request_and_bad_logfiles_only_warn() {
    let dir = tempdir();
    iipsrv_server::demo::write_demo(&dir.path().join("a.tif"), 300, 200).expect("image");
    let prefix = dir.path().to_string_lossy().to_string();
    let log = dir.path().join("iipsrv.log");
    let logfile = log.to_string_lossy().to_string();
    {
        let server = Server::start(&[("FILESYSTEM_PREFIX", &prefix), ("LOGFILE", &logfile)]);
        assert_eq!(
            get(server.port, "/iiif/a.tif/full/100,/0/default.jpg").status,
            200
        );
        assert_eq!(get(server.port, "/iiif/nope.tif/info.json").status, 404);
    }
    let text = std::fs::read_to_string(&log).expect("log written");
    let line = text
        .lines()
        .find(|l| l.contains("/iiif/a.tif/full/100,/0/default.jpg"))
        .expect("request line");
    assert!(line.contains(" 200 ") && line.contains("ms"), "{line}");
    assert!(
        text.lines()
            .any(|l| l.contains("nope.tif") && l.contains("404")),
        "{text}"
    );
    assert!(
        !text.contains(&prefix),
        "no log line shows the image directory: {text}"
    );

    let quiet = dir.path().join("quiet.log");
    let quiet_s = quiet.to_string_lossy().to_string();
    {
        let server = Server::start(&[
            ("FILESYSTEM_PREFIX", &prefix),
            ("LOGFILE", &quiet_s),
            ("VERBOSITY", "0"),
        ]);
        assert_eq!(get(server.port, "/iiif/a.tif/info.json").status, 200);
    }
    assert!(
        !quiet.exists()
            || std::fs::read_to_string(&quiet)
                .unwrap_or_default()
                .is_empty()
    );

    for bad in ["/nonexistent-dir/x/iipsrv.log", "syslog"] {
        let server = Server::start(&[("FILESYSTEM_PREFIX", &prefix), ("LOGFILE", bad)]);
        assert_eq!(
            get(server.port, "/iiif/a.tif/info.json").status,
            200,
            "{bad}"
        );
    }
}

#[test]
fn metrics_count_requests_latency_bytes_and_cache_hits() {
    let dir = tempdir();
    iipsrv_server::demo::write_demo(&dir.path().join("a.tif"), 600, 400).expect("image");
    let prefix = dir.path().to_string_lossy().to_string();
    let server = Server::start(&[
        ("FILESYSTEM_PREFIX", &prefix),
        ("MAX_IMAGE_CACHE_SIZE", "0.5"),
    ]);
    for _ in 0..2 {
        assert_eq!(
            get(server.port, "/iiif/a.tif/full/200,/0/default.jpg").status,
            200
        );
    }
    // 40 answers of 20-60 kB each overflow the 0.5 MB RAM tier: evictions.
    for w in 560..600 {
        let path = format!("/iiif/a.tif/full/{w},/0/default.png");
        assert_eq!(get(server.port, &path).status, 200);
    }
    assert_eq!(get(server.port, "/iiif/nope.tif/info.json").status, 404);
    assert_eq!(
        get(server.port, "/fcgi-bin/iipsrv.fcgi?FIF=a.tif&OBJ=Max-size").status,
        200
    );
    let m = get(server.port, "/metrics");
    assert_eq!(m.status, 200);
    let text = String::from_utf8_lossy(&m.body).to_string();
    for needle in [
        "iipsrv_requests_total{protocol=\"iiif\",status=\"200\"} 42",
        "iipsrv_requests_total{protocol=\"iiif\",status=\"404\"} 1",
        "iipsrv_requests_total{protocol=\"iip\",status=\"200\"} 1",
        "iipsrv_cache_lookups_total{tier=\"ram\",outcome=\"hit\"} 1",
        "iipsrv_request_duration_seconds_bucket{protocol=\"iiif\",le=\"0.0005\"}",
        "iipsrv_response_bytes_total{protocol=\"iiif\"}",
        "iipsrv_requests_in_flight",
        // /metrics itself is answered on the connection's thread, not on a worker.
        "iipsrv_requests_working 0",
        "iipsrv_cache_evictions_total{tier=\"ram\"}",
        "iipsrv_open_images 1",
    ] {
        assert!(text.contains(needle), "missing {needle} in:\n{text}");
    }
    let off = Server::start(&[("FILESYSTEM_PREFIX", &prefix), ("METRICS", "0")]);
    assert_eq!(get(off.port, "/metrics").status, 404);
}

#[test]
fn slow_and_vanishing_clients_cost_no_worker() {
    let dir = tempdir();
    iipsrv_server::demo::write_demo(&dir.path().join("a.tif"), 1600, 1200).expect("image");
    let prefix = dir.path().to_string_lossy().to_string();
    let mut server = Server::start(&[
        ("FILESYSTEM_PREFIX", &prefix),
        ("OMP_NUM_THREADS", "1"),
        ("MAX_IMAGE_CACHE_SIZE", "0"),
    ]);
    let port = server.port;
    // Slowloris: 300 connections, each stalled in the middle of its headers (more than the
    // 64 requests one worker thread admits).
    let stalled: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            s.write_all(b"GET /iiif/a.tif/info.json HTTP/1.1\r\nHo")
                .expect("send");
            s
        })
        .collect();
    let start = std::time::Instant::now();
    assert_eq!(get(port, "/iiif/a.tif/full/300,/0/default.jpg").status, 200);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(3),
        "a render waited {:?} behind stalled clients",
        start.elapsed()
    );
    // Clients that vanish: each asks for a large render and closes at once.
    for _ in 0..40 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.write_all(
            format!("GET /iiif/a.tif/full/max/0/default.png HTTP/1.1\r\nHost: h:{port}\r\n\r\n")
                .as_bytes(),
        )
        .expect("send");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let m = String::from_utf8_lossy(&get(port, "/metrics").body).to_string();
        // /metrics itself is answered on the connection's thread: none is in flight.
        if m.lines()
            .any(|l| l.starts_with("iipsrv_requests_in_flight ") && l.ends_with(" 0"))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "renders of vanished clients still in flight after 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(get(port, "/iiif/a.tif/full/200,/0/default.jpg").status, 200);
    drop(stalled);
    assert!(server.alive(), "the server survived");
}
