//! The FastCGI front end spoken to directly, record by record: multiplexed requests on one
//! kept-alive connection, an aborted request, a large answer split over many records.

use crate::harness::{free_port, tempdir, wait_for_port};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BEGIN: u8 = 1;
const ABORT: u8 = 2;
const END: u8 = 3;
const PARAMS: u8 = 4;
const STDIN: u8 = 5;
const STDOUT: u8 = 6;

fn record(kind: u8, id: u16, content: &[u8]) -> Vec<u8> {
    let mut r = vec![1, kind];
    r.extend_from_slice(&id.to_be_bytes());
    r.extend_from_slice(&(content.len() as u16).to_be_bytes());
    r.extend_from_slice(&[0, 0]);
    r.extend_from_slice(content);
    r
}

fn params(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, v) in pairs {
        for len in [n.len(), v.len()] {
            if len < 128 {
                out.push(len as u8);
            } else {
                out.extend_from_slice(&(len as u32 | 0x8000_0000).to_be_bytes());
            }
        }
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

/// The records of one GET of `uri` as request `id` (keep the connection open).
fn get_request(id: u16, uri: &str) -> Vec<Vec<u8>> {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let p = params(&[
        ("REQUEST_METHOD", "GET"),
        ("REQUEST_URI", uri),
        ("SCRIPT_NAME", path),
        ("QUERY_STRING", query),
        ("HTTP_HOST", "example.org"),
    ]);
    vec![
        record(BEGIN, id, &[0, 1, 1, 0, 0, 0, 0, 0]),
        record(PARAMS, id, &p),
        record(PARAMS, id, &[]),
        record(STDIN, id, &[]),
    ]
}

/// Reads records until every id in `ids` has ended; returns each one's stdout.
fn read_until_ended(s: &mut TcpStream, ids: &[u16]) -> HashMap<u16, Vec<u8>> {
    let mut out: HashMap<u16, Vec<u8>> = HashMap::new();
    let mut ended = 0;
    while ended < ids.len() {
        let mut head = [0u8; 8];
        if let Err(e) = s.read_exact(&mut head) {
            panic!(
                "waiting for the end of {ids:?}: {e}; got so far {:?}",
                out.keys().collect::<Vec<_>>()
            );
        }
        let id = u16::from_be_bytes([head[2], head[3]]);
        let len = u16::from_be_bytes([head[4], head[5]]) as usize;
        let mut body = vec![0u8; len + head[6] as usize];
        s.read_exact(&mut body).expect("record body");
        body.truncate(len);
        match head[1] {
            STDOUT => out.entry(id).or_default().extend_from_slice(&body),
            END if ids.contains(&id) => ended += 1,
            _ => {}
        }
    }
    out
}

struct Fcgi {
    port: u16,
    child: Child,
}

impl Drop for Fcgi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(prefix: &str) -> Fcgi {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_iipsrv"))
        .args(["--bind", &format!("127.0.0.1:{port}"), "--backlog", "64"])
        .env("FILESYSTEM_PREFIX", prefix)
        .env("VERBOSITY", "0")
        .env("TIFF_COMPRESSION", "0")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    wait_for_port(port, "the FastCGI socket");
    Fcgi { port, child }
}

#[test]
fn multiplexed_kept_alive_aborted_and_large() {
    let dir = tempdir();
    iipsrv_server::demo::write_demo(&dir.path().join("a.tif"), 1200, 900).expect("image");
    let server = start(&dir.path().to_string_lossy());
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");

    // two requests interleaved record by record on one connection
    let a = get_request(1, "/iiif/a.tif/info.json");
    let b = get_request(2, "/fcgi-bin/iipsrv.fcgi?FIF=a.tif&OBJ=Max-size");
    for (ra, rb) in a.iter().zip(&b) {
        s.write_all(ra).expect("send");
        s.write_all(rb).expect("send");
    }
    let out = read_until_ended(&mut s, &[1, 2]);
    let one = String::from_utf8_lossy(&out[&1]).to_string();
    let two = String::from_utf8_lossy(&out[&2]).to_string();
    assert!(one.starts_with("Status: 200 OK\r\n"), "{one}");
    assert!(
        one.contains("\"id\": \"http://example.org/iiif/a.tif\""),
        "{one}"
    );
    assert!(two.ends_with("\r\n\r\nMax-size:1200 900\r\n"), "{two}");

    // an aborted request, then the connection still serves the next one
    for r in get_request(3, "/iiif/a.tif/full/max/0/default.png") {
        s.write_all(&r).expect("send");
    }
    s.write_all(&record(ABORT, 3, &[])).expect("abort");
    // (request 3 may or may not have ended: the abort can arrive before or after its answer)

    // a 3 MB answer (uncompressed TIFF) arrives whole over many records
    for r in get_request(4, "/iiif/a.tif/full/max/0/default.tif") {
        s.write_all(&r).expect("send");
    }
    let out = read_until_ended(&mut s, &[4]);
    let raw = &out[&4];
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end")
        + 4;
    let head = String::from_utf8_lossy(&raw[..split]);
    assert!(head.starts_with("Status: 200 OK"), "{head}");
    assert!(
        head.contains(&format!("content-length: {}", raw.len() - split)),
        "{head}"
    );
    assert!(
        raw.len() - split > 1200 * 900 * 3,
        "{} bytes",
        raw.len() - split
    );
}
