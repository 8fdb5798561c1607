//! The FastCGI 1.0 responder's side of one connection, without I/O: bytes in, typed
//! events out ([`Decoder`]), and the records an application sends ([`record`]).
//!
//! The decoder keeps each request's state from BEGIN_REQUEST to the end of its STDIN and
//! hands it out as an [`Event::Request`] once whole; the caller answers it (concurrently
//! with the connection's other requests) and calls [`Decoder::finished`] once its
//! END_REQUEST is written. Management records (GET_VALUES) and refusals (roles other than
//! RESPONDER, ABORT_REQUEST of a request still arriving) are answered by the decoder
//! itself as [`Event::Reply`] bytes.
//!
//! Limits are part of the API ([`Limits`]): parameter bytes held by a connection, pairs
//! per request, STDIN bytes, concurrent requests. Every length read from the wire is
//! checked against what is left before anything is allocated from it, and a record
//! buffer never needs more than [`record::MAX_RECORD`] bytes. Anything outside the
//! protocol or the limits is a [`WireError`]: the caller closes that connection.
//!
//! One deviation from the specification (section 3.3), on purpose: records for a request
//! id that is not active are ignored there; here only ABORT_REQUEST (which may cross the
//! answer) and the records of a refused request are, and anything else for an unknown id
//! closes the connection. Web servers never send those, so they only come from a client
//! that is broken or hostile.
//!
//! Not here: sockets, tasks, timeouts and the CGI meaning of the parameters (the server's
//! FastCGI front end), roles other than RESPONDER (refused).

pub mod record;

use record::{kind, Ending, Header, Params};
use std::collections::HashMap;

/// The bounds one connection is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most PARAMS bytes a connection holds while its requests arrive: one request's
    /// parameters, or those of its multiplexed requests together.
    pub params_bytes: usize,
    /// The most name-value pairs of one request (or one GET_VALUES).
    pub pairs: usize,
    /// The most STDIN bytes of one request (its body: only the access service's form
    /// posts one).
    pub stdin_bytes: usize,
    /// The most requests active at once on one connection (FCGI_MAX_REQS).
    pub requests: usize,
    /// The most connections served at once (FCGI_MAX_CONNS); enforced by the caller,
    /// advertised here.
    pub connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            params_bytes: 64 * 1024,
            pairs: 1000,
            stdin_bytes: 64 * 1024,
            requests: 8,
            connections: 512,
        }
    }
}

/// Why a connection is closed: the peer broke the protocol or went past a limit. Every
/// variant is the client's fault; the text is one line for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A record of a protocol version other than 1.
    #[error("record of unknown FastCGI version {0}")]
    Version(u8),
    /// A name-value length claims more bytes than the parameters hold.
    #[error("name-value pair longer than the parameters sent")]
    PairPastEnd,
    /// More pairs than [`Limits::pairs`].
    #[error("more than {0} name-value pairs")]
    TooManyPairs(usize),
    /// More parameter bytes than [`Limits::params_bytes`].
    #[error("more than {0} bytes of parameters")]
    ParamsTooLarge(usize),
    /// More STDIN bytes than [`Limits::stdin_bytes`].
    #[error("more than {0} bytes of request body")]
    StdinTooLarge(usize),
    /// More active requests than [`Limits::requests`].
    #[error("more than {0} concurrent requests on one connection")]
    TooManyRequests(usize),
    /// A BEGIN_REQUEST whose body is not eight bytes, or for request id 0.
    #[error("malformed BEGIN_REQUEST for request {0}")]
    BadBegin(u16),
    /// A BEGIN_REQUEST for a request that is still active.
    #[error("second BEGIN_REQUEST for active request {0}")]
    DuplicateBegin(u16),
    /// A record for a request id that is not active.
    #[error("record of type {kind} for unknown request {id}")]
    UnknownRequest {
        /// The record type.
        kind: u8,
        /// The request id.
        id: u16,
    },
    /// A record that has no place in its request's state (STDIN before the parameters
    /// ended, PARAMS after, a type only applications send, a type that does not exist).
    #[error("record of type {kind} out of place for request {id}")]
    Unexpected {
        /// The record type.
        kind: u8,
        /// The request id.
        id: u16,
    },
}

/// What one record meant to the caller.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A request whose parameters and input are complete: answer it.
    Request {
        /// Its id on this connection.
        id: u16,
        /// Its parameters.
        params: Params,
        /// Its body (STDIN), at most [`Limits::stdin_bytes`].
        body: Vec<u8>,
        /// False when the connection is to be closed after its answer.
        keep_conn: bool,
    },
    /// The web server cancelled request `id`, handed out before: stop answering it,
    /// write its END_REQUEST and call [`Decoder::finished`].
    Abort(u16),
    /// Bytes to write back now (management answers, refusals).
    Reply {
        /// Whole records.
        bytes: Vec<u8>,
        /// True when the connection is to be closed after them.
        close: bool,
    },
}

