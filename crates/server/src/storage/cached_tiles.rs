//! A source that keeps the 8-bit tiles it decodes in the shared [`TileCache`]: wraps the
//! sources whose tiles are costly to decode (compressed TIFF), so overlapping regions and
//! re-encoded tiles decode each stored tile once.

use super::cache::TileCache;
use iipsrv_core::info::ImageInfo;
use iipsrv_core::raster::{FloatRaster, Raster};
use iipsrv_formats::error::SourceResult;
use iipsrv_formats::source::ImageSource;
use std::sync::Arc;

/// An image whose decoded tiles go through a [`TileCache`].
pub struct CachedTiles {
    inner: Arc<dyn ImageSource>,
    /// The image's part of every tile key (path, page and modification time hashed).
    image: u64,
    cache: Arc<TileCache>,
}

impl CachedTiles {
    /// `inner` with its tiles cached under `image`.
    pub fn new(inner: Arc<dyn ImageSource>, image: u64, cache: Arc<TileCache>) -> CachedTiles {
        CachedTiles {
            inner,
            image,
            cache,
        }
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
        self.inner.read_region(level, area)
    }

    fn read_region_float(
        &self,
        level: usize,
        area: (u32, u32, u32, u32),
    ) -> Option<SourceResult<FloatRaster>> {
        self.inner.read_region_float(level, area)
    }

    fn with_layers(&self, layers: i32) -> Option<Arc<dyn ImageSource>> {
        self.inner.with_layers(layers)
    }

    fn prefetch_tiles(&self, level: usize, tiles: &[(u32, u32)]) -> SourceResult<()> {
        self.inner.prefetch_tiles(level, tiles)
    }

    fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }

    fn jpeg_tile(&self, level: usize, tx: u32, ty: u32) -> SourceResult<Option<Vec<u8>>> {
        self.inner.jpeg_tile(level, tx, ty)
    }
}
