//! The shared cache tier: encoded answers in memcached (MEMCACHED_SERVERS) or Redis
//! (REDIS_URL), so that several server processes — on one machine or many — share what
//! any of them rendered, plus one generation counter per image that makes a purge reach
//! every instance.
//!
//! A dead or slow tier costs nothing but the cache: timeouts are short, and after a
//! failure the tier is skipped for a few seconds before it is tried again. Keys are a hash
//! of the canonical answer key, so they are short, free of spaces and the same in every
//! instance that resolves an id to the same file or object.

#[cfg(feature = "memcached")]
mod memcached;
#[cfg(feature = "redis")]
mod redis;

use crate::access::sessions::{SessionStore, Unavailable};
use crate::error::{Error, Result};
use crate::settings::Tier;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long one operation may take.
#[cfg_attr(not(any(feature = "memcached", feature = "redis")), allow(dead_code))]
const TIMEOUT: Duration = Duration::from_millis(250);
/// How long the tier is skipped after a failure.
const BACKOFF: Duration = Duration::from_secs(5);

/// One cache engine, as the tier drives it. Errors are one-line reasons; the tier logs
/// them and backs off.
trait Backend: Send + Sync {
    /// The engine's name, for logs and metrics (`memcached`, `redis`).
    fn name(&self) -> &'static str;
    /// The value under `key`, if any.
    fn get(&self, key: &str) -> std::result::Result<Option<Vec<u8>>, String>;
    /// Stores `value` under `key` for `expiry` seconds (0: no expiry).
    fn set(&self, key: &str, value: &[u8], expiry: u32) -> std::result::Result<(), String>;
    /// Adds one to the counter under `key` (created at 0 first); the new value.
    fn incr(&self, key: &str) -> std::result::Result<u64, String>;
    /// Removes `key` (absent already is fine).
    fn delete(&self, key: &str) -> std::result::Result<(), String>;
    /// Drops the connections after a failure, so that the next use connects anew.
    fn reset(&self);
}

/// The backend of a tier (settings refuse an engine this build leaves out).
fn engine(tier: &Tier) -> Result<Box<dyn Backend>> {
    match tier {
        #[cfg(feature = "memcached")]
        Tier::Memcached(servers) => Ok(Box::new(memcached::Memcached::new(servers)?)),
        #[cfg(feature = "redis")]
        Tier::Redis(url) => Ok(Box::new(redis::Redis::new(url)?)),
        #[allow(unreachable_patterns)]
        _ => Err(Error::Internal("this build has no such tier engine".into())),
    }
}

/// The shared tier: a backend that never makes a request fail.
pub(crate) struct SharedTier {
    backend: Box<dyn Backend>,
    expiry: u32,
    retry_at: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for SharedTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedTier({})", self.name())
    }
}

impl SharedTier {
    /// The tier of MEMCACHED_SERVERS or REDIS_URL, entries kept `expiry`
    /// (MEMCACHED_TIMEOUT, whole seconds).
    pub fn new(tier: &Tier, expiry: Duration) -> Result<SharedTier> {
        Ok(SharedTier {
            backend: engine(tier)?,
            expiry: u32::try_from(expiry.as_secs()).unwrap_or(u32::MAX),
            retry_at: Mutex::new(None),
        })
    }

