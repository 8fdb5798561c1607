//! The encoded-answer cache: a byte-weighted LRU (quick_cache, CLOCK-Pro eviction) of
//! finished answers in RAM, keyed by image path + modification time + the canonical view
//! (the same pixels asked through any protocol are one entry), backed by an optional
//! memcached tier shared between processes.

use crate::memcached::Memcached;
use crate::view::Format;
use bytes::Bytes;
use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Lifecycle, Weighter};

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
    remote: Option<Memcached>,
}

/// MIME types an answer can have (memcached stores the type's index).
const MIMES: [&str; 4] = [
    Format::Jpeg.mime(),
    Format::Png.mime(),
    Format::Webp.mime(),
    Format::Tiff.mime(),
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

    /// Adds the shared memcached tier.
    pub fn with_memcached(mut self, remote: Option<Memcached>) -> AnswerCache {
        self.remote = remote;
        self
    }

    /// The answer stored under `key`, from RAM or else from memcached.
    pub fn get(&self, key: &str) -> Option<Answer> {
        if let Some(ram) = &self.inner {
            let hit = ram.get(key);
            crate::telemetry::cache("ram", hit.is_some());
            if hit.is_some() {
                return hit;
            }
        }
        let stored = self.remote.as_ref()?.get(key);
        crate::telemetry::cache("memcached", stored.is_some());
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

    /// Stores an answer in RAM and in memcached.
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

    /// Drops every answer held in RAM (SIGHUP); memcached, shared with other processes,
    /// keeps its entries.
    pub fn clear(&self) {
        if let Some(c) = &self.inner {
            c.clear();
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
