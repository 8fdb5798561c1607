//! Image sources: they read pixels and describe images, and know nothing of protocols.
//!
//! A source answers three questions: what the image is ([`ImageInfo`]), what the decoded
//! pixels of one stored tile are ([`ImageSource::read_tile`]), and — for passthrough — what
//! the stored tile is as a complete JPEG stream ([`ImageSource::jpeg_tile`]).

pub mod jpeg2000;
pub mod memory;
#[cfg(feature = "openslide")]
pub mod openslide;
pub mod planes;
pub mod region;
pub mod samples;
pub mod slide;
pub mod tiff;

#[cfg(test)]
mod error_tests;

use crate::error::SourceResult;
use iipsrv_core::info::ImageInfo;
use iipsrv_core::raster::{FloatRaster, Raster};
use std::sync::Arc;

/// An open image that can hand out decoded tiles. Implementations are shared between
/// threads: every method takes `&self`.
pub trait ImageSource: Send + Sync {
    /// The image description.
    fn info(&self) -> &ImageInfo;

    /// Decodes one stored tile of `level` (tile column `tx`, row `ty`) into 8-bit pixels of
    /// `info().channels` channels. Edge tiles come back at their stored size.
    fn read_tile(&self, level: usize, tx: u32, ty: u32) -> SourceResult<Raster>;

    /// [`ImageSource::read_tile`], possibly shared with a cache (no copy of a cached tile).
    fn read_tile_shared(&self, level: usize, tx: u32, ty: u32) -> SourceResult<Arc<Raster>> {
        self.read_tile(level, tx, ty).map(Arc::new)
    }

    /// Bytes of decoded pixels this source holds in memory (a flat image decoded whole),
    /// which the server counts against its budget for them; 0 for a source that reads its
    /// file on demand (the default).
    fn resident_bytes(&self) -> u64 {
        0
    }

    /// Whether keeping this image's decoded tiles is worth their memory: decoding a tile
    /// costs much more than copying it (compressed tiles). False by default.
    fn worth_caching(&self) -> bool {
        false
    }

    /// Decodes one stored tile into floats in the image's own units: integer sample values
    /// as stored, floats as stored, CIELAB as L* 0-100 and signed a*, b*. Every image
    /// answers this (8-bit images through [`ImageSource::read_tile`]); images for which
    /// [`ImageInfo::needs_float`] holds answer only this.
    fn read_tile_float(&self, level: usize, tx: u32, ty: u32) -> SourceResult<FloatRaster> {
        self.read_tile(level, tx, ty).map(|r| r.to_float())
    }

    /// A box of a level (left, top, right, bottom) decoded in one piece, for sources where
    /// that is cheaper than tile by tile (JPEG2000); `None` when tiles are the way.
    fn read_region(
        &self,
        level: usize,
        area: (u32, u32, u32, u32),
    ) -> Option<SourceResult<Raster>> {
        let _ = (level, area);
        None
    }

    /// The grid (block width, height in pixels of `level`, from the level's top-left) on
    /// which [`ImageSource::read_region`] decodes blocks independently of one another, so
    /// that a cache of decoded pixels can keep whole blocks of a level and compose regions
    /// from them (JPEG2000: whole codestream tiles); `None` for sources without one.
    fn region_grid(&self, level: usize) -> Option<(u32, u32)> {
        let _ = level;
        None
    }

    /// [`ImageSource::read_region`] as floats in the image's own units.
    fn read_region_float(
        &self,
        level: usize,
        area: (u32, u32, u32, u32),
    ) -> Option<SourceResult<FloatRaster>> {
        let _ = (level, area);
        None
    }

    /// This image decoding `layers` quality layers (0 the source's default, -1 all, n the
    /// first n), for sources with progressive quality (JPEG2000), with the count of layers
    /// it decodes (0 all): the one name of its pixels, which caches key them by, as many
    /// `layers` values give the same pixels. `None` when the source has no such thing or the
    /// count changes nothing.
    fn with_layers(&self, layers: i32) -> Option<(u32, Arc<dyn ImageSource>)> {
        let _ = layers;
        None
    }

    /// Says that these tiles of `level` will be read soon (a region's), so that a remote
    /// source fetches their bytes together. Nothing to do for local files.
    fn prefetch_tiles(&self, level: usize, tiles: &[(u32, u32)]) -> SourceResult<()> {
        let _ = (level, tiles);
        Ok(())
    }

    /// Whether reading pixels may wait on the network (an object store): the quick path
    /// leaves such images to the worker pool.
    fn is_remote(&self) -> bool {
        false
    }

    /// The stored tile as a complete, standalone JPEG stream when it is JPEG-compressed
    /// 8-bit data; `None` otherwise. Used to answer without decoding.
    fn jpeg_tile(&self, level: usize, tx: u32, ty: u32) -> SourceResult<Option<Vec<u8>>>;
}
