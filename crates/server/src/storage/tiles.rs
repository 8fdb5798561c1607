//! Decoded tiles of compressed images: a byte-weighted cache shared by all threads
//! ([`TileCache`], DECODED_CACHE_SIZE) and the source wrapper that goes through it
//! ([`CachedTiles`]), so that overlapping regions and re-encoded tiles of the same area
//! decode each stored tile once.

use iipsrv_core::info::ImageInfo;
use iipsrv_core::raster::{FloatRaster, Raster};
use iipsrv_formats::error::{SourceError, SourceResult};
use iipsrv_formats::source::region::compose_cells;
use iipsrv_formats::source::ImageSource;
use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Lifecycle, Weighter};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// The identity of one decoded tile: the image (a hash of its path, page and modification
/// time, so that a changed file never meets its old tiles), the level, the column and row.
pub(crate) type TileKey = (u64, u32, u32, u32);

#[derive(Clone)]
struct TileWeight;

impl Weighter<TileKey, Arc<Raster>> for TileWeight {
    fn weight(&self, _key: &TileKey, val: &Arc<Raster>) -> u64 {
        val.data.len() as u64 + 96
    }
}

/// Counts evictions of decoded tiles (`iipsrv_cache_evictions_total{tier="decoded"}`).
#[derive(Clone, Default)]
struct CountTileEvictions;

impl Lifecycle<TileKey, Arc<Raster>> for CountTileEvictions {
    type RequestState = ();
    fn on_evict(&self, _state: &mut (), _key: TileKey, _val: Arc<Raster>) {
        crate::telemetry::evicted("decoded");
    }
}

/// Set in the level part of a [`TileKey`] for a block of [`ImageSource::region_grid`], so
/// that blocks and stored tiles of one level never share a key.
const BLOCK: u32 = 1 << 31;

/// A bounded cache of decoded 8-bit tiles (DECODED_CACHE_SIZE).
pub struct TileCache {
    inner: Cache<TileKey, Arc<Raster>, TileWeight, DefaultHashBuilder, CountTileEvictions>,
}

impl TileCache {
    /// A cache of at most `megabytes` MB of decoded pixels; `None` for 0.
    pub fn new(megabytes: f64) -> Option<Arc<TileCache>> {
        let bytes = (megabytes * 1024.0 * 1024.0) as u64;
        (bytes > 0).then(|| {
            let estimated_items = (bytes / 196_608).clamp(16, 1 << 20) as usize;
            Arc::new(TileCache {
                inner: Cache::with(
                    estimated_items,
                    bytes,
                    TileWeight,
                    DefaultHashBuilder::default(),
                    CountTileEvictions,
                ),
            })
        })
    }

    /// The tile under `key`, decoding it with `decode` (once, whatever the number of
    /// threads asking at the same time) when it is not held.
    pub(crate) fn get_or_decode<E>(
        &self,
        key: TileKey,
        decode: impl FnOnce() -> Result<Raster, E>,
    ) -> Result<Arc<Raster>, E> {
        let mut missed = false;
        let tile = self.inner.get_or_insert_with(&key, || {
            missed = true;
            decode().map(Arc::new)
        });
        crate::telemetry::cache("decoded", !missed);
        tile
    }

    /// Bytes it may hold.
    fn capacity(&self) -> u64 {
        self.inner.capacity()
    }

    /// Bytes one shard may hold: the cache refuses to keep anything larger.
    fn shard_capacity(&self) -> u64 {
        self.inner.shard_capacity()
    }

    /// Drops every tile (SIGHUP).
    pub fn clear(&self) {
        self.inner.clear();
    }

    /// Bytes held.
    pub fn weight(&self) -> u64 {
        self.inner.weight()
    }
}

/// An image whose decoded tiles go through a [`TileCache`].
pub struct CachedTiles {
    inner: Arc<dyn ImageSource>,
    /// The image's part of every tile key (path, page and modification time hashed).
    image: u64,
    cache: Arc<TileCache>,
    /// Blocks whose decode failed as damaged (at most [`DAMAGED_KEPT`]): regions touching
    /// them are decoded box by box, the block not tried again.
    damaged: Mutex<HashSet<TileKey>>,
}

/// Most damaged blocks remembered per image.
const DAMAGED_KEPT: usize = 1024;

impl CachedTiles {
    /// `inner` with its tiles cached under `image`.
    pub fn new(inner: Arc<dyn ImageSource>, image: u64, cache: Arc<TileCache>) -> CachedTiles {
        CachedTiles {
            inner,
            image,
            cache,
            damaged: Mutex::new(HashSet::new()),
        }
    }

    /// The block under `key`, decoded by `decode` through the cache; a block found damaged
    /// once fails at once after.
    fn block(
        &self,
        key: TileKey,
        decode: impl FnOnce() -> SourceResult<Raster>,
    ) -> SourceResult<Arc<Raster>> {
        let damaged = || self.damaged.lock().unwrap_or_else(|e| e.into_inner());
        if damaged().contains(&key) {
            return Err(SourceError::corrupt("damaged block"));
        }
        let decoded = self.cache.get_or_decode(key, decode);
        if let Err(e @ SourceError::Corrupt { .. }) = &decoded {
            let mut held = damaged();
            if held.len() < DAMAGED_KEPT && held.insert(key) {
                tracing::warn!("damaged JPEG2000 data ({e}): regions near it decoded one by one");
            }
        }
        decoded
    }