    /// The engine's name (`memcached` or `redis`), as metrics label the tier.
    pub fn name(&self) -> &'static str {
        self.backend.name()
    }

    /// Whether the tier is to be tried now (not backing off after a failure).
    fn available(&self) -> bool {
        self.retry_at
            .lock()
            .map(|t| t.is_none_or(|t| Instant::now() >= t))
            .unwrap_or(false)
    }

    fn failed(&self, what: &str, e: &str) {
        tracing::warn!(
            "{} {what} failed ({e}); skipping it for {}s",
            self.name(),
            BACKOFF.as_secs()
        );
        self.backend.reset();
        if let Ok(mut t) = self.retry_at.lock() {
            *t = Some(Instant::now() + BACKOFF);
        }
    }

    fn succeeded(&self) {
        if let Ok(mut t) = self.retry_at.lock() {
            *t = None;
        }
    }

    /// The value stored under answer key `key`, if any (and if the tier answers in time).
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.fetch(&hashed(key)).ok().flatten()
    }

    /// Stores a value under answer key `key`; failures are logged and otherwise ignored.
    pub fn set(&self, key: &str, value: &[u8]) {
        if self.available() {
            self.stored(self.backend.set(&hashed(key), value, self.expiry));
        }
    }

    /// The value under tier key `key` (made by the caller, see [`tier_key`]): `Ok(None)`
    /// when the tier has none, [`Unavailable`] when it cannot be asked now.
    pub fn fetch(&self, key: &str) -> std::result::Result<Option<Vec<u8>>, Unavailable> {
        if !self.available() {
            return Err(Unavailable);
        }
        self.backend
            .get(key)
            .inspect(|_| self.succeeded())
            .map_err(|e| {
                self.failed("get", &e);
                Unavailable
            })
    }

    /// Stores `value` under tier key `key` for `expiry` (at least a second; the engine
    /// may shorten it to its own limit): whether the tier took it.
    pub fn store(&self, key: &str, value: &[u8], expiry: Duration) -> bool {
        let secs = u32::try_from(expiry.as_secs().max(1)).unwrap_or(u32::MAX);
        self.available() && self.stored(self.backend.set(key, value, secs))
    }

    /// Removes tier key `key`: whether the tier confirmed it is gone.
    pub fn delete(&self, key: &str) -> bool {
        self.available() && self.stored(self.backend.delete(key))
    }

    /// Notes the outcome of a write: whether it succeeded.
    fn stored(&self, outcome: std::result::Result<(), String>) -> bool {
        match outcome {
            Ok(()) => {
                self.succeeded();
                true
            }
            Err(e) => {
                self.failed("write", &e);
                false
            }
        }
    }

    /// The purge generation of the image at `location` (its canonical path or object
    /// URL): 0 until it is first purged, or when the tier cannot be asked.
    pub fn generation(&self, location: &str) -> u64 {
        self.fetch(&generation_key(location))
            .ok()
            .flatten()
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Purges the image at `location` across the tier: its generation goes up by one, so
    /// that every answer key of the old generation is never asked again (the engine
    /// evicts them). Unlike lookups this reports failure, as the caller must know.
    pub fn purge(&self, location: &str) -> Result<u64> {
        self.backend
            .incr(&generation_key(location))
            .inspect(|_| self.succeeded())
            .map_err(|e| {
                self.failed("purge", &e);
                Error::Overloaded(format!("{} cannot purge now: {e}", self.name()))
            })
    }
}

/// Sessions shared between instances (access control) live in the tier.
impl SessionStore for SharedTier {
    fn name(&self) -> &'static str {
        SharedTier::name(self)
    }

    fn fetch(&self, key: &str) -> std::result::Result<Option<Vec<u8>>, Unavailable> {
        SharedTier::fetch(self, key)
    }

    fn store(&self, key: &str, value: &[u8], expiry: Duration) -> bool {
        SharedTier::store(self, key, value, expiry)
    }

    fn delete(&self, key: &str) -> bool {
        SharedTier::delete(self, key)
    }
}

/// The tier key of an answer key: a 128-bit hash, hex.
fn hashed(key: &str) -> String {
    tier_key("iipsrv-", key)
}

/// The tier key of an image's purge generation.
fn generation_key(location: &str) -> String {
    tier_key("iipsrv-gen-", location)
}

/// `prefix` and the 128-bit hash of `text`, hex: short, free of spaces, the same in every
/// instance. Not a cryptographic hash: secrets get their own keys.
fn tier_key(prefix: &str, text: &str) -> String {
    format!(
        "{prefix}{:032x}",
        xxhash_rust::xxh3::xxh3_128(text.as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_and_plain() {
        let k = hashed(&"x y\n".repeat(200));
        assert_eq!(k.len(), 39);
        assert!(k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        assert_ne!(generation_key("/a.tif"), hashed("/a.tif"));
    }

    #[test]
    #[cfg(feature = "redis")]
    fn a_bad_url_is_refused() {
        assert!(
            SharedTier::new(&Tier::Redis("not a url".into()), Duration::from_secs(10)).is_err()
        );
    }

    #[test]
    #[cfg(all(feature = "memcached", feature = "redis"))]
    fn a_dead_engine_costs_nothing() {
        // nothing listens on port 1: connection refused, then skipped without waiting
        for engine in [
            Tier::Memcached("127.0.0.1:1".into()),
            Tier::Redis("redis://127.0.0.1:1/".into()),
        ] {
            let tier = SharedTier::new(&engine, Duration::from_secs(10)).expect("valid");
            let start = Instant::now();
            assert!(tier.get("a").is_none());
            tier.set("a", b"v");
            for _ in 0..100 {
                assert!(tier.get("a").is_none());
                assert_eq!(tier.generation("/a.tif"), 0);
            }
            assert!(tier.purge("/a.tif").is_err());
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "{}: {:?}",
                tier.name(),
                start.elapsed()
            );
        }
    }
}
