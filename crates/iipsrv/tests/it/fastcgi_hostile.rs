//! Hostile FastCGI clients: lengths that lie (a name-value pair claiming 2^31-1 bytes,
//! records cut short, pairs past their record), 10,000 pairs, unknown record types, a second
//! BEGIN_REQUEST for a live id, records for ids never begun, padding abuse, too many
//! requests, bodies and connections. Each must cost its one connection (closed with a log
//! line, or refused with the protocol's answer) while another connection, kept alive
//! throughout, goes on being served; also with the server's address space capped by
//! `ulimit -v`. Also: an aborted request, and the connection limit.

use crate::fastcgi_protocol::{
    answer, get_request, params, record, Fcgi, ABORT, BEGIN, GET_VALUES, PARAMS, STDIN, STDOUT,
};
use crate::harness::tempdir;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::Duration;

/// What a hostile stream must get back.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    /// Nothing, then the connection closed.
    Closed,
    /// One record of this type, the connection left open.
    Refused(u8),
}

fn begin(id: u16, role: u8) -> Vec<u8> {
    record(BEGIN, id, &[0, role, 1, 0, 0, 0, 0, 0])
}

/// The hostile streams, each with its name and what it must get.
fn hostile_streams() -> Vec<(&'static str, Vec<u8>, Outcome)> {
    let huge_pair = [vec![0xff; 8], b"ab".to_vec()].concat();
    let mut header_claims_more = record(PARAMS, 1, &[]);
    header_claims_more[4..6].copy_from_slice(&1000u16.to_be_bytes());
    header_claims_more.extend_from_slice(&[0; 10]);
    let mut padded_then_cut = record(GET_VALUES, 0, &[]);
    padded_then_cut[6] = 255;
    padded_then_cut.extend_from_slice(&[0; 100]);
    let mut padded_whole = record(GET_VALUES, 0, &params(&[("FCGI_MAX_CONNS", "")]));
    padded_whole[6] = 255;
    padded_whole.extend_from_slice(&[0; 255]);
    let ten_thousand: Vec<(&str, &str)> = vec![("a", ""); 10_000];
    let pairs = params(&ten_thousand);
    let mut many_pairs = vec![begin(1, 1)];
    many_pairs.extend(pairs.chunks(60_000).map(|c| record(PARAMS, 1, c)));
    many_pairs.push(record(PARAMS, 1, &[]));
    let big = vec![b'x'; 60_000];
    let s = |parts: &[Vec<u8>]| parts.concat();
    let o = Outcome::Closed;
    vec![
        (
            "pair claiming 2^31-1 bytes",
            s(&[
                begin(1, 1),
                record(PARAMS, 1, &huge_pair),
                record(PARAMS, 1, &[]),
                record(STDIN, 1, &[]),
            ]),
            o,
        ),
        ("truncated header", vec![1, BEGIN, 0, 1, 0], o),
        (
            "content length past the record",
            s(&[begin(1, 1), header_claims_more]),
            o,
        ),
        (
            "pair past its record",
            s(&[
                begin(1, 1),
                record(PARAMS, 1, &[100, 1, b'a']),
                record(PARAMS, 1, &[]),
            ]),
            o,
        ),
        ("10,000 pairs", many_pairs.concat(), o),
        (
            "parameters past 64 KiB",
            s(&[
                begin(1, 1),
                record(PARAMS, 1, &big),
                record(PARAMS, 1, &big),
            ]),
            o,
        ),
        (
            "body past 64 KiB",
            s(&[
                begin(1, 1),
                record(PARAMS, 1, &[]),
                record(STDIN, 1, &big),
                record(STDIN, 1, &big),
            ]),
            o,
        ),
        (
            "unknown type for a request",
            s(&[begin(1, 1), record(77, 1, b"x")]),
            o,
        ),
        (
            "application-only type",
            s(&[begin(1, 1), record(STDOUT, 1, b"x")]),
            o,
        ),
        (
            "unknown management type",
            record(200, 0, &[]),
            Outcome::Refused(11),
        ),
        (
            "second BEGIN for a live id",
            s(&[begin(1, 1), begin(1, 1)]),
            o,
        ),
        ("records for an unknown id", record(STDIN, 9, b"x"), o),
        ("padding cut short", padded_then_cut, o),
        ("padding at its most", padded_whole, Outcome::Refused(10)),
        (
            "version 2",
            vec![2, BEGIN, 0, 1, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0],
            o,
        ),
        (
            "nine requests at once",
            (1..=9).map(|id| begin(id, 1)).collect::<Vec<_>>().concat(),
            o,
        ),
        ("authorizer role", begin(1, 2), Outcome::Refused(3)),
    ]
}

/// Sends `stream` on a new connection, stops sending, and reads what comes back until the
/// server closes the connection.
fn send(server: &Fcgi, stream: &[u8]) -> Vec<u8> {
    let mut s = server.connect();
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = s.write_all(stream);
    let _ = s.shutdown(Shutdown::Write);
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    got
}

