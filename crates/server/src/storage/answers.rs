//! Finished answers in RAM ([`AnswerCache`]), byte-weighted (quick_cache, CLOCK-Pro
//! eviction) and shared by all threads, keyed by image path + modification time + the
//! canonical view (the same pixels asked through any protocol are one entry), backed by an
//! optional shared tier (memcached or Redis) between processes.

use super::tier::SharedTier;
use bytes::Bytes;
use iipsrv_core::view::Format;
use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Lifecycle, Weighter};
use std::sync::Arc;

/// A finished answer body and its MIME type.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The encoded bytes (cheap to clone).
    pub body: Bytes,
    /// MIME type.
    pub mime: &'static str,
}

#[derive(Clone)]
struct ByteWeight;

impl Weighter<String, Answer> for ByteWeight {
    fn weight(&self, key: &String, val: &Answer) -> u64 {
        (key.len() + val.body.len() + 64) as u64
    }
}

/// Counts evictions for the metrics (`iipsrv_cache_evictions_total{tier="ram"}`).
#[derive(Clone, Default)]
struct CountEvictions;

impl Lifecycle<String, Answer> for CountEvictions {
    type RequestState = ();
    fn on_evict(&self, _state: &mut (), _key: String, _val: Answer) {
        crate::telemetry::evicted("ram");
    }
}

/// The RAM tier.
type Ram = Cache<String, Answer, ByteWeight, DefaultHashBuilder, CountEvictions>;

/// A bounded cache of answers; a capacity of 0 caches nothing in RAM.
pub struct AnswerCache {
    inner: Option<Ram>,
    remote: Option<Arc<SharedTier>>,
}

/// MIME types an answer can have (the shared tier stores the type's index).
const MIMES: [&str; 5] = [
    Format::Jpeg.mime(),
    Format::Png.mime(),
    Format::Webp.mime(),
    Format::Tiff.mime(),
    Format::Avif.mime(),
];

impl AnswerCache {
    /// A cache holding at most `megabytes` MB of answers.
    pub fn new(megabytes: f64) -> AnswerCache {
        let bytes = (megabytes * 1024.0 * 1024.0) as u64;
        let inner = (bytes > 0).then(|| {
            let estimated_items = (bytes / 16_384).clamp(16, 1 << 20) as usize;
            Ram::with(
                estimated_items,
                bytes,
                ByteWeight,
                DefaultHashBuilder::default(),
                CountEvictions,
            )
        });
        AnswerCache {
            inner,
            remote: None,
        }
    }

    /// Adds the shared tier (memcached or Redis).
    pub(crate) fn with_tier(mut self, remote: Option<Arc<SharedTier>>) -> AnswerCache {
        self.remote = remote;
        self
    }

    /// The answer stored under `key`, from RAM or else from the shared tier.
    pub fn get(&self, key: &str) -> Option<Answer> {
        if let Some(ram) = &self.inner {
            let hit = ram.get(key);
            crate::telemetry::cache("ram", hit.is_some());
            if hit.is_some() {
                return hit;
            }
        }
        let remote = self.remote.as_ref()?;
        let stored = remote.get(key);
        crate::telemetry::cache(remote.name(), stored.is_some());
        let stored = stored?;
        let (&tag, body) = stored.split_first()?;
        let answer = Answer {
            body: Bytes::copy_from_slice(body),
            mime: MIMES.get(tag as usize)?,
        };
        if let Some(c) = &self.inner {
            c.insert(key.to_string(), answer.clone());
        }
        Some(answer)
    }

    /// The answer held in RAM, without asking the shared tier (the quick path, which must not
    /// wait on the network). Counts hits only: a miss is counted when the answer is made.
    pub(crate) fn get_ram(&self, key: &str) -> Option<Answer> {
        let hit = self.inner.as_ref()?.get(key)?;
        crate::telemetry::cache("ram", true);
        Some(hit)
    }

    /// Stores an answer made on the quick path (a stored tile) in RAM only, and counts the
    /// RAM miss that made it: the shared tier would not serve a stored tile faster than the file.
    pub(crate) fn insert_ram(&self, key: String, answer: Answer) {
        crate::telemetry::cache("ram", false);
        if let Some(c) = &self.inner {
            c.insert(key, answer);
        }
    }

    /// Stores an answer in RAM and in the shared tier.
    pub fn insert(&self, key: String, answer: Answer) {
        if let (Some(remote), Some(tag)) =
            (&self.remote, MIMES.iter().position(|m| *m == answer.mime))
        {
            let mut value = Vec::with_capacity(answer.body.len() + 1);
            value.push(tag as u8);
            value.extend_from_slice(&answer.body);
            remote.set(&key, &value);
        }
        if let Some(c) = &self.inner {
            c.insert(key, answer);
        }
    }

    /// Drops every answer held in RAM (SIGHUP); the shared tier, used by other
    /// processes, keeps its entries.
    pub fn clear(&self) {
        if let Some(c) = &self.inner {
            c.clear();
        }
    }

    /// The shared tier's engine, when there is one.
    pub fn tier_name(&self) -> Option<&'static str> {
        self.remote.as_ref().map(|t| t.name())
    }

    /// Drops the answers held in RAM whose key starts with `version` (one image, purged).
    pub(crate) fn forget(&self, version: &str) {
        if let Some(c) = &self.inner {
            c.retain(|key, _| !key.starts_with(version));
        }
    }

    /// Number of answers held.
    pub fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, Cache::len)
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total weight held, in bytes.
    pub fn weight(&self) -> u64 {
        self.inner.as_ref().map_or(0, Cache::weight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(n: usize) -> Answer {
        Answer {
            body: Bytes::from(vec![0u8; n]),
            mime: "image/jpeg",
        }
    }

    #[test]
    fn hits_and_respects_the_byte_bound() {
        let c = AnswerCache::new(1.0);
        c.insert("a".into(), answer(10));
        assert!(c.get("a").is_some());
        for i in 0..100 {
            c.insert(format!("k{i}"), answer(100_000));
        }
        assert!(c.weight() <= 1024 * 1024, "weight {}", c.weight());
    }

    #[test]
    fn zero_disables() {
        let c = AnswerCache::new(0.0);
        c.insert("a".into(), answer(10));
        assert!(c.get("a").is_none());
        assert!(c.is_empty());
    }
}