/// The result of one [`Decoder::step`].
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// The next record is not complete: at least this many bytes (counted from the start
    /// of the input given) are needed.
    NeedMore(usize),
    /// A record of this many bytes was consumed, meaning the event (if any).
    Consumed(usize, Option<Event>),
}

/// Where one active request is.
#[derive(Debug)]
enum Slot {
    /// Its PARAMS stream is arriving.
    Params { data: Vec<u8>, keep_conn: bool },
    /// Its STDIN stream is arriving (`body` so far).
    Stdin {
        params: Params,
        held: usize,
        body: Vec<u8>,
        keep_conn: bool,
    },
    /// Handed out; its answer is being made.
    Answering,
    /// Refused at BEGIN_REQUEST; its remaining records are ignored.
    Refused,
}

/// The protocol state of one connection.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    slots: HashMap<u16, Slot>,
    /// Parameter bytes held by requests still arriving.
    held: usize,
}

impl Decoder {
    /// A fresh connection held to `limits`.
    pub fn new(limits: Limits) -> Decoder {
        Decoder {
            limits,
            slots: HashMap::new(),
            held: 0,
        }
    }

    /// Decodes the record at the start of `input`.
    pub fn step(&mut self, input: &[u8]) -> Result<Step, WireError> {
        let Some(header) = Header::parse(input)? else {
            return Ok(Step::NeedMore(record::HEADER_LEN));
        };
        let len = header.record_len();
        let Some(content) = input.get(record::HEADER_LEN..record::HEADER_LEN + header.content)
        else {
            return Ok(Step::NeedMore(len));
        };
        if input.len() < len {
            return Ok(Step::NeedMore(len));
        }
        let event = self.record(header, content)?;
        Ok(Step::Consumed(len, event))
    }

    /// Marks request `id` answered (its END_REQUEST written): its id may be used again.
    pub fn finished(&mut self, id: u16) {
        if matches!(self.slots.get(&id), Some(Slot::Answering)) {
            self.slots.remove(&id);
        }
    }

    /// Requests active on this connection.
    pub fn active(&self) -> usize {
        self.slots.len()
    }

    /// True while some request's parameters or input are still arriving (the caller bounds
    /// how long it waits for them).
    pub fn arriving(&self) -> bool {
        self.slots
            .values()
            .any(|s| matches!(s, Slot::Params { .. } | Slot::Stdin { .. }))
    }

    /// Acts on one whole record.
    fn record(&mut self, h: Header, content: &[u8]) -> Result<Option<Event>, WireError> {
        match (h.id, h.kind) {
            (0, kind::GET_VALUES) => self.get_values(content).map(Some),
            (0, other) => Ok(Some(Event::Reply {
                bytes: record::unknown_type(other),
                close: false,
            })),
            (id, kind::BEGIN_REQUEST) => self.begin(id, content),
            (id, k @ (kind::PARAMS | kind::STDIN | kind::DATA)) if self.refused(id) => {
                if k == kind::STDIN && content.is_empty() {
                    self.slots.remove(&id);
                }
                Ok(None)
            }
            (id, kind::ABORT_REQUEST) => Ok(self.abort(id)),
            (id, kind::PARAMS) => self.params(id, content),
            (id, kind::STDIN) => self.stdin(id, content),
            (id, kind) if self.slots.contains_key(&id) => Err(WireError::Unexpected { kind, id }),
            (id, kind) => Err(WireError::UnknownRequest { kind, id }),
        }
    }

    /// BEGIN_REQUEST: a new request, refused politely unless its role is RESPONDER.
    fn begin(&mut self, id: u16, body: &[u8]) -> Result<Option<Event>, WireError> {
        let &[r0, r1, flags, ..] = body else {
            return Err(WireError::BadBegin(id));
        };
        if body.len() != 8 {
            return Err(WireError::BadBegin(id));
        }
        match self.slots.get(&id) {
            Some(Slot::Refused) | None => {}
            Some(_) => return Err(WireError::DuplicateBegin(id)),
        }
        if self.slots.len() >= self.limits.requests && !self.slots.contains_key(&id) {
            return Err(WireError::TooManyRequests(self.limits.requests));
        }
        let keep_conn = flags & 1 == 1;
        const RESPONDER: u16 = 1;
        if u16::from_be_bytes([r0, r1]) != RESPONDER {
            self.slots.insert(id, Slot::Refused);
            let mut bytes = Vec::with_capacity(16);
            record::push_end(&mut bytes, id, 0, Ending::UnknownRole);
            let close = !keep_conn;
            return Ok(Some(Event::Reply { bytes, close }));
        }
        let data = Vec::new();
        self.slots.insert(id, Slot::Params { data, keep_conn });
        Ok(None)
    }

