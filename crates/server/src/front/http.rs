//! The HTTP/1.1 front end (tokio + hyper): turns hyper requests into handler [`Request`]s,
//! answers them through the [`Dispatcher`], and writes the answer.
//! Keep-alive is on; a client that takes longer than 30 s to send its headers is dropped.

use crate::error::Error;
use crate::front::dispatch::Dispatcher;
use crate::front::lifecycle::Stop;
use crate::handler::{Method, Request, Response};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::IpAddr;
use std::time::Duration;
use tokio::net::TcpListener;

/// Value of the Server header.
pub(crate) const SERVER: &str = concat!("iipsrv-rs/", env!("CARGO_PKG_VERSION"));

/// Accepts connections on `listener` until `stop` is asked, answering each request through
/// `dispatcher`. On stop, each connection finishes the request it is answering and closes.
pub async fn serve(dispatcher: Dispatcher, listener: TcpListener, mut stop: Stop) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.requested() => return,
        };
        let (stream, peer) = match accepted {
            Ok((s, a)) => (s, a.ip()),
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (dispatcher, mut stop) = (dispatcher.clone(), stop.clone());
        let live = stop.live();
        tokio::spawn(async move {
            let svc = service_fn(move |req| answer(dispatcher.clone(), req, peer));
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .keep_alive(true)
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            let ended = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.requested() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!("connection ended: {e}");
            }
            drop(live);
        });
    }
}

fn to_request(req: &hyper::Request<Incoming>, peer: Option<IpAddr>) -> Request {
    let headers = req
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let mut r = Request {
        method: Method::parse(req.method().as_str()),
        path: req.uri().path().to_string(),
        query: req.uri().query().unwrap_or("").to_string(),
        headers,
        https: false,
        budget: crate::handler::Budget::Full,
        peer,
        body: Bytes::new(),
    };
    if r.header("host").is_none() {
        if let Some(a) = req.uri().authority() {
            r.headers.push(("host".into(), a.to_string()));
        }
    }
    r
}

async fn answer(
    dispatcher: Dispatcher,
    req: hyper::Request<Incoming>,
    peer: IpAddr,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let mut request = to_request(&req, Some(peer));
    let head = request.method == Method::Head;
    if let Some(reason) = host_problem(&req) {
        let refused = dispatcher.refuse(&request, &Error::bad(reason));
        return Ok(to_hyper(refused, head));
    }
    if request.method == Method::Post && request.path.contains("/_auth/access/") {
        match form_body(req).await {
            Ok(body) => request.body = body,
            Err(e) => return Ok(to_hyper(dispatcher.refuse(&request, &e), head)),
        }
    }
    Ok(to_hyper(dispatcher.answer(request).await, head))
}

/// Most bytes of a POST body read (an access service's login form).
const MAX_FORM: usize = 16 * 1024;

/// The body of a POST to an access service, at most [`MAX_FORM`] bytes (other POSTs are
/// answered like GETs, their bodies unread).
async fn form_body(req: hyper::Request<Incoming>) -> Result<Bytes, Error> {
    use http_body_util::BodyExt;
    let limited = http_body_util::Limited::new(req.into_body(), MAX_FORM);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(_) => Err(Error::bad("the request body is too large or broken")),
    }
}

/// Why a request's Host headers make it invalid (RFC 9112 3.2: an HTTP/1.1 request has
/// exactly one Host header, an HTTP/1.0 one at most one), if they do.
fn host_problem(req: &hyper::Request<Incoming>) -> Option<&'static str> {
    match req.headers().get_all(hyper::header::HOST).iter().count() {
        0 if req.version() >= hyper::Version::HTTP_11 => {
            Some("an HTTP/1.1 request needs a Host header")
        }
        0 | 1 => None,
        _ => Some("more than one Host header"),
    }
}

fn to_hyper(r: Response, head: bool) -> hyper::Response<Full<Bytes>> {
    let len = r.body.len();
    let body = if head { Bytes::new() } else { r.body };
    let mut b = hyper::Response::builder()
        .status(r.status)
        .header("server", SERVER);
    for (n, v) in &r.headers {
        b = b.header(*n, v);
    }
    if head {
        b = b.header("content-length", len);
    }
    b.body(Full::new(body)).unwrap_or_else(|_| {
        let mut fallback =
            hyper::Response::new(Full::new(Bytes::from_static(b"bad response header")));
        *fallback.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}
