//! The FastCGI front end spoken to directly, record by record: multiplexed requests on one
//! kept-alive connection answered concurrently, an aborted request, a large answer split
//! over many records, the management records. The helpers here are shared with
//! `fastcgi_hostile`.

use crate::harness::{free_port, tempdir, wait_for_port};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub(crate) const BEGIN: u8 = 1;
pub(crate) const ABORT: u8 = 2;
pub(crate) const END: u8 = 3;
pub(crate) const PARAMS: u8 = 4;
pub(crate) const STDIN: u8 = 5;
pub(crate) const STDOUT: u8 = 6;
pub(crate) const GET_VALUES: u8 = 9;

/// One record (no padding); the content must fit one record.
pub(crate) fn record(kind: u8, id: u16, content: &[u8]) -> Vec<u8> {
    let mut r = vec![1, kind];
    r.extend_from_slice(&id.to_be_bytes());
    r.extend_from_slice(&(content.len() as u16).to_be_bytes());
    r.extend_from_slice(&[0, 0]);
    r.extend_from_slice(content);
    r
}

/// Name-value pairs as PARAMS content.
pub(crate) fn params(pairs: &[(&str, &str)]) -> Vec<u8> {
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
pub(crate) fn get_request(id: u16, uri: &str) -> Vec<Vec<u8>> {
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
pub(crate) fn read_until_ended(s: &mut TcpStream, ids: &[u16]) -> HashMap<u16, Vec<u8>> {
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

/// A FastCGI server process on a free port, its log in `log`.
pub(crate) struct Fcgi {
    pub(crate) port: u16,
    child: Child,
    log: std::path::PathBuf,
}

impl Drop for Fcgi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Fcgi {
    /// Serves `prefix` with `env` set, its address space capped at `vmem_kb` KiB when
    /// given (`ulimit -v`, as a memory-capped service runs); logs into `log_dir`.
    pub(crate) fn start(
        prefix: &str,
        env: &[(&str, &str)],
        vmem_kb: Option<u64>,
        log_dir: &std::path::Path,
    ) -> Fcgi {
        let port = free_port();
        let log = log_dir.join(format!("fcgi-{port}.log"));
        let cap = vmem_kb.map_or(String::new(), |kb| format!("ulimit -v {kb}; "));
        let child = Command::new("sh")
            .args(["-c", &format!("{cap}exec \"$0\" \"$@\"")])
            .arg(env!("CARGO_BIN_EXE_iipsrv"))
            .args(["--bind", &format!("127.0.0.1:{port}"), "--backlog", "64"])
            .env("FILESYSTEM_PREFIX", prefix)
            .env("VERBOSITY", "1")
            .env("LOGFILE", &log)
            .env("TIFF_COMPRESSION", "0")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start");
        wait_for_port(port, "the FastCGI socket");
        Fcgi { port, child, log }
    }

    /// A new connection with a 30 s read timeout.
    pub(crate) fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        s
    }

    /// True while the process runs.
    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// The answer of one GET of `uri` as request `id` on `s`, as text.
pub(crate) fn answer(s: &mut TcpStream, id: u16, uri: &str) -> String {
    for r in get_request(id, uri) {
        s.write_all(&r).expect("send");
    }
    String::from_utf8_lossy(&read_until_ended(s, &[id])[&id]).to_string()
}

fn start(prefix: &str) -> Fcgi {
    Fcgi::start(prefix, &[], None, std::path::Path::new(prefix))
}

#[test]
fn multiplexed_kept_alive_aborted_and_large() {
    let dir = tempdir();
    iipsrv_server::demo::write_demo(&dir.path().join("a.tif"), 1200, 900).expect("image");
    let server = start(&dir.path().to_string_lossy());
    let mut s = server.connect();

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

#[test]
fn a_multiplexing_client_gets_concurrent_answers() {
    let dir = tempdir();
    iipsrv_server::demo::write_demo(&dir.path().join("big.tif"), 6000, 4000).expect("image");
    iipsrv_server::demo::write_demo(&dir.path().join("small.tif"), 300, 200).expect("image");
    let server = start(&dir.path().to_string_lossy());
    let mut s = server.connect();
    // the limits the server advertises: multiplexing is real
    let ask = params(&[("FCGI_MPXS_CONNS", ""), ("FCGI_MAX_REQS", "")]);
    s.write_all(&record(GET_VALUES, 0, &ask)).expect("send");
    let mut head = [0u8; 8];
    s.read_exact(&mut head).expect("GET_VALUES_RESULT");
    let mut body = vec![0u8; usize::from(u16::from_be_bytes([head[4], head[5]]))];
    s.read_exact(&mut body).expect("body");
    assert_eq!(head[1], 10, "GET_VALUES_RESULT");
    assert_eq!(
        body,
        params(&[("FCGI_MAX_REQS", "8"), ("FCGI_MPXS_CONNS", "1")])
    );

    // a slow render (a 6000x4000 PNG) as request 7, then quick answers as 8 and 9, their
    // records interleaved: the quick ones end while the slow one is still being made
    let slow = get_request(7, "/iiif/big.tif/full/max/0/default.png");
    let quick = get_request(8, "/iiif/small.tif/info.json");
    let other = get_request(9, "/fcgi-bin/iipsrv.fcgi?FIF=small.tif&OBJ=Max-size");
    for ((a, b), c) in slow.iter().zip(&quick).zip(&other) {
        for r in [a, b, c] {
            s.write_all(r).expect("send");
        }
    }
    let mut order = Vec::new();
    while order.len() < 3 {
        s.read_exact(&mut head).expect("record");
        let len = usize::from(u16::from_be_bytes([head[4], head[5]])) + usize::from(head[6]);
        let mut skip = vec![0u8; len];
        s.read_exact(&mut skip).expect("content");
        if head[1] == END {
            order.push(u16::from_be_bytes([head[2], head[3]]));
        }
    }
    assert_eq!(order[2], 7, "the slow answer ends last: {order:?}");
}

/// The records of one request of `uri` as request `id`, with `extra` parameters and `body`
/// as STDIN.
fn request_with(id: u16, method: &str, uri: &str, extra: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let mut pairs = vec![
        ("REQUEST_METHOD", method),
        ("REQUEST_URI", uri),
        ("SCRIPT_NAME", path),
        ("QUERY_STRING", query),
        ("HTTP_HOST", "example.org"),
    ];
    pairs.extend_from_slice(extra);
    let mut out = [
        record(BEGIN, id, &[0, 1, 1, 0, 0, 0, 0, 0]),
        record(PARAMS, id, &params(&pairs)),
        record(PARAMS, id, &[]),
    ]
    .concat();
    // the body in two records, as web servers split it
    let (a, b) = body.split_at(body.len() / 2);
    for part in [a, b].into_iter().filter(|p| !p.is_empty()) {
        out.extend(record(STDIN, id, part));
    }
    out.extend(record(STDIN, id, &[]));
    out
}

#[test]
fn the_access_services_login_form_works_over_fastcgi() {
    let dir = tempdir();
    let image = dir.path().join("manuscripts/m.tif");
    std::fs::create_dir_all(image.parent().expect("parent")).expect("dir");
    iipsrv_server::demo::write_demo(&image, 1200, 900).expect("image");
    let policy =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/auth-policy.toml");
    let env = [("AUTH_POLICY", policy.to_str().expect("path"))];
    let server = Fcgi::start(&dir.path().to_string_lossy(), &env, None, dir.path());
    let mut s = server.connect();
    let full = "/iiif/manuscripts%2Fm.tif/full/max/0/default.jpg";
    assert!(answer(&mut s, 1, full).starts_with("Status: 401"));

    let form = b"user=reader&password=reading-room";
    let post = request_with(2, "POST", "/iiif/_auth/access/reading-room", &[], form);
    s.write_all(&post).expect("send");
    let page = String::from_utf8_lossy(&read_until_ended(&mut s, &[2])[&2]).to_string();
    assert!(page.starts_with("Status: 200"), "{page}");
    let cookie = page
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string();
    let get = request_with(3, "GET", full, &[("HTTP_COOKIE", &cookie)], b"");
    s.write_all(&get).expect("send");
    let image = String::from_utf8_lossy(&read_until_ended(&mut s, &[3])[&3]).to_string();
    assert!(
        image.starts_with("Status: 200"),
        "{}",
        &image[..image.len().min(200)]
    );

    let wrong = request_with(
        4,
        "POST",
        "/iiif/_auth/access/reading-room",
        &[],
        b"user=reader&password=no",
    );
    s.write_all(&wrong).expect("send");
    let page = String::from_utf8_lossy(&read_until_ended(&mut s, &[4])[&4]).to_string();
    assert!(!page.contains("set-cookie"), "{page}");
}
