//! The FastCGI front end, as the original `iipsrv.fcgi` runs: on `--bind HOST:PORT` or a
//! Unix socket path with `--backlog`, or on a listening socket inherited as file
//! descriptor 0 (spawn-fcgi, Apache mod_fcgid, lighttpd `bin-path`). Record framing is the
//! `tokio-fastcgi` crate. Connections are served concurrently; the requests multiplexed on
//! one connection are answered one after another, because the crate's writer panics when
//! two answers of one connection are written at once (found by `tests/fastcgi_protocol.rs`;
//! the web servers in use open one connection per concurrent request anyway).
//!
//! Parameters are read as the original reads them: the path from REQUEST_URI (else
//! SCRIPT_NAME + PATH_INFO), the query from QUERY_STRING, headers from HTTP_*, HTTPS.

use crate::error::reason_phrase;
use crate::front::dispatch::Dispatcher;
use crate::front::lifecycle::Stop;
use crate::handler::{Method, Request, Response};
use socket2::{Domain, SockAddr, Socket, Type};
use std::io;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio_fastcgi::{RequestResult, Requests};

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

/// Accepts FastCGI connections until `stop` is asked. On stop, each connection finishes
/// the request it is answering and closes instead of waiting for the next one.
pub async fn serve(dispatcher: Dispatcher, listener: Listener, stop: Stop) {
    let mut stopping = stop.clone();
    loop {
        let accepted = tokio::select! {
            a = accept(&listener, &dispatcher, &stop) => a,
            _ = stopping.requested() => return,
        };
        if let Err(e) = accepted {
            tracing::warn!("FastCGI accept failed: {e}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// Accepts one connection and starts serving it.
async fn accept(listener: &Listener, dispatcher: &Dispatcher, stop: &Stop) -> std::io::Result<()> {
    match listener {
        Listener::Tcp(l) => l.accept().await.map(|(s, _)| {
            let _ = s.set_nodelay(true);
            let (r, w) = s.into_split();
            spawn_connection(dispatcher.clone(), stop.clone(), r, w)
        }),
        Listener::Unix(l) => l.accept().await.map(|(s, _)| {
            let (r, w) = s.into_split();
            spawn_connection(dispatcher.clone(), stop.clone(), r, w)
        }),
    }
}

fn spawn_connection<R, W>(dispatcher: Dispatcher, mut stop: Stop, reader: R, writer: W)
where
    R: AsyncRead + Unpin + Send + Sync + 'static,
    W: AsyncWrite + Unpin + Send + Sync + 'static,
{
    let live = stop.live();
    tokio::spawn(async move {
        let _live = live;
        let mut requests = Requests::new(reader, writer, 255, 255);
        loop {
            let next = tokio::select! {
                n = requests.next() => n,
                _ = stop.requested() => break,
            };
            match next {
                Ok(Some(request)) => {
                    // One at a time per connection: tokio-fastcgi's writer panics when two
                    // answers of one connection are written concurrently.
                    let dispatcher = dispatcher.clone();
                    let result = request
                        .process(|req| async move {
                            let r = to_request(|n| req.get_str_param(n).map(str::to_string));
                            let head = r.method == Method::Head;
                            let response = dispatcher.answer(r).await;
                            let bytes = encode(&response, head);
                            let mut out = req.get_stdout();
                            match out.write(&bytes).await {
                                Ok(_) => RequestResult::Complete(0),
                                Err(e) => {
                                    tracing::debug!("FastCGI client went away: {e}");
                                    RequestResult::Complete(1)
                                }
                            }
                        })
                        .await;
                    if let Err(e) = result {
                        tracing::debug!("FastCGI request ended: {e}");
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!("FastCGI connection ended: {e}");
                    break;
                }
            }
        }
    });
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
    const HEADERS: [(&str, &str); 9] = [
        ("HTTP_HOST", "host"),
        ("HTTP_ACCEPT", "accept"),
        ("HTTP_IF_MODIFIED_SINCE", "if-modified-since"),
        ("HTTP_X_IIIF_ID", "x-iiif-id"),
        ("HTTP_ORIGIN", "origin"),
        ("HTTP_X_FORWARDED_PROTO", "x-forwarded-proto"),
        ("HTTP_X_FORWARDED_HOST", "x-forwarded-host"),
        ("HTTP_X_FORWARDED_PREFIX", "x-forwarded-prefix"),
        ("HTTP_AUTHORIZATION", "authorization"),
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
    }
}

/// The CGI response: a `Status:` line, headers, Content-Length, then the body (not for HEAD).
pub fn encode(r: &Response, head: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(r.body.len() + 256);
    out.extend_from_slice(
        format!("Status: {} {}\r\n", r.status, reason_phrase(r.status)).as_bytes(),
    );
    out.extend_from_slice(format!("Server: {}\r\n", crate::front::http::SERVER).as_bytes());
    for (n, v) in &r.headers {
        out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("content-length: {}\r\n\r\n", r.body.len()).as_bytes());
    if !head {
        out.extend_from_slice(&r.body);
    }
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
        let text = String::from_utf8(encode(&r, false)).expect("utf8");
        assert!(text.starts_with("Status: 404 Not Found\r\n"));
        assert!(text.ends_with("content-length: 4\r\n\r\nnope"));
        assert!(String::from_utf8(encode(&r, true))
            .expect("utf8")
            .ends_with("\r\n\r\n"));
    }
}
