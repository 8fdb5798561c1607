//! The streaming pyramid of `iipsrv convert`. Rows of the full image arrive top to bottom;
//! each level keeps one row of tiles. When that row is full it is cut into tiles, encoded
//! in parallel and appended to the output, and its rows are halved (2 × 2 box average, an
//! odd last row or column dropped, as libvips does) into the next level, which does the
//! same. Memory is about two tile rows of the full width, whatever the image height.

use super::error::BuildError;
pub use crate::codec::tiff_writer::Compression;
use crate::codec::tiff_writer::{self, Entry, TiffSink, Value};
use crate::codec::{jpeg, lossless, webp, Embedded};
use iipsrv_core::raster::{Average, Pixels, Raster};
use rayon::prelude::*;
use std::io::{Seek, Write};

/// A sample type the pyramid is built in: 8 or 16-bit unsigned.
pub trait Sample: Average + Send + Sync + 'static {
    /// Bits per sample.
    const BITS: u16;
    /// `self - prev`, wrapping (TIFF horizontal predictor).
    fn minus(self, prev: Self) -> Self;
    /// Appends the samples little endian.
    fn put_le(samples: &[Self], out: &mut Vec<u8>);
}

/// [`Sample`] for an unsigned integer type of `$bits` bits.
macro_rules! unsigned_sample {
    ($t:ty, $bits:expr) => {
        impl Sample for $t {
            const BITS: u16 = $bits;
            fn minus(self, prev: $t) -> $t {
                self.wrapping_sub(prev)
            }
            fn put_le(samples: &[$t], out: &mut Vec<u8>) {
                out.extend(samples.iter().flat_map(|s| s.to_le_bytes()));
            }
        }
    };
}

unsigned_sample!(u8, 8);
unsigned_sample!(u16, 16);

/// Whether a compression gives pixels back exactly (and can keep 16-bit samples).
pub fn lossless(c: Compression) -> bool {
    !matches!(c, Compression::Jpeg(_) | Compression::Webp(_))
}

/// Whether tiles get the horizontal predictor (the lossless compressions do).
fn predictor(c: Compression) -> bool {
    matches!(
        c,
        Compression::Lzw | Compression::Deflate(_) | Compression::Zstd(_)
    )
}

/// One level being built, and (boxed) the levels below it.
pub struct Level<T: Sample> {
    width: u32,
    height: u32,
    channels: u8,
    tile: u32,
    compression: Compression,
    /// The current row of tiles: `tile` rows of the level's width.
    rows: Pixels<T>,
    filled: u32,
    offsets: Vec<u64>,
    counts: Vec<u64>,
    next: Option<Box<Level<T>>>,
}

impl<T: Sample> Level<T> {
    /// The full-resolution level of a `width` × `height` image and, recursively, every
    /// smaller one down to the first that fits in one tile.
    pub fn new(
        width: u32,
        height: u32,
        channels: u8,
        tile: u32,
        compression: Compression,
    ) -> Level<T> {
        let next = (width > tile || height > tile) && width >= 2 && height >= 2;
        Level {
            width,
            height,
            channels,
            tile,
            compression,
            rows: Pixels::filled(width, tile.min(height), channels, T::default()),
            filled: 0,
            offsets: Vec::new(),
            counts: Vec::new(),
            next: next.then(|| {
                Box::new(Level::new(
                    width / 2,
                    height / 2,
                    channels,
                    tile,
                    compression,
                ))
            }),
        }
    }

    /// Takes the next rows of this level (`rows.width` must be the level's width).
    pub fn push<W: Write + Seek>(
        &mut self,
        rows: &Pixels<T>,
        out: &mut TiffSink<W>,
    ) -> Result<(), BuildError> {
        let mut y = 0;
        while y < rows.height {
            let take = (self.rows.height - self.filled).min(rows.height - y);
            let stride = self.rows.stride();
            let (from, to) = (y as usize * stride, (y + take) as usize * stride);
            let at = self.filled as usize * stride;
            self.rows.data[at..at + (to - from)].copy_from_slice(&rows.data[from..to]);
            self.filled += take;
            y += take;
            let done = self.offsets.len() as u32 / self.width.div_ceil(self.tile) * self.tile;
            if self.filled == self.rows.height || done + self.filled >= self.height {
                self.flush(out)?;
            }
        }
        Ok(())
    }

    /// Writes the current row of tiles and hands its rows, halved, to the next level.
    fn flush<W: Write + Seek>(&mut self, out: &mut TiffSink<W>) -> Result<(), BuildError> {
        let across = self.width.div_ceil(self.tile);
        let tiles: Vec<Result<Vec<u8>, BuildError>> = (0..across)
            .into_par_iter()
            .map(|tx| self.encode(&self.tile_at(tx)))
            .collect();
        for t in tiles {
            let data = t?;
            self.offsets.push(out.append(&data)?);
            self.counts.push(data.len() as u64);
        }
        let filled = self.filled;
        self.filled = 0;
        if let Some(next) = self.next.as_mut() {
            let half = self.rows.halve_rows(filled, next.width);
            next.push(&half, out)?;
        }
        Ok(())
    }

