//! The encoded-answer cache: a byte-weighted LRU (quick_cache, CLOCK-Pro eviction) of
//! finished answers, keyed by image path + modification time + the canonical view. The
//! same pixels asked through any protocol are one entry.

use bytes::Bytes;
use quick_cache::sync::Cache;
use quick_cache::Weighter;

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

/// A bounded cache of answers; a capacity of 0 caches nothing.
pub struct AnswerCache {
    inner: Option<Cache<String, Answer, ByteWeight>>,
}

impl AnswerCache {
    /// A cache holding at most `megabytes` MB of answers.
    pub fn new(megabytes: f64) -> AnswerCache {
        let bytes = (megabytes * 1024.0 * 1024.0) as u64;
        let inner = (bytes > 0).then(|| {
            let estimated_items = (bytes / 16_384).clamp(16, 1 << 20) as usize;
            Cache::with_weighter(estimated_items, bytes, ByteWeight)
        });
        AnswerCache { inner }
    }

    /// The answer stored under `key`, if any.
    pub fn get(&self, key: &str) -> Option<Answer> {
        self.inner.as_ref()?.get(key)
    }

    /// Stores an answer.
    pub fn insert(&self, key: String, answer: Answer) {
        if let Some(c) = &self.inner {
            c.insert(key, answer);
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
