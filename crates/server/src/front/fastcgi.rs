//! The FastCGI front end, as the original `iipsrv.fcgi` runs: on `--bind HOST:PORT` or a
//! Unix socket path with `--backlog`, or on a listening socket inherited as file
//! descriptor 0 (spawn-fcgi, Apache mod_fcgid, lighttpd `bin-path`).
//!
//! The records are read and written by `iipsrv_core::fastcgi` (bounded by its `Limits`);
//! this module drives it over a socket. Each connection is one task that reads records,
//! starts every whole request as a task of its own (so the requests multiplexed on one
//! connection are answered concurrently, and FCGI_MPXS_CONNS is 1) and is the only writer
//! of its socket, writing each answer whole when it is ready. ABORT_REQUEST cancels a
//! request that has not been answered. At most `Limits::connections` connections are
//! served at once; more wait in the listen backlog. A connection that breaks the protocol
//! or a limit is closed with a log line and costs nothing else.
//!
//! Parameters are read as the original reads them: the path from REQUEST_URI (else
//! SCRIPT_NAME + PATH_INFO), the query from QUERY_STRING, headers from HTTP_*, HTTPS.

use crate::error::reason_phrase;
use crate::front::dispatch::Dispatcher;
use crate::front::lifecycle::{Live, Stop};
use crate::handler::{Method, Request, Response};
use iipsrv_core::fastcgi::{record, Decoder, Event, Limits, Step};
use socket2::{Domain, SockAddr, Socket, Type};
use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{AbortHandle, JoinSet};

/// A listening socket for FastCGI connections.
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// Unix domain socket.
    Unix(UnixListener),
}

/// Binds `spec` — `HOST:PORT`, or a path (containing `/`) for a Unix socket — with the
/// given listen backlog.
pub fn bind(spec: &str, backlog: i32) -> io::Result<Listener> {
    if spec.contains('/') {
        let _ = std::fs::remove_file(spec);
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        socket.bind(&SockAddr::unix(spec)?)?;
        socket.listen(backlog)?;
        socket.set_nonblocking(true)?;
        return Ok(Listener::Unix(UnixListener::from_std(socket.into())?));
    }
    let addr = std::net::ToSocketAddrs::to_socket_addrs(spec)?
        .next()
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot resolve {spec}"),
            )
        })?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    socket.set_nonblocking(true)?;
    Ok(Listener::Tcp(TcpListener::from_std(socket.into())?))
}

/// The listening socket on standard input, when the process was started by a FastCGI
/// process manager; `None` when standard input is anything else.
pub fn inherited() -> Option<Listener> {
    let stdin = io::stdin();
    let sock = socket2::SockRef::from(&stdin);
    if !sock.is_listener().unwrap_or(false) {
        return None;
    }
    let unix = sock.domain().ok() == Some(Domain::UNIX);
    let fd = std::os::fd::AsFd::as_fd(&stdin).try_clone_to_owned().ok()?;
    let socket = Socket::from(fd);
    socket.set_nonblocking(true).ok()?;
    if unix {
        UnixListener::from_std(socket.into())
            .ok()
            .map(Listener::Unix)
    } else {
        TcpListener::from_std(socket.into()).ok().map(Listener::Tcp)
    }
}

impl Listener {
    /// A printable local address.
    pub fn describe(&self) -> String {
        match self {
            Listener::Tcp(l) => l.local_addr().map_or("tcp".into(), |a| a.to_string()),
            Listener::Unix(l) => l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
                .unwrap_or_else(|| "unix socket".into()),
        }
    }
}

/// Bytes read from a socket at a time (a record may need up to `record::MAX_RECORD`).
const READ_CHUNK: usize = 16 * 1024;

