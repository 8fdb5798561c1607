//! Peak resident memory under hostile load, per front end: as many connections as the
//! FastCGI front end serves (FCGI_MAX_CONNS less a few), each holding the largest request
//! the front end accepts without ever finishing it — FastCGI: 64 KiB of parameters spread
//! over the most multiplexed requests; HTTP: a 64 KiB header block never ended — while a
//! well-behaved client is still answered. The figures are printed (the README's
//! reliability section quotes them) and bounded.

use crate::fastcgi_protocol::{answer, params, record, Fcgi, BEGIN, PARAMS};
use crate::harness::{get, peak_rss_kb, tempdir, Server};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

/// Hostile connections per front end.
const CONNECTIONS: usize = 500;
/// The most the peak may grow over the idle server's, in KiB.
const BOUND_KB: u64 = 200 * 1024;

/// Opens `CONNECTIONS` connections to `port`, sending each `stream`, never finishing it.
fn hold(port: u16, stream: &[u8]) -> Vec<TcpStream> {
    (0..CONNECTIONS)
        .filter_map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
            s.write_all(stream).ok()?;
            Some(s)
        })
        .collect()
}

/// The FastCGI stream: eight requests begun, 8 KB of parameters each (64 KiB in all).
fn fastcgi_stream() -> Vec<u8> {
    let value = "v".repeat(8000);
    let per_request = params(&[("HTTP_X", value.as_str())]);
    (1..=8u16)
        .flat_map(|id| {
            let begin = record(BEGIN, id, &[0, 1, 1, 0, 0, 0, 0, 0]);
            [begin, record(PARAMS, id, &per_request)].concat()
        })
        .collect()
}

/// The HTTP stream: a request line and 63 KB of one header, the header block never ended.
fn http_stream() -> Vec<u8> {
    format!(
        "GET /iiif/a.tif/info.json HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n",
        "a".repeat(63_000)
    )
    .into_bytes()
}

/// Prints and checks one front end's figures.
fn report(front: &str, idle: u64, peak: u64, held: usize) {
    eprintln!(
        "{front} peak RSS: {} MiB idle, {} MiB with {held} connections holding the largest request",
        idle / 1024,
        peak / 1024
    );
    assert!(held >= CONNECTIONS - 10, "{front}: only {held} connections");
    assert!(peak < idle + BOUND_KB, "{front}: {idle} KiB → {peak} KiB");
}

#[test]
fn peak_memory_under_hostile_load_is_bounded() {
    let dir = tempdir();
    iipsrv_server::demo::write_demo(&dir.path().join("a.tif"), 600, 400).expect("image");
    let prefix = dir.path().to_string_lossy().to_string();

    let fcgi = Fcgi::start(&prefix, &[], None, dir.path());
    let mut kept = fcgi.connect();
    let idle = peak_rss_kb(fcgi.pid());
    let held = hold(fcgi.port, &fastcgi_stream());
    std::thread::sleep(Duration::from_secs(2));
    let ok = answer(&mut kept, 1, "/fcgi-bin/iipsrv.fcgi?FIF=a.tif&OBJ=Max-size");
    assert!(ok.ends_with("Max-size:600 400\r\n"), "{ok}");
    report("FastCGI", idle, peak_rss_kb(fcgi.pid()), held.len());
    drop((held, kept, fcgi));

    let http = Server::start(&[("FILESYSTEM_PREFIX", &prefix)]);
    let idle = peak_rss_kb(http.pid());
    let held = hold(http.port, &http_stream());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(get(http.port, "/iiif/a.tif/info.json").status, 200);
    report("HTTP", idle, peak_rss_kb(http.pid()), held.len());
}
