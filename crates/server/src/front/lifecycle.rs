//! Process life: a stop signal shared by the front ends and a count of live connections,
//! so SIGTERM (or Ctrl-C) stops accepting, lets every request in flight finish and then
//! exits; SIGHUP reopens the log file and drops the caches, as the original reloads its
//! caches on SIGHUP.

use crate::handler::App;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Longest wait for requests in flight after a stop signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The owner side: signals the stop and waits for the connections to drain.
pub struct Lifecycle {
    tx: watch::Sender<bool>,
    stop: Stop,
}

/// The front-end side: learns of the stop and registers live connections.
#[derive(Clone)]
pub struct Stop {
    rx: watch::Receiver<bool>,
    active: Arc<AtomicUsize>,
}

/// Held by a connection while it lives; the drain waits for all of them.
pub struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::new()
    }
}

impl Lifecycle {
    /// A running process.
    pub fn new() -> Lifecycle {
        let (tx, rx) = watch::channel(false);
        Lifecycle {
            tx,
            stop: Stop {
                rx,
                active: Arc::new(AtomicUsize::new(0)),
            },
        }
    }

    /// The handle given to front ends.
    pub fn stop_handle(&self) -> Stop {
        self.stop.clone()
    }

    /// Asks every front end to stop accepting and to close idle connections.
    pub fn stop(&self) {
        let _ = self.tx.send(true);
    }

    /// Waits until no connection is live, at most `timeout`; false when some remain.
    pub async fn drained(&self, timeout: Duration) -> bool {
        let start = Instant::now();
        while self.stop.active.load(Ordering::SeqCst) > 0 {
            if start.elapsed() >= timeout {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Live connections now.
    pub fn live(&self) -> usize {
        self.stop.active.load(Ordering::SeqCst)
    }
}

impl Stop {
    /// Resolves once the stop has been asked (at once if it already was).
    pub async fn requested(&mut self) {
        let _ = self.rx.wait_for(|stopped| *stopped).await;
    }

    /// Registers a live connection until the returned guard is dropped.
    pub fn live(&self) -> Live {
        self.active.fetch_add(1, Ordering::SeqCst);
        Live(self.active.clone())
    }
}

/// Runs the signal handlers: SIGTERM and SIGINT stop the process (through `lifecycle`),
/// SIGHUP reopens the log file and drops `app`'s caches. Returns when a stop signal came.
#[cfg(unix)]
pub async fn handle_signals(lifecycle: &Lifecycle, app: Arc<App>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::warn!("cannot install signal handlers");
        return std::future::pending().await;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                crate::logging::reopen();
                app.drop_caches();
                tracing::info!("SIGHUP: log file reopened, caches dropped");
            }
        }
    }
    tracing::info!(
        "stopping: no new connections, finishing {} live ones",
        lifecycle.live()
    );
    lifecycle.stop();
}