/// Accepts FastCGI connections until `stop` is asked, serving at most
/// `limits.connections` at once; a connection waiting longer than `patience` for the rest
/// of a request it began is closed. On stop, each connection finishes the requests it is
/// answering and closes instead of reading more.
pub async fn serve(
    dispatcher: Dispatcher,
    listener: Listener,
    limits: Limits,
    patience: Duration,
    stop: Stop,
) {
    let permits = Arc::new(Semaphore::new(limits.connections.max(1)));
    let mut stopping = stop.clone();
    loop {
        if permits.available_permits() == 0 {
            tracing::warn!(
                "FastCGI: {} connections open, the most allowed; new ones wait",
                limits.connections
            );
        }
        let accepted = tokio::select! {
            a = accept(&listener, &permits) => a,
            _ = stopping.requested() => return,
        };
        match accepted {
            Ok((permit, socket)) => socket.spawn(
                Connection::new(&dispatcher, limits, patience, permit),
                &stop,
            ),
            Err(e) => {
                tracing::warn!("FastCGI accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// An accepted socket, split into its reading and writing halves.
enum Accepted {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

impl Accepted {
    /// Serves `connection` on this socket in a task of its own.
    fn spawn(self, connection: Connection, stop: &Stop) {
        let (stop, live) = (stop.clone(), stop.live());
        match self {
            Accepted::Tcp(s) => {
                let _ = s.set_nodelay(true);
                let (r, w) = s.into_split();
                tokio::spawn(async move { connection.run(r, w, stop, live).await });
            }
            Accepted::Unix(s) => {
                let (r, w) = s.into_split();
                tokio::spawn(async move { connection.run(r, w, stop, live).await });
            }
        }
    }
}

/// Waits for a connection permit, then accepts one connection.
async fn accept(
    listener: &Listener,
    permits: &Arc<Semaphore>,
) -> io::Result<(OwnedSemaphorePermit, Accepted)> {
    let permit = permits
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| io::Error::other("connection permits closed"))?;
    let socket = match listener {
        Listener::Tcp(l) => Accepted::Tcp(l.accept().await?.0),
        Listener::Unix(l) => Accepted::Unix(l.accept().await?.0),
    };
    Ok((permit, socket))
}

/// Why a connection ends early; the reason is logged where it is known.
struct Closed;

/// What `JoinSet::join_next_with_id` gives back for an answering task.
type Done = Option<Result<(tokio::task::Id, (u16, Vec<u8>)), tokio::task::JoinError>>;

/// A request being answered.
struct Running {
    task: AbortHandle,
    keep_conn: bool,
}

/// The state of one connection: the record decoder, the requests being answered and
/// their tasks (each yields its id and its answer as whole records).
struct Connection {
    decoder: Decoder,
    dispatcher: Dispatcher,
    tasks: JoinSet<(u16, Vec<u8>)>,
    running: HashMap<u16, Running>,
    /// The longest wait for the next bytes of a request that has begun.
    patience: Duration,
    _permit: OwnedSemaphorePermit,
}

impl Connection {
    /// A connection answering through `dispatcher`, held to `limits` and `patience`,
    /// holding `permit` (its place among the connections served) until it ends.
    fn new(
        dispatcher: &Dispatcher,
        limits: Limits,
        patience: Duration,
        permit: OwnedSemaphorePermit,
    ) -> Connection {
        Connection {
            patience,
            decoder: Decoder::new(limits),
            dispatcher: dispatcher.clone(),
            tasks: JoinSet::new(),
            running: HashMap::new(),
            _permit: permit,
        }
    }

    /// Reads records and writes answers until the peer closes, breaks the protocol, or
    /// `stop` is asked and the requests in flight are answered.
    async fn run<R, W>(mut self, mut reader: R, mut writer: W, mut stop: Stop, _live: Live)
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut buf = Vec::with_capacity(READ_CHUNK);
        let mut stopping = false;
        loop {
            let Ok(need) = self.decode(&mut buf, &mut writer).await else {
                return;
            };
            if stopping && self.running.is_empty() {
                return;
            }
            let want = need.max(READ_CHUNK);
            if buf.capacity() < want {
                buf.reserve_exact(want - buf.len());
            }
            let arriving = !buf.is_empty() || self.decoder.arriving();
            let patience = arriving.then_some(self.patience);
            let step = tokio::select! {
                done = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    self.finish(done, &mut writer).await
                }
                read = read_within(&mut reader, &mut buf, patience), if !stopping => {
                    received(read, &buf)
                }
                _ = stop.requested(), if !stopping => {
                    stopping = true;
                    Ok(())
                }
            };
            if step.is_err() {
                return;
            }
        }
    }

    /// Acts on every whole record at the start of `buf` and removes them; returns how many
    /// bytes the next record needs.
    async fn decode<W: AsyncWrite + Unpin>(
        &mut self,
        buf: &mut Vec<u8>,
        writer: &mut W,
    ) -> Result<usize, Closed> {
        let mut at = 0;
        let need = loop {
            match self.decoder.step(&buf[at..]) {
                Ok(Step::NeedMore(n)) => break n,
                Ok(Step::Consumed(n, event)) => {
                    at += n;
                    if let Some(event) = event {
                        self.event(event, writer).await?;
                    }
                }
                Err(e) => {
                    tracing::warn!("FastCGI connection closed: {e}");
                    return Err(Closed);
                }
            }
        };
        buf.drain(..at);
        Ok(need)
    }

    /// Acts on one decoded event.
    async fn event<W: AsyncWrite + Unpin>(
        &mut self,
        event: Event,
        writer: &mut W,
    ) -> Result<(), Closed> {
        match event {
            Event::Request {
                id,
                params,
                body,
                keep_conn,
            } => {
                let mut request = to_request(|n| params.get(n).map(str::to_string));
                request.body = body.into();
                self.start(id, request, keep_conn);
                Ok(())
            }
            Event::Abort(id) => match self.running.remove(&id) {
                Some(running) => {
                    running.task.abort();
                    let mut end = Vec::with_capacity(16);
                    record::push_end(&mut end, id, 0, record::Ending::Complete);
                    self.ended(id, running.keep_conn, &end, writer).await
                }
                None => Ok(()),
            },
            Event::Reply { bytes, close } => {
                write(writer, &bytes).await?;
                if close {
                    return Err(Closed);
                }
                Ok(())
            }
        }
    }

    /// Starts answering request `id` in a task of its own.
    fn start(&mut self, id: u16, request: Request, keep_conn: bool) {
        let head = request.method == Method::Head;
        let dispatcher = self.dispatcher.clone();
        let task = self.tasks.spawn(async move {
            let response = dispatcher.answer(request).await;
            let body = if head { &[][..] } else { &response.body[..] };
            (id, record::answer(id, &[&cgi_head(&response), body]))
        });
        self.running.insert(id, Running { task, keep_conn });
    }

    /// Writes the answer of a finished task (a 500 when it failed).
    async fn finish<W: AsyncWrite + Unpin>(
        &mut self,
        done: Done,
        writer: &mut W,
    ) -> Result<(), Closed> {
        let (id, answer) = match done {
            Some(Ok((_, (id, answer)))) => (id, answer),
            Some(Err(e)) if e.is_panic() => {
                tracing::error!("FastCGI request failed: {e}");
                let Some(id) = self.running.iter().find(|(_, r)| r.task.id() == e.id()) else {
                    return Ok(());
                };
                let id = *id.0;
                (
                    id,
                    record::answer(id, &[b"Status: 500 Internal Server Error\r\n\r\n"]),
                )
            }
            _ => return Ok(()),
        };
        match self.running.remove(&id) {
            Some(running) => self.ended(id, running.keep_conn, &answer, writer).await,
            None => Ok(()),
        }
    }

    /// Writes the last records of request `id` and frees its id; closes the connection
    /// when the web server asked for that.
    async fn ended<W: AsyncWrite + Unpin>(
        &mut self,
        id: u16,
        keep_conn: bool,
        records: &[u8],
        writer: &mut W,
    ) -> Result<(), Closed> {
        write(writer, records).await?;
        self.decoder.finished(id);
        match keep_conn {
            true => Ok(()),
            false => Err(Closed),
        }
    }
}

/// What a read means for the connection: more bytes, or its end (logged when it cut a
/// record short).
fn received(read: io::Result<usize>, buf: &[u8]) -> Result<(), Closed> {
    match read {
        Ok(0) if !buf.is_empty() => {
            tracing::warn!("FastCGI connection closed in the middle of a record");
            Err(Closed)
        }
        Ok(0) => Err(Closed),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::TimedOut => {
            tracing::warn!("FastCGI connection closed: {e}");
            Err(Closed)
        }
        Err(e) => {
            tracing::debug!("FastCGI connection ended: {e}");
            Err(Closed)
        }
    }
}

/// Reads more bytes into `buf`, waiting at most `patience` when given (while a request
/// is arriving, or a record is cut).
async fn read_within<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    patience: Option<Duration>,
) -> io::Result<usize> {
    let Some(patience) = patience else {
        return reader.read_buf(buf).await;
    };
    match tokio::time::timeout(patience, reader.read_buf(buf)).await {
        Ok(read) => read,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no bytes for {patience:?} in the middle of a request"),
        )),
    }
}