    /// Tile `tx` of the current row, edges padded by repeating the last column and row
    /// (no dark fringe in JPEG edge tiles).
    fn tile_at(&self, tx: u32) -> Pixels<T> {
        let (t, ch) = (self.tile as usize, self.channels as usize);
        let x0 = tx as usize * t;
        let mut tile = Pixels::filled(self.tile, self.tile, self.channels, T::default());
        let stride = self.rows.stride();
        for y in 0..t {
            let sy = y.min(self.filled as usize - 1);
            for x in 0..t {
                let sx = (x0 + x).min(self.width as usize - 1);
                let from = sy * stride + sx * ch;
                let to = (y * t + x) * ch;
                tile.data[to..to + ch].copy_from_slice(&self.rows.data[from..from + ch]);
            }
        }
        tile
    }

    fn encode(&self, tile: &Pixels<T>) -> Result<Vec<u8>, BuildError> {
        match self.compression {
            Compression::Jpeg(q) => Ok(jpeg::encode(&as_bytes(tile)?, q)?),
            Compression::Webp(q) => Ok(webp::encode(&as_bytes(tile)?, q)?),
            c => {
                let mut raw = Vec::with_capacity(tile.data.len() * (T::BITS as usize / 8));
                if predictor(c) {
                    T::put_le(&predict(tile), &mut raw);
                } else {
                    T::put_le(&tile.data, &mut raw);
                }
                Ok(match c {
                    Compression::Lzw => lossless::lzw(&raw),
                    Compression::Deflate(l) => lossless::deflate_level(&raw, l.into()),
                    Compression::Zstd(l) => lossless::zstd_level(&raw, l.into()),
                    _ => raw,
                })
            }
        }
    }

    /// The directories of this level and those below, largest first; the ICC profile and
    /// XMP packet of `extra` go on the first.
    pub fn directories(&self, extra: Embedded, out: &mut Vec<Vec<Entry>>) {
        let ch = self.channels as u16;
        let colour = ch >= 3;
        let photometric = match (colour, self.compression) {
            (true, Compression::Jpeg(_)) => 6,
            (true, _) => 2,
            (false, _) => 1,
        };
        let mut e = vec![
            Entry::new(254, Value::Long(vec![u32::from(!out.is_empty())])),
            Entry::new(256, Value::Long(vec![self.width])),
            Entry::new(257, Value::Long(vec![self.height])),
            Entry::new(258, Value::Short(vec![T::BITS; ch as usize])),
            Entry::new(259, Value::Short(vec![self.compression.code()])),
            Entry::new(262, Value::Short(vec![photometric])),
            Entry::new(277, Value::Short(vec![ch])),
            Entry::new(284, Value::Short(vec![1])),
            Entry::new(
                305,
                Value::Ascii(format!("iipsrv convert {}", env!("CARGO_PKG_VERSION"))),
            ),
            Entry::new(322, Value::Long(vec![self.tile])),
            Entry::new(323, Value::Long(vec![self.tile])),
            Entry::new(324, Value::Offsets(self.offsets.clone())),
            Entry::new(325, Value::Offsets(self.counts.clone())),
            Entry::new(339, Value::Short(vec![1; ch as usize])),
        ];
        if predictor(self.compression) {
            e.push(Entry::new(317, Value::Short(vec![2])));
        }
        if ch == 2 || ch == 4 {
            e.push(Entry::new(338, Value::Short(vec![2])));
        }
        if photometric == 6 {
            e.push(Entry::new(530, Value::Short(vec![2, 2])));
        }
        if out.is_empty() {
            e.extend(tiff_writer::embedded_entries(extra));
        }
        out.push(e);
        if let Some(next) = &self.next {
            next.directories(Embedded::default(), out);
        }
    }

    /// Whether every row of every level has been written.
    pub fn complete(&self) -> bool {
        let rows = self.height.div_ceil(self.tile) * self.width.div_ceil(self.tile);
        self.offsets.len() as u32 == rows && self.next.as_ref().is_none_or(|n| n.complete())
    }
}

/// Horizontal differencing (TIFF predictor 2): each sample minus the same channel's sample
/// to its left.
fn predict<T: Sample>(tile: &Pixels<T>) -> Vec<T> {
    let ch = tile.channels as usize;
    let mut out = tile.data.clone();
    for row in out.chunks_mut(tile.stride()) {
        for i in (ch..row.len()).rev() {
            row[i] = row[i].minus(row[i - ch]);
        }
    }
    out
}

/// 8-bit pixels as a [`Raster`] for the JPEG and WebP encoders.
fn as_bytes<T: Sample>(tile: &Pixels<T>) -> Result<Raster, BuildError> {
    if T::BITS != 8 {
        return Err(BuildError::Internal {
            what: "JPEG and WebP tiles hold 8-bit samples",
        });
    }
    let mut data = Vec::with_capacity(tile.data.len());
    T::put_le(&tile.data, &mut data);
    Raster::from_vec(tile.width, tile.height, tile.channels, data)
        .ok_or(BuildError::Internal { what: "bad tile" })
}
