//! The decoder fed record streams: a web server's request, multiplexing, aborts, refusals,
//! management records and each hostile form the connection must be closed for.

use super::record::{push_pair, push_record};
use super::*;

fn rec(kind: u8, id: u16, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    push_record(&mut out, kind, id, content);
    out
}

fn begin(id: u16, role: u16, keep: bool) -> Vec<u8> {
    let [r0, r1] = role.to_be_bytes();
    rec(
        kind::BEGIN_REQUEST,
        id,
        &[r0, r1, keep as u8, 0, 0, 0, 0, 0],
    )
}

fn pairs(list: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, v) in list {
        push_pair(&mut out, n.as_bytes(), v.as_bytes());
    }
    out
}

/// A whole GET of `uri` as request `id`.
fn get(id: u16, uri: &str) -> Vec<u8> {
    let p = pairs(&[("REQUEST_METHOD", "GET"), ("REQUEST_URI", uri)]);
    [
        begin(id, 1, true),
        rec(kind::PARAMS, id, &p),
        rec(kind::PARAMS, id, &[]),
        rec(kind::STDIN, id, &[]),
    ]
    .concat()
}

/// Feeds `input` in pieces of `piece` bytes; returns the events, or the first error.
fn feed(d: &mut Decoder, input: &[u8], piece: usize) -> Result<Vec<Event>, WireError> {
    let (mut buf, mut events) = (Vec::new(), Vec::new());
    for chunk in input.chunks(piece.max(1)) {
        buf.extend_from_slice(chunk);
        while let Step::Consumed(n, e) = d.step(&buf)? {
            buf.drain(..n);
            events.extend(e);
        }
    }
    Ok(events)
}

fn run(input: &[u8]) -> Result<Vec<Event>, WireError> {
    feed(&mut Decoder::new(Limits::default()), input, input.len())
}

#[test]
fn a_request_arrives_whole_whatever_the_pieces() {
    for piece in [1, 3, 8, 1000] {
        let mut d = Decoder::new(Limits::default());
        let events = feed(&mut d, &get(1, "/iiif/a.tif/info.json"), piece).expect("ok");
        let [Event::Request {
            id: 1,
            params,
            body,
            keep_conn: true,
        }] = &events[..]
        else {
            panic!("{events:?}");
        };
        assert_eq!(params.get("REQUEST_URI"), Some("/iiif/a.tif/info.json"));
        assert!(body.is_empty());
        assert_eq!((d.active(), d.arriving()), (1, false));
        d.finished(1);
        assert_eq!(d.active(), 0, "the id is free again");
    }
}