/// Writes whole records.
async fn write<W: AsyncWrite + Unpin>(writer: &mut W, bytes: &[u8]) -> Result<(), Closed> {
    writer.write_all(bytes).await.map_err(|e| {
        tracing::debug!("FastCGI client went away: {e}");
        Closed
    })
}

/// Builds a handler request from FastCGI parameters (looked up by `param`).
pub(crate) fn to_request(param: impl Fn(&str) -> Option<String>) -> Request {
    let query = param("QUERY_STRING").unwrap_or_default();
    let path = match param("REQUEST_URI").filter(|u| !u.is_empty()) {
        Some(uri) => uri
            .split_once('?')
            .map_or(uri.clone(), |(p, _)| p.to_string()),
        None => format!(
            "{}{}",
            param("SCRIPT_NAME").unwrap_or_default(),
            param("PATH_INFO").unwrap_or_default()
        ),
    };
    const HEADERS: [(&str, &str); 12] = [
        ("HTTP_HOST", "host"),
        ("HTTP_ACCEPT", "accept"),
        ("HTTP_IF_MODIFIED_SINCE", "if-modified-since"),
        ("HTTP_X_IIIF_ID", "x-iiif-id"),
        ("HTTP_ORIGIN", "origin"),
        ("HTTP_X_FORWARDED_PROTO", "x-forwarded-proto"),
        ("HTTP_X_FORWARDED_HOST", "x-forwarded-host"),
        ("HTTP_X_FORWARDED_PREFIX", "x-forwarded-prefix"),
        ("HTTP_AUTHORIZATION", "authorization"),
        ("HTTP_COOKIE", "cookie"),
        // The web server's authenticated user, never the client's own header.
        ("REMOTE_USER", "x-remote-user"),
        ("HTTP_X_FORWARDED_FOR", "x-forwarded-for"),
    ];
    let https = param("HTTPS").is_some_and(|v| v.eq_ignore_ascii_case("on") || v == "1");
    let mut headers: Vec<(String, String)> = HEADERS
        .iter()
        .filter_map(|(p, h)| param(p).map(|v| (h.to_string(), v)))
        .collect();
    // Debian's nginx passes HTTP_HOST as $host, without the port: add SERVER_PORT back
    // unless it is the scheme's default.
    let default_port = if https { "443" } else { "80" };
    if let (Some((_, host)), Some(port)) = (
        headers.iter_mut().find(|(n, _)| n == "host"),
        param("SERVER_PORT"),
    ) {
        if !host.contains(':') && port != default_port && !port.is_empty() {
            host.push(':');
            host.push_str(&port);
        }
    }
    Request {
        method: Method::parse(&param("REQUEST_METHOD").unwrap_or_else(|| "GET".into())),
        path,
        query,
        headers,
        https,
        budget: crate::handler::Budget::Full,
        peer: param("REMOTE_ADDR").and_then(|a| a.parse().ok()),
        body: bytes::Bytes::new(),
    }
}

