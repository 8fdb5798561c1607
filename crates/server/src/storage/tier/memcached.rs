//! memcached as the shared tier's engine (MEMCACHED_SERVERS, as the original reads it).

use super::{Backend, TIMEOUT};
use crate::error::{Error, Result};
use memcache::Client;
use std::sync::{Arc, Mutex};

/// The longest expiry memcached takes as a number of seconds: it reads larger values as a
/// point in time (a Unix time), so a MEMCACHED_TIMEOUT of 60 days would store every entry
/// already expired. Longer expiries are shortened to it.
const MAX_EXPIRY_SECS: u32 = 30 * 24 * 3600;

/// A memcached client, connected on first use and again after a failure.
pub struct Memcached {
    urls: Vec<String>,
    client: Mutex<Option<Arc<Client>>>,
}

/// Turns `host[:port]` items of a comma list into memcache URLs (default port 11211).
pub(crate) fn server_urls(list: &str) -> Vec<String> {
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
    /// A client for the servers of MEMCACHED_SERVERS.
    pub fn new(servers: &str) -> Result<Memcached> {
        let urls = server_urls(servers);
        if urls.is_empty() {
            return Err(Error::bad("MEMCACHED_SERVERS names no server"));
        }
        Ok(Memcached {
            urls,
            client: Mutex::new(None),
        })
    }

    fn client(&self) -> std::result::Result<Arc<Client>, String> {
        let mut held = self
            .client
            .lock()
            .map_err(|_| "lock poisoned".to_string())?;
        if let Some(c) = held.as_ref() {
            return Ok(c.clone());
        }
        let mut builder = Client::builder()
            .with_max_pool_size(16)
            .with_min_idle_conns(1)
            .with_connection_timeout(TIMEOUT)
            .with_read_timeout(TIMEOUT)
            .with_write_timeout(TIMEOUT);
        for url in &self.urls {
            builder = builder
                .add_server(url.as_str())
                .map_err(|e| e.to_string())?;
        }
        let client = Arc::new(builder.build().map_err(|e| e.to_string())?);
        *held = Some(client.clone());
        Ok(client)
    }
}

impl Backend for Memcached {
    fn name(&self) -> &'static str {
        "memcached"
    }

    fn get(&self, key: &str) -> std::result::Result<Option<Vec<u8>>, String> {
        self.client()?
            .get::<Vec<u8>>(key)
            .map_err(|e| e.to_string())
    }

    fn set(&self, key: &str, value: &[u8], expiry: u32) -> std::result::Result<(), String> {
        self.client()?
            .set(key, value, expiry.min(MAX_EXPIRY_SECS))
            .map_err(|e| e.to_string())
    }

    fn incr(&self, key: &str) -> std::result::Result<u64, String> {
        let client = self.client()?;
        // `add` creates the counter unless it exists (an error then, which is fine).
        let _ = client.add(key, "0", 0);
        client.increment(key, 1).map_err(|e| e.to_string())
    }

    fn delete(&self, key: &str) -> std::result::Result<(), String> {
        self.client()?
            .delete(key)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn reset(&self) {
        if let Ok(mut held) = self.client.lock() {
            *held = None;
        }
    }
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
        assert!(Memcached::new(" , ").is_err());
    }
}