#[test]
fn interleaved_requests_are_handed_out_each_when_whole() {
    let (a, b) = (get(1, "/a"), get(2, "/b"));
    let mut d = Decoder::new(Limits::default());
    let mut input = Vec::new();
    // BEGIN 1, BEGIN 2, PARAMS 1, PARAMS 2, ... as a multiplexing client sends them
    let split = |r: &[u8]| {
        let mut v = Vec::new();
        let mut at = 0;
        while at < r.len() {
            let n = 8 + usize::from(u16::from_be_bytes([r[at + 4], r[at + 5]]));
            v.push(r[at..at + n].to_vec());
            at += n;
        }
        v
    };
    for (ra, rb) in split(&a).iter().zip(split(&b).iter()) {
        input.extend_from_slice(ra);
        input.extend_from_slice(rb);
    }
    let ids: Vec<u16> = feed(&mut d, &input, 7)
        .expect("ok")
        .iter()
        .map(|e| match e {
            Event::Request { id, .. } => *id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, [1, 2]);
}

#[test]
fn aborts_end_arriving_requests_and_hand_back_answering_ones() {
    let mut d = Decoder::new(Limits::default());
    assert_eq!(feed(&mut d, &begin(5, 1, true), 100), Ok(vec![]));
    assert!(d.arriving());
    let arriving = rec(kind::ABORT_REQUEST, 5, &[]);
    let events = feed(&mut d, &arriving, 100).expect("ok");
    assert!(
        matches!(&events[..], [Event::Reply { bytes, close: false }] if bytes[1] == kind::END_REQUEST)
    );
    assert_eq!(d.active(), 0);
    let events = feed(
        &mut d,
        &[get(6, "/x"), rec(kind::ABORT_REQUEST, 6, &[])].concat(),
        9,
    );
    assert!(matches!(
        &events.expect("ok")[..],
        [Event::Request { .. }, Event::Abort(6)]
    ));
    assert_eq!(
        run(&rec(kind::ABORT_REQUEST, 9, &[])),
        Ok(vec![]),
        "crossed: ignored"
    );
}

#[test]
fn other_roles_are_refused_and_their_records_dropped() {
    let refused = [
        begin(3, 2, false),
        rec(kind::PARAMS, 3, &pairs(&[("A", "b")])),
        rec(kind::PARAMS, 3, &[]),
        rec(kind::STDIN, 3, &[]),
    ]
    .concat();
    let mut d = Decoder::new(Limits::default());
    let events = feed(&mut d, &refused, 5).expect("ok");
    let [Event::Reply { bytes, close: true }] = &events[..] else {
        panic!("{events:?}");
    };
    assert_eq!(
        (bytes[1], bytes[8 + 4]),
        (kind::END_REQUEST, 3),
        "FCGI_UNKNOWN_ROLE"
    );
    assert_eq!(d.active(), 0);
}

#[test]
fn management_records_are_answered() {
    let ask = pairs(&[
        ("FCGI_MPXS_CONNS", ""),
        ("FCGI_MAX_REQS", ""),
        ("OTHER", ""),
    ]);
    let events = run(&rec(kind::GET_VALUES, 0, &ask)).expect("ok");
    let [Event::Reply {
        bytes,
        close: false,
    }] = &events[..]
    else {
        panic!("{events:?}");
    };
    assert_eq!(bytes[1], kind::GET_VALUES_RESULT);
    let got = Params::parse(bytes[8..].to_vec(), 10).expect("pairs");
    assert_eq!(got.get("FCGI_MPXS_CONNS"), Some("1"));
    assert_eq!(got.get("FCGI_MAX_REQS"), Some("8"));
    assert_eq!(got.len(), 2);
    let events = run(&rec(200, 0, &[])).expect("ok");
    assert!(
        matches!(&events[..], [Event::Reply { bytes, .. }] if bytes[1] == kind::UNKNOWN_TYPE && bytes[8] == 200)
    );
}

#[test]
fn hostile_streams_are_errors() {
    let huge_pair = [vec![0xff; 8], vec![b'a', b'b']].concat();
    let start = begin(1, 1, true);
    let with = |more: &[Vec<u8>]| [std::slice::from_ref(&start), more].concat().concat();
    let limits = Limits::default();
    let many_pairs = pairs(&vec![("a", ""); 1001]);
    let cases: Vec<(Vec<u8>, WireError)> = vec![
        (
            with(&[rec(kind::PARAMS, 1, &huge_pair), rec(kind::PARAMS, 1, &[])]),
            WireError::PairPastEnd,
        ),
        (
            with(&[rec(kind::PARAMS, 1, &many_pairs), rec(kind::PARAMS, 1, &[])]),
            WireError::TooManyPairs(limits.pairs),
        ),
        (
            with(std::slice::from_ref(&start)),
            WireError::DuplicateBegin(1),
        ),
        (
            rec(kind::STDIN, 4, &[]),
            WireError::UnknownRequest { kind: 5, id: 4 },
        ),
        (
            with(&[rec(kind::STDIN, 1, &[])]),
            WireError::Unexpected { kind: 5, id: 1 },
        ),
        (
            with(&[rec(kind::STDOUT, 1, b"x")]),
            WireError::Unexpected { kind: 6, id: 1 },
        ),
        (
            with(&[rec(77, 1, b"x")]),
            WireError::Unexpected { kind: 77, id: 1 },
        ),
        (rec(kind::BEGIN_REQUEST, 2, &[0, 1]), WireError::BadBegin(2)),
        ([2, 1, 0, 1, 0, 0, 0, 0].to_vec(), WireError::Version(2)),
    ];
    for (input, want) in cases {
        assert_eq!(run(&input), Err(want.clone()), "{want}");
    }
}

#[test]
fn limits_hold_across_records_and_requests() {
    let limits = Limits {
        params_bytes: 1000,
        requests: 2,
        stdin_bytes: 10,
        ..Limits::default()
    };
    let chunk = rec(kind::PARAMS, 1, &[b'x'; 600]);
    let d = &mut Decoder::new(limits);
    let two = [begin(1, 1, true), chunk.clone(), chunk].concat();
    assert_eq!(feed(d, &two, 50), Err(WireError::ParamsTooLarge(1000)));
    let d = &mut Decoder::new(limits);
    let spread = [
        begin(1, 1, true),
        begin(2, 1, true),
        rec(kind::PARAMS, 1, &[b'x'; 600]),
        rec(kind::PARAMS, 2, &[b'x'; 600]),
    ];
    assert_eq!(
        feed(d, &spread.concat(), 50),
        Err(WireError::ParamsTooLarge(1000))
    );
    let d = &mut Decoder::new(limits);
    let three = [begin(1, 1, true), begin(2, 1, true), begin(3, 1, true)];
    assert_eq!(
        feed(d, &three.concat(), 8),
        Err(WireError::TooManyRequests(2))
    );
    let body = [
        &get(1, "/")[..get(1, "/").len() - 8],
        &rec(kind::STDIN, 1, &[0; 11]),
    ]
    .concat();
    let d = &mut Decoder::new(limits);
    assert_eq!(feed(d, &body, 64), Err(WireError::StdinTooLarge(10)));
}

#[test]
fn padding_and_truncation_need_more_bytes_never_more_memory() {
    let mut padded = rec(kind::GET_VALUES, 0, &[]);
    padded[6] = 255;
    let d = &mut Decoder::new(Limits::default());
    assert_eq!(d.step(&padded), Ok(Step::NeedMore(8 + 255)));
    padded.extend_from_slice(&[0; 255]);
    assert!(matches!(d.step(&padded), Ok(Step::Consumed(263, Some(_)))));
    let claim = [1, kind::PARAMS, 0, 1, 0xff, 0xff, 0xff, 0];
    assert_eq!(d.step(&claim), Ok(Step::NeedMore(record::MAX_RECORD)));
    assert_eq!(d.step(&claim[..5]), Ok(Step::NeedMore(8)));
}

#[test]
fn a_posted_body_arrives_with_its_request() {
    let head = get(1, "/iiif/_auth/access/r");
    let input = [
        &head[..head.len() - 8],
        &rec(kind::STDIN, 1, b"user=ana&"),
        &rec(kind::STDIN, 1, b"password=x"),
        &rec(kind::STDIN, 1, &[]),
    ]
    .concat();
    for piece in [1, 7, 1000] {
        let events = feed(&mut Decoder::new(Limits::default()), &input, piece).expect("ok");
        let [Event::Request { body, .. }] = &events[..] else {
            panic!("{events:?}");
        };
        assert_eq!(body, b"user=ana&password=x");
    }
}
