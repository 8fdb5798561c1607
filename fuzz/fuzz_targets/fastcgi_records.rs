//! FastCGI record streams, as a web server or a hostile client sends them: the decoder fed
//! the bytes in pieces never panics, never asks for more than one record's bytes, never
//! consumes more than it was given, and holds no more parameter bytes than its limit (run
//! with a low -malloc_limit_mb: a length taken on trust would allocate past it).
#![no_main]

use iipsrv_core::fastcgi::record::MAX_RECORD;
use iipsrv_core::fastcgi::{Decoder, Event, Limits, Step};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&piece, stream)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        params_bytes: 4096,
        pairs: 64,
        stdin_bytes: 4096,
        requests: 4,
        connections: 2,
    };
    let mut decoder = Decoder::new(limits);
    let mut buf = Vec::new();
    for chunk in stream.chunks(usize::from(piece).max(1)) {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.step(&buf) {
                Ok(Step::NeedMore(n)) => {
                    assert!(n > buf.len() && n <= MAX_RECORD, "{n} for {}", buf.len());
                    break;
                }
                Ok(Step::Consumed(n, event)) => {
                    assert!(n > 0 && n <= buf.len());
                    buf.drain(..n);
                    answer(&mut decoder, event, piece);
                }
                Err(_) => return,
            }
        }
        assert!(decoder.active() <= limits.requests);
    }
});

/// Acts as the front end would: requests are answered (now, or never when `piece` is
/// odd, to keep ids busy), aborts of answered requests end them.
fn answer(decoder: &mut Decoder, event: Option<Event>, piece: u8) {
    match event {
        Some(Event::Request { id, params, .. }) => {
            assert!(params.len() <= 64);
            if piece % 2 == 0 {
                decoder.finished(id);
            }
        }
        Some(Event::Abort(id)) => decoder.finished(id),
        Some(Event::Reply { bytes, .. }) => assert!(bytes.len() <= MAX_RECORD),
        None => {}
    }
}
