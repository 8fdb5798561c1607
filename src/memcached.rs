//! The shared cache tier: encoded answers in memcached (MEMCACHED_SERVERS), so that several
//! server processes — on one machine or many — share what any of them rendered.
//!
//! A dead or slow memcached costs nothing but the cache: timeouts are short, and after a
//! failure the tier is skipped for a few seconds before it is tried again. Keys are a hash
//! of the canonical answer key, so they are short and free of spaces.

use memcache::Client;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long one memcached operation may take.
const TIMEOUT: Duration = Duration::from_millis(250);
/// How long the tier is skipped after a failure.
const BACKOFF: Duration = Duration::from_secs(5);

struct State {
    client: Option<Arc<Client>>,
    retry_at: Option<Instant>,
}

/// A memcached client that never makes a request fail.
pub struct Memcached {
    urls: Vec<String>,
    expiry: u32,
    state: Mutex<State>,
}

/// Turns `host[:port]` items of a comma list into memcache URLs (default port 11211).
pub fn server_urls(list: &str) -> Vec<String> {
    list.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let host_port = if s.contains(':') {
                s.to_string()
            } else {
                format!("{s}:11211")
            };
            format!("memcache://{host_port}?tcp_nodelay=true&timeout=0.25")
        })
        .collect()
}

impl Memcached {
    /// A client for the servers of MEMCACHED_SERVERS; `None` when the list is empty.
    /// Entries expire after `expiry` seconds (MEMCACHED_TIMEOUT).
    pub fn new(servers: &str, expiry: u32) -> Option<Memcached> {
        let urls = server_urls(servers);
        (!urls.is_empty()).then(|| Memcached {
            urls,
            expiry,
            state: Mutex::new(State {
                client: None,
                retry_at: None,
            }),
        })
    }

    fn client(&self) -> Option<Arc<Client>> {
        let mut state = self.state.lock().ok()?;
        if let Some(c) = &state.client {
            return Some(c.clone());
        }
        if state.retry_at.is_some_and(|t| Instant::now() < t) {
            return None;
        }
        let mut builder = Client::builder()
            .with_max_pool_size(16)
            .with_min_idle_conns(1)
            .with_connection_timeout(TIMEOUT)
            .with_read_timeout(TIMEOUT)
            .with_write_timeout(TIMEOUT);
        for url in &self.urls {
            builder = builder.add_server(url.as_str()).ok()?;
        }
        match builder.build() {
            Ok(c) => {
                let c = Arc::new(c);
                state.client = Some(c.clone());
                state.retry_at = None;
                Some(c)
            }
            Err(e) => {
                tracing::warn!(
                    "memcached unavailable ({e}); retrying in {}s",
                    BACKOFF.as_secs()
                );
                state.retry_at = Some(Instant::now() + BACKOFF);
                None
            }
        }
    }

    fn failed(&self, what: &str, e: memcache::MemcacheError) {
        tracing::warn!(
            "memcached {what} failed ({e}); skipping it for {}s",
            BACKOFF.as_secs()
        );
        if let Ok(mut state) = self.state.lock() {
            state.client = None;
            state.retry_at = Some(Instant::now() + BACKOFF);
        }
    }

    /// The value stored under `key`, if any (and if memcached answers in time).
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let client = self.client()?;
        match client.get::<Vec<u8>>(&hashed(key)) {
            Ok(v) => v,
            Err(e) => {
                self.failed("get", e);
                None
            }
        }
    }

    /// Stores a value; failures are logged and otherwise ignored.
    pub fn set(&self, key: &str, value: &[u8]) {
        if let Some(client) = self.client() {
            if let Err(e) = client.set(&hashed(key), value, self.expiry) {
                self.failed("set", e);
            }
        }
    }
}

/// The memcached key of an answer key: a 128-bit hash, hex.
fn hashed(key: &str) -> String {
    format!(
        "iipsrv-{:032x}",
        xxhash_rust::xxh3::xxh3_128(key.as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lists() {
        assert_eq!(
            server_urls("localhost, cache2:11300"),
            vec![
                "memcache://localhost:11211?tcp_nodelay=true&timeout=0.25",
                "memcache://cache2:11300?tcp_nodelay=true&timeout=0.25"
            ]
        );
        assert!(Memcached::new("", 10).is_none());
    }

    #[test]
    fn keys_are_short_and_plain() {
        let k = hashed(&"x y\n".repeat(200));
        assert_eq!(k.len(), 39);
        assert!(k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    }

    #[test]
    fn a_dead_server_costs_nothing() {
        // nothing listens on port 1: connection refused, then skipped without waiting
        let m = Memcached::new("127.0.0.1:1", 10).expect("configured");
        let start = Instant::now();
        assert!(m.get("a").is_none());
        m.set("a", b"v");
        for _ in 0..100 {
            assert!(m.get("a").is_none());
        }
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }
}