/// Every hostile stream against one server, the kept-alive connection served after each.
fn hostile_streams_cost_one_connection(vmem_kb: Option<u64>) {
    let dir = tempdir();
    iipsrv_server::demo::write_demo(&dir.path().join("a.tif"), 600, 400).expect("image");
    let mut server = Fcgi::start(&dir.path().to_string_lossy(), &[], vmem_kb, dir.path());
    let mut kept = server.connect();
    for (i, (name, stream, outcome)) in hostile_streams().into_iter().enumerate() {
        let got = send(&server, &stream);
        match outcome {
            Outcome::Closed => assert!(got.is_empty(), "{name}: answered {got:?}"),
            Outcome::Refused(kind) => assert_eq!(got.get(1), Some(&kind), "{name}: {got:?}"),
        }
        let id = 100 + i as u16;
        let ok = answer(
            &mut kept,
            id,
            "/fcgi-bin/iipsrv.fcgi?FIF=a.tif&OBJ=Max-size",
        );
        assert!(ok.ends_with("Max-size:600 400\r\n"), "after {name}: {ok}");
        assert!(server.alive(), "after {name}");
    }
    let log = server.log();
    let closed = hostile_streams()
        .iter()
        .filter(|c| c.2 == Outcome::Closed)
        .count();
    let lines = log.matches("FastCGI connection closed").count();
    assert!(
        lines >= closed,
        "one log line per closed connection:\n{log}"
    );
}

#[test]
fn hostile_record_streams_cost_only_their_connection() {
    hostile_streams_cost_one_connection(None);
}

#[test]
fn hostile_record_streams_under_a_memory_cap() {
    // the cap main's tokio-fastcgi front end aborted under (2 GiB asked for 10 bytes)
    hostile_streams_cost_one_connection(Some(3_000_000));
}

#[test]
fn an_aborted_queued_request_is_ended_and_the_connection_serves_on() {
    let dir = tempdir();
    iipsrv_server::demo::write_demo(&dir.path().join("a.tif"), 600, 400).expect("image");
    let server = Fcgi::start(&dir.path().to_string_lossy(), &[], None, dir.path());
    let mut s = server.connect();
    // request 1 begun but not whole, then aborted: ended at once, never answered
    let records = get_request(1, "/iiif/a.tif/info.json");
    s.write_all(&records[..2].concat()).expect("send");
    s.write_all(&record(ABORT, 1, &[])).expect("abort");
    let mut head = [0u8; 16];
    s.read_exact(&mut head).expect("END_REQUEST");
    assert_eq!(
        (head[1], head[3], head[12]),
        (3, 1, 0),
        "END_REQUEST, complete"
    );
    let ok = answer(&mut s, 1, "/fcgi-bin/iipsrv.fcgi?FIF=a.tif&OBJ=Max-size");
    assert!(
        ok.ends_with("Max-size:600 400\r\n"),
        "the id is free again: {ok}"
    );
}

#[test]
fn connections_past_the_limit_wait_for_a_free_one() {
    let dir = tempdir();
    iipsrv_server::demo::write_demo(&dir.path().join("a.tif"), 600, 400).expect("image");
    let env = [("FCGI_MAX_CONNS", "2")];
    let server = Fcgi::start(&dir.path().to_string_lossy(), &env, None, dir.path());
    // the start-up probe's connection has closed; two idle ones take both places
    std::thread::sleep(Duration::from_millis(200));
    let (first, _second) = (server.connect(), server.connect());
    let mut third = server.connect();
    third
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    for r in get_request(1, "/fcgi-bin/iipsrv.fcgi?FIF=a.tif&OBJ=Max-size") {
        third.write_all(&r).expect("send");
    }
    let mut byte = [0u8; 1];
    assert!(third.read(&mut byte).is_err(), "served past the limit");
    drop(first);
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut head = [0u8; 8];
    third
        .read_exact(&mut head)
        .expect("served once a place is free");
    assert_eq!(head[1], STDOUT);
}

#[test]
fn a_slow_sender_is_closed_an_idle_kept_alive_connection_is_not() {
    let dir = tempdir();
    iipsrv_server::demo::write_demo(&dir.path().join("a.tif"), 600, 400).expect("image");
    let env = [("FCGI_READ_TIMEOUT", "1")];
    let server = Fcgi::start(&dir.path().to_string_lossy(), &env, None, dir.path());
    let mut idle = server.connect();
    let mut slow = server.connect();
    let records = get_request(1, "/fcgi-bin/iipsrv.fcgi?FIF=a.tif&OBJ=Max-size");
    slow.write_all(&records[..2].concat()).expect("send");
    let start = std::time::Instant::now();
    let mut got = Vec::new();
    let _ = slow.read_to_end(&mut got);
    assert!(got.is_empty(), "{got:?}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    std::thread::sleep(Duration::from_millis(1500));
    let ok = answer(&mut idle, 1, "/fcgi-bin/iipsrv.fcgi?FIF=a.tif&OBJ=Max-size");
    assert!(
        ok.ends_with("Max-size:600 400\r\n"),
        "idle connection kept: {ok}"
    );
    assert!(
        server.log().contains("in the middle of a request"),
        "{}",
        server.log()
    );
}