    /// The block grid of `level` when its blocks are worth keeping: the source decodes
    /// whole blocks independently ([`ImageSource::region_grid`]), the whole level fits in
    /// half the cache — blocks of a larger level would be pushed out before regions came
    /// back to them, so its regions keep decoding just their box — and a block fits in
    /// half a shard of it (a larger one would never be kept, and decoded for every region).
    fn block_grid(&self, level: usize) -> Option<(u32, u32)> {
        let (bw, bh) = self.inner.region_grid(level)?;
        let info = self.info();
        let l = info.levels.get(level)?;
        let bytes = |w: u32, h: u32| w as u64 * h as u64 * info.channels as u64;
        let kept = bytes(l.width, l.height) <= self.cache.capacity() / 2
            && bytes(bw, bh) <= self.cache.shard_capacity() / 2;
        kept.then_some((bw, bh))
    }

    /// A box of `level` composed from whole blocks of `grid`, each decoded once and kept.
    fn region_of_blocks(
        &self,
        level: usize,
        (bw, bh): (u32, u32),
        area: (u32, u32, u32, u32),
    ) -> SourceResult<Raster> {
        let info = self.info();
        let (w, h) = (info.levels[level].width, info.levels[level].height);
        let (x0, y0, x1, y1) = area;
        if x0 >= x1 || y0 >= y1 || x1 > w || y1 > h {
            return Err(SourceError::limit(format!("no region {x0},{y0}-{x1},{y1}")));
        }
        compose_cells((bw, bh), info.channels, area, |bx, by| {
            let key = (self.image, level as u32 | BLOCK, bx, by);
            let (x0, y0) = (bx * bw, by * bh);
            let block = (x0, y0, (x0 + bw).min(w), (y0 + bh).min(h));
            self.block(key, || {
                let pixels = self.inner.read_region(level, block).unwrap_or_else(|| {
                    Err(SourceError::Decoder {
                        what: "no region reader".into(),
                    })
                })?;
                match (pixels.width, pixels.height) == (block.2 - x0, block.3 - y0) {
                    true => Ok(pixels),
                    false => Err(SourceError::Decoder {
                        what: "decoded block of the wrong size".into(),
                    }),
                }
            })
        })
    }
}

impl ImageSource for CachedTiles {
    fn info(&self) -> &ImageInfo {
        self.inner.info()
    }

    fn read_tile(&self, level: usize, tx: u32, ty: u32) -> SourceResult<Raster> {
        self.read_tile_shared(level, tx, ty)
            .map(Arc::unwrap_or_clone)
    }

    fn read_tile_shared(&self, level: usize, tx: u32, ty: u32) -> SourceResult<Arc<Raster>> {
        let key = (self.image, level as u32, tx, ty);
        self.cache
            .get_or_decode(key, || self.inner.read_tile(level, tx, ty))
    }

    fn read_tile_float(&self, level: usize, tx: u32, ty: u32) -> SourceResult<FloatRaster> {
        if self.info().needs_float() {
            return self.inner.read_tile_float(level, tx, ty);
        }
        self.read_tile_shared(level, tx, ty).map(|r| r.to_float())
    }

    fn read_region(
        &self,
        level: usize,
        area: (u32, u32, u32, u32),
    ) -> Option<SourceResult<Raster>> {
        let Some(grid) = self.block_grid(level) else {
            return self.inner.read_region(level, area);
        };
        match self.region_of_blocks(level, grid, area) {
            // A damaged codestream tile fails its block; the box may not touch it.
            Err(SourceError::Corrupt { .. }) => self.inner.read_region(level, area),
            composed => Some(composed),
        }
    }

    fn read_region_float(
        &self,
        level: usize,
        area: (u32, u32, u32, u32),
    ) -> Option<SourceResult<FloatRaster>> {
        self.inner.read_region_float(level, area)
    }

    /// The image at another count of quality layers, its tiles cached apart from these
    /// under that count.
    fn with_layers(&self, layers: i32) -> Option<(u32, Arc<dyn ImageSource>)> {
        let (count, inner) = self.inner.with_layers(layers)?;
        let image = xxh3_64_with_seed(&self.image.to_le_bytes(), count as u64);
        let cached = CachedTiles::new(inner, image, self.cache.clone());
        Some((count, Arc::new(cached)))
    }

    fn prefetch_tiles(&self, level: usize, tiles: &[(u32, u32)]) -> SourceResult<()> {
        self.inner.prefetch_tiles(level, tiles)
    }

    fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }

    fn resident_bytes(&self) -> u64 {
        self.inner.resident_bytes()
    }

    fn jpeg_tile(&self, level: usize, tx: u32, ty: u32) -> SourceResult<Option<Vec<u8>>> {
        self.inner.jpeg_tile(level, tx, ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tile_is_decoded_once_and_bounded_by_bytes() {
        let cache = TileCache::new(1.0).expect("cache");
        let decodes = std::sync::atomic::AtomicUsize::new(0);
        let decode = || {
            decodes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, ()>(Raster::filled(256, 256, 3, 7))
        };
        for _ in 0..3 {
            let t = cache.get_or_decode((1, 0, 0, 0), decode).expect("tile");
            assert_eq!(t.data[0], 7);
        }
        assert_eq!(decodes.load(std::sync::atomic::Ordering::SeqCst), 1);
        for x in 0..20 {
            cache.get_or_decode((1, 0, x, 1), decode).expect("tile");
        }
        assert!(cache.weight() <= 1024 * 1024, "{}", cache.weight());
        assert!(TileCache::new(0.0).is_none());
        let failed = cache.get_or_decode((2, 0, 0, 0), || Err::<Raster, _>("corrupt"));
        assert_eq!(failed.err(), Some("corrupt"));
    }
}
