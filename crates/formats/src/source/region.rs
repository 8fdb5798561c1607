//! Boxes of a pyramid level in one piece: the tiles a box touches, fetched together when
//! the image is remote, decoded in parallel and copied into one raster. What the render
//! pipeline, memory pyramids, watermarks and IIP's pixel queries read pixels through.

use super::ImageSource;
use crate::error::{SourceError, SourceResult};
use iipsrv_core::raster::{FloatRaster, Pixels, Raster};
use iipsrv_core::view::Rect;
use rayon::prelude::*;
use std::sync::Arc;

/// Decodes the 8-bit tiles of `level` that the box touches, in parallel, and assembles the
/// box (left, top, right, bottom, in level pixels).
pub fn compose(
    src: &dyn ImageSource,
    level: usize,
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
) -> SourceResult<Raster> {
    if let Some(region) = src.read_region(level, (x0, y0, x1, y1)) {
        return region;
    }
    assemble(src, level, (x0, y0, x1, y1), |tx, ty| {
        src.read_tile_shared(level, tx, ty)
    })
}

/// [`compose`] for float samples in the image's own units (any image).
pub fn compose_float(
    src: &dyn ImageSource,
    level: usize,
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
) -> SourceResult<FloatRaster> {
    if let Some(region) = src.read_region_float(level, (x0, y0, x1, y1)) {
        return region;
    }
    assemble(src, level, (x0, y0, x1, y1), |tx, ty| {
        src.read_tile_float(level, tx, ty).map(Arc::new)
    })
}

/// Reads the tiles the box touches with `read` (their bytes fetched together first when
/// the image is remote, then decoded in parallel; tiles may be shared with the
/// decoded-tile cache) and copies their parts into one raster; a box inside one whole tile
/// is that tile (copied only when the cache shares it).
fn assemble<T: Copy + Default + Send + Sync>(
    src: &dyn ImageSource,
    level: usize,
    area: (u32, u32, u32, u32),
    read: impl Fn(u32, u32) -> SourceResult<Arc<Pixels<T>>> + Sync,
) -> SourceResult<Pixels<T>> {
    let l = &src.info().levels[level];
    let grid = (l.tile_width, l.tile_height);
    let coords = cells(grid, area);
    if coords.len() > 1 {
        src.prefetch_tiles(level, &coords)?;
    }
    join(grid, src.info().channels, area, &coords, read)
}

/// Assembles the box (left, top, right, bottom) from the cells of a grid of `grid` pixels
/// that it touches, each read with `read` (in parallel): how a cache of decoded blocks
/// composes a region from the blocks of [`ImageSource::region_grid`].
pub fn compose_cells(
    grid: (u32, u32),
    channels: u8,
    area: (u32, u32, u32, u32),
    read: impl Fn(u32, u32) -> SourceResult<Arc<Raster>> + Sync,
) -> SourceResult<Raster> {
    join(grid, channels, area, &cells(grid, area), read)
}

/// The cells (column, row) of a grid of `(tw, th)` pixels that a non-empty box touches.
fn cells((tw, th): (u32, u32), (x0, y0, x1, y1): (u32, u32, u32, u32)) -> Vec<(u32, u32)> {
    (y0 / th..=(y1 - 1) / th)
        .flat_map(|ty| (x0 / tw..=(x1 - 1) / tw).map(move |tx| (tx, ty)))
        .collect()
}

/// Reads the cells `coords` of a grid of `(tw, th)` pixels in parallel and copies their
/// parts into the box; a box that is one whole cell is that cell.
fn join<T: Copy + Default + Send + Sync>(
    (tw, th): (u32, u32),
    channels: u8,
    (x0, y0, x1, y1): (u32, u32, u32, u32),
    coords: &[(u32, u32)],
    read: impl Fn(u32, u32) -> SourceResult<Arc<Pixels<T>>> + Sync,
) -> SourceResult<Pixels<T>> {
    let tiles: Vec<Arc<Pixels<T>>> = coords
        .par_iter()
        .map(|&(tx, ty)| read(tx, ty))
        .collect::<SourceResult<_>>()?;
    let channels = tiles.first().map_or(channels, |t| t.channels);
    if let ([tile], [(tx, ty)]) = (tiles.as_slice(), coords) {
        let (ox, oy) = (x0 - tx * tw, y0 - ty * th);
        if ox == 0 && oy == 0 && tile.width == x1 - x0 && tile.height == y1 - y0 {
            return tiles
                .into_iter()
                .next()
                .map(Arc::unwrap_or_clone)
                .ok_or_else(|| SourceError::corrupt("no tile"));
        }
    }
    let mut canvas = Pixels::filled(x1 - x0, y1 - y0, channels, T::default());
    for (tile, &(tx, ty)) in tiles.iter().zip(coords) {
        if tile.channels != channels {
            return Err(SourceError::corrupt(
                "tiles disagree on their channel count",
            ));
        }
        let (tx0, ty0) = (tx * tw, ty * th);
        let ix0 = x0.max(tx0);
        let iy0 = y0.max(ty0);
        let ix1 = x1.min(tx0 + tile.width);
        let iy1 = y1.min(ty0 + tile.height);
        if ix1 > ix0 && iy1 > iy0 {
            let from = Rect {
                x: ix0 - tx0,
                y: iy0 - ty0,
                w: ix1 - ix0,
                h: iy1 - iy0,
            };
            canvas.blit(tile, from, ix0 - x0, iy0 - y0);
        }
    }
    Ok(canvas)
}