/// The CGI head of a response: a `Status:` line, headers, Content-Length and the blank
/// line (the body follows it, except for HEAD).
pub(crate) fn cgi_head(r: &Response) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(
        format!("Status: {} {}\r\n", r.status, reason_phrase(r.status)).as_bytes(),
    );
    out.extend_from_slice(format!("Server: {}\r\n", crate::front::http::SERVER).as_bytes());
    for (n, v) in &r.headers {
        out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("content-length: {}\r\n\r\n", r.body.len()).as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_map_like_the_original() {
        let params = [
            ("REQUEST_URI", "/iiif/a.tif/info.json?x=1"),
            ("QUERY_STRING", "x=1"),
            ("REQUEST_METHOD", "HEAD"),
            ("HTTP_HOST", "example.org"),
            ("SERVER_PORT", "443"),
            ("HTTPS", "on"),
        ];
        let r = to_request(|n| {
            params
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        });
        assert_eq!(
            (r.path.as_str(), r.query.as_str(), r.method),
            ("/iiif/a.tif/info.json", "x=1", Method::Head)
        );
        assert_eq!(r.header("host"), Some("example.org"));
        assert!(r.https);
        let cgi = [
            ("SCRIPT_NAME", "/fcgi-bin/iipsrv.fcgi"),
            ("QUERY_STRING", "FIF=a&OBJ=IIP,1.0"),
            ("HTTP_HOST", "127.0.0.1"),
            ("SERVER_PORT", "8096"),
        ];
        let r = to_request(|n| {
            cgi.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        });
        assert_eq!(
            (r.path.as_str(), r.method),
            ("/fcgi-bin/iipsrv.fcgi", Method::Get)
        );
        assert_eq!(
            r.header("host"),
            Some("127.0.0.1:8096"),
            "port restored for nginx"
        );
    }

    #[test]
    fn cgi_response_framing() {
        let r = Response::from_error(&crate::error::Error::NotFound("nope".into()));
        let text = String::from_utf8(cgi_head(&r)).expect("utf8");
        assert!(text.starts_with("Status: 404 Not Found\r\n"));
        assert!(text.ends_with("content-length: 4\r\n\r\n"));
    }
}
