//! FastCGI 1.0 records as bytes: the record header, name-value pairs and the encoders of
//! what an application sends (STDOUT streams, END_REQUEST, GET_VALUES_RESULT,
//! UNKNOWN_TYPE). Every length read from the wire is checked against the bytes that are
//! actually there before anything is sized from it.
//!
//! Follows the FastCGI Specification 1.0 (Open Market, 1996), sections 3.3 (records),
//! 3.4 (name-value pairs) and 5 (application record types).

use super::WireError;

/// The only protocol version there is (`FCGI_VERSION_1`).
pub const VERSION: u8 = 1;
/// Bytes of a record header.
pub const HEADER_LEN: usize = 8;
/// The most content one record carries.
pub const MAX_CONTENT: usize = u16::MAX as usize;
/// The longest record: header, the most content, the most padding.
pub const MAX_RECORD: usize = HEADER_LEN + MAX_CONTENT + u8::MAX as usize;
/// Content bytes per STDOUT record written: the most content that keeps records 8-byte
/// aligned without padding.
const CHUNK: usize = MAX_CONTENT & !7;

/// Record types (section 8 of the specification).
pub mod kind {
    /// Starts a request (web server → application).
    pub const BEGIN_REQUEST: u8 = 1;
    /// Cancels a request (web server → application).
    pub const ABORT_REQUEST: u8 = 2;
    /// Ends a request (application → web server).
    pub const END_REQUEST: u8 = 3;
    /// The request's name-value pairs, a stream (web server → application).
    pub const PARAMS: u8 = 4;
    /// The request body, a stream (web server → application).
    pub const STDIN: u8 = 5;
    /// The answer, a stream (application → web server).
    pub const STDOUT: u8 = 6;
    /// Error text, a stream (application → web server).
    pub const STDERR: u8 = 7;
    /// A filter's file data (web server → application; not for responders).
    pub const DATA: u8 = 8;
    /// Asks for the application's limits (management record).
    pub const GET_VALUES: u8 = 9;
    /// Answers GET_VALUES (management record).
    pub const GET_VALUES_RESULT: u8 = 10;
    /// Answers a management record of a type the application does not know.
    pub const UNKNOWN_TYPE: u8 = 11;
}

/// The protocol status of an END_REQUEST record (section 5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The request was answered (or aborted).
    Complete = 0,
    /// The role asked for is not one this application plays.
    UnknownRole = 3,
}

/// A parsed record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The record type (see [`kind`]).
    pub kind: u8,
    /// The request the record belongs to; 0 for management records.
    pub id: u16,
    /// Bytes of content that follow the header.
    pub content: usize,
    /// Bytes of padding after the content.
    pub padding: usize,
}

impl Header {
    /// Reads the header at the start of `input`; `None` when fewer than eight bytes came.
    pub fn parse(input: &[u8]) -> Result<Option<Header>, WireError> {
        let Some(h) = input.get(..HEADER_LEN) else {
            return Ok(None);
        };
        if h[0] != VERSION {
            return Err(WireError::Version(h[0]));
        }
        Ok(Some(Header {
            kind: h[1],
            id: u16::from_be_bytes([h[2], h[3]]),
            content: usize::from(u16::from_be_bytes([h[4], h[5]])),
            padding: usize::from(h[6]),
        }))
    }

    /// Bytes of the whole record, header and padding included.
    pub fn record_len(&self) -> usize {
        HEADER_LEN + self.content + self.padding
    }
}

/// The name-value pairs of one request, held as the bytes received with an index of where
/// each name and value lies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    data: Vec<u8>,
    /// Per pair: where its name starts, where its value starts (the name's end) and ends.
    index: Vec<[u32; 3]>,
}

impl Params {
    /// Indexes the pairs in `data`, refusing more than `max_pairs` pairs and any length that
    /// claims more bytes than are left.
    pub fn parse(data: Vec<u8>, max_pairs: usize) -> Result<Params, WireError> {
        let mut index = Vec::new();
        let mut at = 0;
        while at < data.len() {
            if index.len() == max_pairs {
                return Err(WireError::TooManyPairs(max_pairs));
            }
            let (name_len, after) = pair_length(&data, at)?;
            let (value_len, after) = pair_length(&data, after)?;
            let value_at = checked_end(&data, after, name_len)?;
            let end = checked_end(&data, value_at, value_len)?;
            index.push([after, value_at, end].map(|i| i as u32));
            at = end;
        }
        Ok(Params { data, index })
    }

    /// The value of the last pair called `name`, when it is valid UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(n, _)| *n == name.as_bytes())
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// The pairs in the order received.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&[u8], &[u8])> {
        self.index.iter().map(|&[n, v, e]| {
            let (n, v, e) = (n as usize, v as usize, e as usize);
            (&self.data[n..v], &self.data[v..e])
        })
    }

    /// How many pairs there are.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

/// One length of a pair at `at`: a byte below 128, else four bytes with the top bit set.
/// Returns the length and where the next field starts.
fn pair_length(data: &[u8], at: usize) -> Result<(usize, usize), WireError> {
    match data.get(at) {
        Some(&b) if b < 0x80 => Ok((usize::from(b), at + 1)),
        Some(_) => {
            let b = data.get(at..at + 4).ok_or(WireError::PairPastEnd)?;
            let len = u32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]]);
            Ok((len as usize, at + 4))
        }
        None => Err(WireError::PairPastEnd),
    }
}

