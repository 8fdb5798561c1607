//! Process life with the real binary: SIGTERM lets the request in flight finish, refuses
//! new connections and exits 0; SIGHUP reopens the log file (log rotation) and keeps
//! serving.

use crate::harness::{get, metric, read_reply, tempdir, Server};
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn sigterm_finishes_the_request_in_flight_then_exits() {
    let dir = tempdir();
    iipsrv_server::demo::write_demo(&dir.path().join("big.tif"), 4096, 3072).expect("image");
    let prefix = format!("{}/", dir.path().display());
    let mut server = Server::start(&[
        ("FILESYSTEM_PREFIX", &prefix),
        ("MAX_CVT", "-1"),
        ("MAX_IMAGE_CACHE_SIZE", "0"),
    ]);
    // a slow answer: the whole image as PNG at full size
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    s.write_all(
        b"GET /fcgi-bin/iipsrv.fcgi?FIF=big.tif&WID=4096&QLT=9&CVT=png HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .expect("send");
    // The request must be in flight (read and admitted) before the signal: one still in
    // the socket's queue when the server stops listening is not the server's to answer.
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(server.port, "iipsrv_requests_in_flight ") == 0 {
        assert!(Instant::now() < deadline, "the request never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = Instant::now();
    server.signal("TERM");
    let reply = read_reply(&mut BufReader::new(s), false);
    assert_eq!(reply.status, 200, "the request in flight is answered");
    let decoded = crate::harness::decode_image(&reply.body);
    assert_eq!(
        (decoded.width, decoded.height),
        (4096, 3072),
        "and answered whole"
    );
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("the server exits after the drain");
    assert!(status.success(), "exit status {status:?}");
    // A hang, not a slow machine: the encode alone takes seconds when the machine is busy.
    assert!(sent.elapsed() < Duration::from_secs(60));
    assert!(
        TcpStream::connect(("127.0.0.1", server.port)).is_err(),
        "no new connections after the stop"
    );
}

#[test]
fn sigterm_on_an_idle_server_exits_at_once() {
    let dir = tempdir();
    iipsrv_server::demo::write_demo(&dir.path().join("a.tif"), 300, 200).expect("image");
    let prefix = format!("{}/", dir.path().display());
    let mut server = Server::start(&[("FILESYSTEM_PREFIX", &prefix)]);
    // an idle kept-alive connection must not hold the stop up
    let mut idle = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    idle.write_all(b"GET /iiif/a.tif/info.json HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let first = read_reply(&mut BufReader::new(idle.try_clone().expect("clone")), false);
    assert_eq!(first.status, 200);
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(5)).expect("exits");
    assert!(status.success());
}

#[test]
fn sighup_reopens_the_log_file_and_keeps_serving() {
    let dir = tempdir();
    iipsrv_server::demo::write_demo(&dir.path().join("a.tif"), 300, 200).expect("image");
    let prefix = format!("{}/", dir.path().display());
    let log = dir.path().join("iipsrv.log");
    let log_s = log.display().to_string();
    let mut server = Server::start(&[
        ("FILESYSTEM_PREFIX", &prefix),
        ("LOGFILE", &log_s),
        ("VERBOSITY", "1"),
    ]);
    assert_eq!(get(server.port, "/iiif/a.tif/info.json").status, 200);
    let rotated = dir.path().join("iipsrv.log.1");
    std::fs::rename(&log, &rotated).expect("rotate");
    server.signal("HUP");
    let start = Instant::now();
    while !log.exists() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        get(server.port, "/iiif/a.tif/full/64,/0/default.jpg").status,
        200
    );
    std::thread::sleep(Duration::from_millis(100));
    let new_log = std::fs::read_to_string(&log).expect("a new log file");
    assert!(new_log.contains("SIGHUP"), "{new_log}");
    assert!(new_log.contains("default.jpg 200"), "{new_log}");
    let old_log = std::fs::read_to_string(&rotated).expect("old log");
    assert!(old_log.contains("info.json 200") && !old_log.contains("default.jpg"));
    assert!(server.alive());
}
