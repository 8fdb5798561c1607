//! Blocks of remote objects in RAM ([`BlockCache`], OBJECT_CACHE_SIZE), byte-weighted and
//! shared by all threads: TIFF directories and JPEG2000 headers are read once, and tiles
//! stored side by side come with one request.

use bytes::Bytes;
use quick_cache::sync::Cache;
use quick_cache::Weighter;
use std::sync::Arc;

/// The identity of one block of an object: the object version (a hash of its URL and
/// ETag, so that a replaced object never meets its old bytes) and the block's index.
pub(crate) type BlockKey = (u64, u64);

#[derive(Clone)]
struct BlockWeight;

impl Weighter<BlockKey, Bytes> for BlockWeight {
    fn weight(&self, _key: &BlockKey, val: &Bytes) -> u64 {
        val.len() as u64 + 64
    }
}

/// A bounded cache of fixed-size blocks of remote objects (OBJECT_CACHE_SIZE): TIFF
/// directories and JPEG2000 headers are read once, and tiles stored side by side come
/// with one request.
pub struct BlockCache {
    inner: Cache<BlockKey, Bytes, BlockWeight>,
    block_size: u64,
}

impl BlockCache {
    /// A cache of at most `megabytes` MB of blocks of `block_size` bytes (at least one
    /// block is held whatever the size, as reads go through it).
    pub fn new(megabytes: f64, block_size: u64) -> Arc<BlockCache> {
        let block_size = block_size.max(4096);
        let bytes = ((megabytes * 1024.0 * 1024.0) as u64).max(block_size * 4);
        let estimated_items = (bytes / block_size).clamp(16, 1 << 20) as usize;
        Arc::new(BlockCache {
            inner: Cache::with_weighter(estimated_items, bytes, BlockWeight),
            block_size,
        })
    }

    /// Bytes per block.
    pub(crate) fn block_size(&self) -> u64 {
        self.block_size
    }

    /// The block under `key`, if held; counted as the `object` tier's lookups.
    pub fn get(&self, key: &BlockKey) -> Option<Bytes> {
        let hit = self.inner.get(key);
        crate::telemetry::cache("object", hit.is_some());
        hit
    }

    /// Whether the block under `key` is held (not counted: for planning fetches).
    pub fn contains(&self, key: &BlockKey) -> bool {
        self.inner.peek(key).is_some()
    }

    /// Keeps a block.
    pub fn insert(&self, key: BlockKey, block: Bytes) {
        self.inner.insert(key, block);
    }

    /// Drops every block (SIGHUP).
    pub fn clear(&self) {
        self.inner.clear();
    }
}