/// `at + len` when that many bytes are left in `data`.
fn checked_end(data: &[u8], at: usize, len: usize) -> Result<usize, WireError> {
    match data.len().checked_sub(at) {
        Some(left) if len <= left => Ok(at + len),
        _ => Err(WireError::PairPastEnd),
    }
}

/// Appends the name-value pair `name`=`value` (both shorter than 2^31 bytes).
pub fn push_pair(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    for len in [name.len(), value.len()] {
        match u8::try_from(len) {
            Ok(b) if b < 0x80 => out.push(b),
            _ => out.extend_from_slice(&(len as u32 | 0x8000_0000).to_be_bytes()),
        }
    }
    out.extend_from_slice(name);
    out.extend_from_slice(value);
}

/// Appends one record of `kind` for request `id` carrying `content` (at most
/// [`MAX_CONTENT`] bytes), without padding.
pub fn push_record(out: &mut Vec<u8>, kind: u8, id: u16, content: &[u8]) {
    debug_assert!(content.len() <= MAX_CONTENT);
    let [i0, i1] = id.to_be_bytes();
    let [l0, l1] = (content.len() as u16).to_be_bytes();
    out.extend_from_slice(&[VERSION, kind, i0, i1, l0, l1, 0, 0]);
    out.extend_from_slice(content);
}

/// Appends the END_REQUEST record of request `id`.
pub fn push_end(out: &mut Vec<u8>, id: u16, app_status: u32, ending: Ending) {
    let mut body = [0u8; 8];
    body[..4].copy_from_slice(&app_status.to_be_bytes());
    body[4] = ending as u8;
    push_record(out, kind::END_REQUEST, id, &body);
}

/// The whole answer to request `id`: `parts` as one STDOUT stream (records of at most
/// 64 KiB, then the empty record closing the stream) and the END_REQUEST record.
pub fn answer(id: u16, parts: &[&[u8]]) -> Vec<u8> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(total + (total / CHUNK + 3) * HEADER_LEN + 8);
    let mut chunk: Vec<u8> = Vec::new();
    for part in parts {
        let mut rest = *part;
        while !rest.is_empty() {
            let take = (CHUNK - chunk.len()).min(rest.len());
            if chunk.is_empty() && take == CHUNK {
                push_record(&mut out, kind::STDOUT, id, &rest[..take]);
            } else {
                chunk.extend_from_slice(&rest[..take]);
            }
            rest = &rest[take..];
            if chunk.len() == CHUNK {
                push_record(&mut out, kind::STDOUT, id, &chunk);
                chunk.clear();
            }
        }
    }
    if !chunk.is_empty() {
        push_record(&mut out, kind::STDOUT, id, &chunk);
    }
    push_record(&mut out, kind::STDOUT, id, &[]);
    push_end(&mut out, id, 0, Ending::Complete);
    out
}

/// The UNKNOWN_TYPE record answering a management record of type `unknown`.
pub fn unknown_type(unknown: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    push_record(
        &mut out,
        kind::UNKNOWN_TYPE,
        0,
        &[unknown, 0, 0, 0, 0, 0, 0, 0],
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip_short_and_long_lengths() {
        let mut data = Vec::new();
        push_pair(&mut data, b"SHORT", b"v");
        let long = vec![b'x'; 300];
        push_pair(&mut data, b"LONG", &long);
        push_pair(&mut data, b"SHORT", b"w");
        let p = Params::parse(data, 10).expect("parse");
        assert_eq!(p.len(), 3);
        assert_eq!(p.get("SHORT"), Some("w"), "the last pair of a name wins");
        assert_eq!(p.get("LONG").map(str::len), Some(300));
        assert_eq!(p.get("NONE"), None);
    }

    #[test]
    fn lengths_past_the_end_are_refused_before_any_allocation() {
        let claim = vec![0xff; 8];
        assert_eq!(
            Params::parse([claim, vec![1, 2]].concat(), 10),
            Err(WireError::PairPastEnd)
        );
        assert_eq!(
            Params::parse(vec![0x80, 0], 10),
            Err(WireError::PairPastEnd)
        );
        assert_eq!(
            Params::parse(vec![3, 0, b'a'], 10),
            Err(WireError::PairPastEnd)
        );
        assert_eq!(Params::parse(vec![1], 10), Err(WireError::PairPastEnd));
        let mut many = Vec::new();
        for _ in 0..11 {
            push_pair(&mut many, b"a", b"");
        }
        assert_eq!(Params::parse(many, 10), Err(WireError::TooManyPairs(10)));
    }

    #[test]
    fn answers_are_whole_records_then_the_end() {
        let body = vec![7u8; CHUNK + 10];
        let out = answer(3, &[b"Status: 200 OK\r\n\r\n", &body]);
        let mut at = 0;
        let mut stdout = Vec::new();
        let mut kinds = Vec::new();
        while at < out.len() {
            let h = Header::parse(&out[at..]).expect("ok").expect("whole");
            assert_eq!(h.id, 3);
            kinds.push(h.kind);
            if h.kind == kind::STDOUT {
                stdout.extend_from_slice(&out[at + 8..at + 8 + h.content]);
            }
            at += h.record_len();
        }
        assert_eq!(
            kinds,
            [6, 6, 6, 3],
            "two full records, the empty one, the end"
        );
        assert_eq!(stdout.len(), 18 + body.len());
        assert!(stdout.starts_with(b"Status: 200 OK\r\n\r\n\x07"));
    }
}
