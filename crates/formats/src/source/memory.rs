//! Images without a stored pyramid — striped or single-level TIFF, plain JPEG and PNG
//! files — decoded once into memory when opened, with reduced levels made by halving
//! (2×2 averages, each level the floor of half the previous, as libvips builds pyramids)
//! and served as 256-pixel tiles. The registry keeps the result like any open image, so
//! the work is done once per file; the log says that a pyramidal TIFF would be faster.

use super::ImageSource;
use crate::codec::{jpeg, png};
use crate::error::{SourceError, SourceResult};
use iipsrv_core::info::{plain_info, ImageInfo, Level};
use iipsrv_core::raster::Raster;

/// Tile size of the levels made here.
const TILE: u32 = 256;

/// Largest image decoded whole into memory (pixels): 100 megapixels, about 400 MB of RGB
/// with its levels. Larger flat images must be converted to pyramids.
pub(crate) const MAX_PIXELS: u64 = 100_000_000;

/// An image held in memory with its levels.
pub(crate) struct MemoryImage {
    info: ImageInfo,
    levels: Vec<Raster>,
}

impl MemoryImage {
    /// Builds the levels of `full` (level 0); `info` supplies samples, colour, ICC and
    /// metadata, its levels are replaced.
    pub fn new(full: Raster, mut info: ImageInfo) -> MemoryImage {
        let levels = iipsrv_core::raster::pyramid(full, TILE);
        info.width = levels[0].width;
        info.height = levels[0].height;
        info.levels = levels
            .iter()
            .zip(0..)
            .map(|(r, k)| Level {
                width: r.width,
                height: r.height,
                tile_width: TILE,
                tile_height: TILE,
                scale_x: 2f64.powi(k),
                scale_y: 2f64.powi(k),
            })
            .collect();
        MemoryImage { info, levels }
    }

    /// Decodes a whole JPEG or PNG file, keeping its ICC profile and XMP packet.
    pub(crate) fn from_file_bytes(bytes: &[u8]) -> SourceResult<MemoryImage> {
        let decoded = if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
            let (w, h, ch) = jpeg::dimensions(bytes)?;
            check_size(w, h)?;
            crate::codec::Decoded {
                raster: jpeg::decode(bytes, w, h, ch)?,
                icc: jpeg::icc_profile(bytes),
                xmp: jpeg::xmp_packet(bytes),
            }
        } else {
            png::decode(bytes, MAX_PIXELS)?
        };
        let full = decoded.raster;
        let mut info = plain_info(full.width, full.height, full.channels);
        info.icc = decoded.icc.map(std::sync::Arc::new);
        info.metadata.xmp = decoded.xmp;
        Ok(MemoryImage::new(full, info))
    }
}

/// Refuses images too large to hold in memory.
fn check_size(w: u32, h: u32) -> SourceResult<()> {
    let pixels = w as u64 * h as u64;
    if pixels > MAX_PIXELS {
        return Err(SourceError::over_limit(
            format!(
                "a {w}x{h} image without a pyramid is too large to serve; convert it to a \
                 tiled pyramidal TIFF (vips tiffsave --tile --pyramid)"
            ),
            pixels,
            MAX_PIXELS,
        ));
    }
    Ok(())
}

impl ImageSource for MemoryImage {
    fn info(&self) -> &ImageInfo {
        &self.info
    }

    fn read_tile(&self, level: usize, tx: u32, ty: u32) -> SourceResult<Raster> {
        let r = self
            .levels
            .get(level)
            .ok_or_else(|| SourceError::limit(format!("no level {level}")))?;
        let (x, y) = (tx.saturating_mul(TILE), ty.saturating_mul(TILE));
        if x >= r.width || y >= r.height {
            return Err(SourceError::limit(format!("no tile {tx},{ty}")));
        }
        Ok(r.crop(x, y, TILE.min(r.width - x), TILE.min(r.height - y)))
    }

    fn jpeg_tile(&self, _level: usize, _tx: u32, _ty: u32) -> SourceResult<Option<Vec<u8>>> {
        Ok(None)
    }

    fn resident_bytes(&self) -> u64 {
        self.levels.iter().map(|l| l.data.len() as u64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_halve_to_one_tile() {
        let full = Raster::filled(1000, 600, 3, 100);
        let m = MemoryImage::new(full, iipsrv_core::info::plain_info(1000, 600, 3));
        let sizes: Vec<(u32, u32)> = m.info.levels.iter().map(|l| (l.width, l.height)).collect();
        assert_eq!(sizes, vec![(1000, 600), (500, 300), (250, 150)]);
        let t = m.read_tile(1, 1, 1).expect("tile");
        assert_eq!((t.width, t.height), (244, 44));
        assert!(t.data.iter().all(|&v| v == 100));
        assert!(m.read_tile(2, 1, 0).is_err());
    }
}
