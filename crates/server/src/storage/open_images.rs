//! The images the registry holds open, under two bounds: parsed images (directories and
//! indexes, kilobytes each) by count (MAX_METADATA_CACHE_SIZE), and flat images decoded
//! whole into memory (up to hundreds of megabytes each) by their bytes
//! (MAX_FLAT_CACHE_SIZE), least recently used evicted, so that a few small files claiming
//! huge sizes cannot pin the machine's memory.

use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, OptionsBuilder, Weighter};

/// What an open image holds in memory beyond its description.
pub(crate) trait Resident {
    /// Bytes of decoded pixels held (0 for an image read from its file on demand).
    fn resident_bytes(&self) -> u64;
}

/// Weighs decoded images by their bytes.
#[derive(Clone)]
struct ByBytes;

impl<V: Resident> Weighter<String, V> for ByBytes {
    fn weight(&self, _key: &String, image: &V) -> u64 {
        image.resident_bytes().max(1)
    }
}

/// Share of the byte budget one image may take: the cache admits no item heavier than
/// its hot section (97 % of the capacity by default).
const LARGEST_SHARE: f64 = 0.96;

/// Open images by key, parsed ones counted and decoded ones weighed.
pub(crate) struct OpenImages<V: Resident + Clone> {
    parsed: Cache<String, V>,
    decoded: Cache<String, V, ByBytes>,
    budget: u64,
}

impl<V: Resident + Clone> OpenImages<V> {
    /// Holds at most `count` parsed images and `budget` bytes of decoded ones.
    pub(crate) fn new(count: usize, budget: u64) -> OpenImages<V> {
        // One shard: a shard's capacity is its share of the total, and a decoded image
        // may be most of the budget.
        let options = OptionsBuilder::new()
            .shards(1)
            .estimated_items_capacity(16)
            .weight_capacity(budget)
            .build();
        let decoded = match options {
            Ok(o) => Cache::with_options(
                o,
                ByBytes,
                DefaultHashBuilder::default(),
                Default::default(),
            ),
            Err(_) => Cache::with_weighter(16, budget, ByBytes),
        };
        OpenImages {
            parsed: Cache::new(count.max(1)),
            decoded,
            budget,
        }
    }

    /// Whether an image holding `bytes` of pixels may be held at all.
    pub(crate) fn fits(&self, bytes: u64) -> bool {
        bytes as f64 <= self.budget as f64 * LARGEST_SHARE
    }

    /// The image under `key`.
    pub(crate) fn get(&self, key: &str) -> Option<V> {
        self.parsed.get(key).or_else(|| self.decoded.get(key))
    }

    /// Holds `image` under `key`, evicting the least recently used of its kind.
    pub(crate) fn insert(&self, key: String, image: V) {
        if image.resident_bytes() > 0 {
            self.decoded.insert(key, image);
        } else {
            self.parsed.insert(key, image);
        }
    }

    /// Keeps only the images for which `keep` holds.
    pub(crate) fn retain(&self, keep: impl Fn(&String, &V) -> bool) {
        self.parsed.retain(&keep);
        self.decoded.retain(&keep);
    }

    /// Forgets every image.
    pub(crate) fn clear(&self) {
        self.parsed.clear();
        self.decoded.clear();
    }

    /// How many images are held.
    pub(crate) fn len(&self) -> usize {
        self.parsed.len() + self.decoded.len()
    }

    /// Bytes of decoded pixels held.
    pub(crate) fn resident(&self) -> u64 {
        self.decoded.weight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct Fake(u64);

    impl Resident for Fake {
        fn resident_bytes(&self) -> u64 {
            self.0
        }
    }

    #[test]
    fn decoded_images_are_held_within_their_byte_budget() {
        let open = OpenImages::new(100, 1000);
        for i in 0..10 {
            open.insert(format!("flat{i}"), Fake(300));
        }
        assert!(open.resident() <= 1000, "{}", open.resident());
        assert!(open.get("flat9").is_some(), "the newest is held");
        assert!(!open.fits(990) && open.fits(900));
        for i in 0..50 {
            open.insert(format!("tiff{i}"), Fake(0));
        }
        assert!(open.len() >= 50, "parsed images are counted, not weighed");
    }
}
