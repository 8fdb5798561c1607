//! What every front end does around the one handler: the quick attempt on the connection's
//! own thread (answers from memory and stored tiles of open images, no hand-off), admission
//! control for the rest (a bounded number of requests in flight, 503 + Retry-After beyond
//! it), running the handler on the blocking pool, the request log line and the metrics.

use crate::error::Error;
use crate::handler::{one_line, App, Budget, Quick, Request, Response};
use crate::telemetry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;

/// The shared state of a front end: the application and its admission permits.
#[derive(Clone)]
pub struct Dispatcher {
    app: Arc<App>,
    permits: Arc<Semaphore>,
}

impl Dispatcher {
    /// A dispatcher letting at most `max_in_flight` requests work at once.
    pub fn new(app: Arc<App>, max_in_flight: usize) -> Dispatcher {
        Dispatcher {
            app,
            permits: Arc::new(Semaphore::new(max_in_flight.max(1))),
        }
    }

    /// Answers one request: quickly when it can be, else on the worker pool (503 when that
    /// is saturated).
    pub async fn answer(&self, mut request: Request) -> Response {
        let start = Instant::now();
        let said = Said::of(&request, self.app.protocol_of(&request));
        request.budget = Budget::Quick;
        let quick = self.app.handle_quick(&request);
        request.budget = Budget::Full;
        let response = match quick {
            Quick::Answered(r) => r,
            Quick::NeedsWorker => self.answer_on_pool(request).await,
        };
        said.log(&response, start);
        response
    }

    /// Refuses a request that the front end found malformed before the handler, with the
    /// same log line and metrics as any answer.
    pub fn refuse(&self, request: &Request, error: &Error) -> Response {
        let response = Response::from_error(error);
        Said::of(request, self.app.protocol_of(request)).log(&response, Instant::now());
        response
    }

    /// Runs the handler on the blocking pool, or answers 503 when too many requests are in
    /// flight already. A request whose client goes away (its future dropped) before a
    /// worker takes it is skipped, so vanished clients cost no worker.
    async fn answer_on_pool(&self, request: Request) -> Response {
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            telemetry::rejected();
            return Response::from_error(&Error::Overloaded("server busy, retry later".into()));
        };
        let app = self.app.clone();
        let _in_flight = InFlight::enter();
        let abandoned = Arc::new(AtomicBool::new(false));
        let _watch = Abandon(abandoned.clone());
        let worker = tokio::task::spawn_blocking(move || {
            if abandoned.load(Ordering::Acquire) {
                return None;
            }
            crate::front::priority::render_thread();
            telemetry::working(1.0);
            let r = app.handle(&request);
            telemetry::working(-1.0);
            drop(permit);
            Some(r)
        });
        match worker.await {
            Ok(Some(r)) => r,
            Ok(None) => Response::from_error(&Error::Internal("request abandoned".into())),
            Err(e) => {
                tracing::error!("handler failed: {e}");
                Response::from_error(&Error::Internal("internal error".into()))
            }
        }
    }
}

/// What the request log line and the metrics say of a request: its method, path, query
/// (control characters escaped) and protocol.
struct Said {
    method: &'static str,
    path: String,
    query: String,
    protocol: &'static str,
}

impl Said {
    fn of(request: &Request, protocol: &'static str) -> Said {
        Said {
            method: request.method.as_str(),
            path: one_line(&request.path).into_owned(),
            query: one_line(&request.query).into_owned(),
            protocol,
        }
    }

    /// Writes the log line and counts the answer in the metrics.
    fn log(&self, response: &Response, start: Instant) {
        let elapsed = start.elapsed().as_secs_f64();
        telemetry::request(self.protocol, response.status, response.body.len(), elapsed);
        tracing::info!(
            "{} {}{}{} {} {}B {:.2}ms",
            self.method,
            self.path,
            if self.query.is_empty() { "" } else { "?" },
            self.query,
            response.status,
            response.body.len(),
            elapsed * 1000.0
        );
    }
}

/// Counts a request in `iipsrv_requests_in_flight` for as long as it lives, including when
/// its future is dropped because the client went away.
struct InFlight;

impl InFlight {
    fn enter() -> InFlight {
        telemetry::in_flight(1.0);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        telemetry::in_flight(-1.0);
    }
}

/// Marks a request abandoned when dropped: after its answer (harmless), or when the client
/// went away first (then a worker that has not started it skips it).
struct Abandon(Arc<AtomicBool>);

impl Drop for Abandon {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}