    /// ABORT_REQUEST: a request still arriving ends here; one handed out is the caller's
    /// to cancel; any other id is ignored (the abort crossed the answer).
    fn abort(&mut self, id: u16) -> Option<Event> {
        match self.slots.get(&id)? {
            Slot::Answering => Some(Event::Abort(id)),
            Slot::Refused => {
                self.slots.remove(&id);
                None
            }
            Slot::Params { .. } | Slot::Stdin { .. } => {
                self.release(id);
                let mut bytes = Vec::with_capacity(16);
                record::push_end(&mut bytes, id, 0, Ending::Complete);
                Some(Event::Reply {
                    bytes,
                    close: false,
                })
            }
        }
    }

    /// Removes request `id`, giving back the parameter bytes it held.
    fn release(&mut self, id: u16) {
        match self.slots.remove(&id) {
            Some(Slot::Params { data, .. }) => self.held -= data.len(),
            Some(Slot::Stdin { held, .. }) => self.held -= held,
            _ => {}
        }
    }

    /// PARAMS: more of a request's parameters, or (empty) their end.
    fn params(&mut self, id: u16, content: &[u8]) -> Result<Option<Event>, WireError> {
        let limits = self.limits;
        let slot = slot(&mut self.slots, id, kind::PARAMS)?;
        let Slot::Params { data, keep_conn } = slot else {
            return Err(WireError::Unexpected {
                kind: kind::PARAMS,
                id,
            });
        };
        if !content.is_empty() {
            if self.held + content.len() > limits.params_bytes {
                return Err(WireError::ParamsTooLarge(limits.params_bytes));
            }
            data.extend_from_slice(content);
            self.held += content.len();
            return Ok(None);
        }
        let (held, keep_conn) = (data.len(), *keep_conn);
        let params = Params::parse(std::mem::take(data), limits.pairs)?;
        *slot = Slot::Stdin {
            params,
            held,
            body: Vec::new(),
            keep_conn,
        };
        Ok(None)
    }

    /// STDIN: body bytes (kept up to the limit), or (empty) the request's end: then it is
    /// handed out.
    fn stdin(&mut self, id: u16, content: &[u8]) -> Result<Option<Event>, WireError> {
        let limit = self.limits.stdin_bytes;
        let slot = slot(&mut self.slots, id, kind::STDIN)?;
        let Slot::Stdin { body, .. } = slot else {
            return Err(WireError::Unexpected {
                kind: kind::STDIN,
                id,
            });
        };
        if !content.is_empty() {
            if body.len() + content.len() > limit {
                return Err(WireError::StdinTooLarge(limit));
            }
            body.extend_from_slice(content);
            return Ok(None);
        }
        let Slot::Stdin {
            params,
            held,
            body,
            keep_conn,
        } = std::mem::replace(slot, Slot::Answering)
        else {
            return Ok(None);
        };
        self.held -= held;
        Ok(Some(Event::Request {
            id,
            params,
            body,
            keep_conn,
        }))
    }

    /// True when request `id` was refused at BEGIN_REQUEST and its records still come.
    fn refused(&self, id: u16) -> bool {
        matches!(self.slots.get(&id), Some(Slot::Refused))
    }

    /// GET_VALUES: the limits asked for, each once, as GET_VALUES_RESULT.
    fn get_values(&self, content: &[u8]) -> Result<Event, WireError> {
        let asked = Params::parse(content.to_vec(), self.limits.pairs)?;
        let known = [
            ("FCGI_MAX_CONNS", self.limits.connections),
            ("FCGI_MAX_REQS", self.limits.requests),
            ("FCGI_MPXS_CONNS", 1),
        ];
        let mut pairs = Vec::new();
        for (name, value) in known {
            if asked.iter().any(|(n, _)| n == name.as_bytes()) {
                record::push_pair(&mut pairs, name.as_bytes(), value.to_string().as_bytes());
            }
        }
        let mut bytes = Vec::with_capacity(pairs.len() + record::HEADER_LEN);
        record::push_record(&mut bytes, kind::GET_VALUES_RESULT, 0, &pairs);
        Ok(Event::Reply {
            bytes,
            close: false,
        })
    }
}

/// The state of active request `id` in `slots`, for a stream record of `kind`.
fn slot(slots: &mut HashMap<u16, Slot>, id: u16, kind: u8) -> Result<&mut Slot, WireError> {
    slots
        .get_mut(&id)
        .ok_or(WireError::UnknownRequest { kind, id })
}

#[cfg(test)]
mod tests;
