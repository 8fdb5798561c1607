//! A small TIFF writer: little-endian classic TIFF, 8-bit grey/RGB (optionally with alpha),
//! one IFD per pyramid level, tiled or as one strip, compressed with none, LZW, deflate,
//! zstd or JPEG. Used for TIFF answers and to make pyramidal images (the demo image, tests).
//!
//! Written here rather than taken from the `tiff` crate because that encoder cannot write
//! JPEG-compressed tiles nor a pyramid of reduced-resolution IFDs.

use super::{jpeg, lossless, webp};
use crate::raster::Raster;
use crate::view::Rect;

/// Compression of the written pixel data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Compression {
    /// Uncompressed (1).
    None,
    /// LZW (5).
    Lzw,
    /// Deflate (8).
    Deflate,
    /// zstd (50000).
    Zstd,
    /// JPEG (7) at the given quality; YCbCr 4:2:0 for colour.
    Jpeg(u8),
    /// WebP (50001) at the given quality, or lossless for `None`.
    Webp(Option<f32>),
}

impl Compression {
    /// The TIFF Compression tag value.
    pub fn code(self) -> u16 {
        match self {
            Compression::None => 1,
            Compression::Lzw => 5,
            Compression::Deflate => 8,
            Compression::Zstd => 50000,
            Compression::Jpeg(_) => 7,
            Compression::Webp(_) => 50001,
        }
    }

    fn compress(self, block: &Raster) -> Result<Vec<u8>, String> {
        Ok(match self {
            Compression::None => block.data.clone(),
            Compression::Lzw => lossless::lzw(&block.data),
            Compression::Deflate => lossless::deflate(&block.data),
            Compression::Zstd => lossless::zstd_compress(&block.data),
            Compression::Jpeg(q) => jpeg::encode(block, q)?,
            Compression::Webp(q) => webp::encode(block, q)?,
        })
    }
}

const SHORT: u16 = 3;
const LONG: u16 = 4;
const UNDEFINED: u16 = 7;

struct Entry {
    tag: u16,
    kind: u16,
    count: u32,
    bytes: Vec<u8>,
}

fn shorts(tag: u16, v: &[u16]) -> Entry {
    Entry {
        tag,
        kind: SHORT,
        count: v.len() as u32,
        bytes: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

fn longs(tag: u16, v: &[u32]) -> Entry {
    Entry {
        tag,
        kind: LONG,
        count: v.len() as u32,
        bytes: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

/// Writes `levels` (largest first) as one TIFF. `tile` = Some(size) writes square tiles of
/// that size (a multiple of 16), None one strip per level. The ICC profile goes on level 0.
pub fn write(
    levels: &[Raster],
    tile: Option<u32>,
    compression: Compression,
    icc: Option<&[u8]>,
) -> Result<Vec<u8>, String> {
    let mut out = vec![b'I', b'I', 42, 0, 0, 0, 0, 0];
    let mut next_field = 4usize;
    for (i, level) in levels.iter().enumerate() {
        if level.channels == 0 || level.channels > 4 {
            return Err(format!("cannot write {} channels", level.channels));
        }
        let (tw, th) = tile.map_or((level.width, level.height), |t| (t, t));
        let blocks = split_blocks(level, tw, th);
        let mut offsets = Vec::with_capacity(blocks.len());
        let mut counts = Vec::with_capacity(blocks.len());
        for b in &blocks {
            let data = compression.compress(b)?;
            pad_even(&mut out);
            offsets.push(u32::try_from(out.len()).map_err(|_| "TIFF over 4 GB")?);
            counts.push(data.len() as u32);
            out.extend_from_slice(&data);
        }
        let entries = level_entries(
            level,
            i,
            tile.map(|_| (tw, th)),
            compression,
            &offsets,
            &counts,
            icc,
        );
        pad_even(&mut out);
        let ifd = u32::try_from(out.len()).map_err(|_| "TIFF over 4 GB")?;
        out[next_field..next_field + 4].copy_from_slice(&ifd.to_le_bytes());
        next_field = write_ifd(&mut out, &entries);
    }
    Ok(out)
}

fn pad_even(out: &mut Vec<u8>) {
    if out.len() % 2 == 1 {
        out.push(0);
    }
}

/// Cuts a level into tiles (edge tiles padded to the full tile size by repeating nothing:
/// zeros) or returns it whole for one strip.
fn split_blocks(level: &Raster, tw: u32, th: u32) -> Vec<Raster> {
    if tw == level.width && th == level.height {
        return vec![level.clone()];
    }
    let mut blocks = Vec::new();
    for ty in 0..level.height.div_ceil(th) {
        for tx in 0..level.width.div_ceil(tw) {
            let (x, y) = (tx * tw, ty * th);
            let w = tw.min(level.width - x);
            let h = th.min(level.height - y);
            let mut b = Raster::filled(tw, th, level.channels, 0);
            b.blit(level, Rect { x, y, w, h }, 0, 0);
            blocks.push(b);
        }
    }
    blocks
}

fn level_entries(
    level: &Raster,
    index: usize,
    tile: Option<(u32, u32)>,
    compression: Compression,
    offsets: &[u32],
    counts: &[u32],
    icc: Option<&[u8]>,
) -> Vec<Entry> {
    let ch = level.channels as u16;
    let colour = ch >= 3;
    let jpeg_colour = colour && matches!(compression, Compression::Jpeg(_));
    let photometric = match (colour, jpeg_colour) {
        (_, true) => 6,
        (true, false) => 2,
        (false, _) => 1,
    };
    let mut e = vec![
        longs(254, &[u32::from(index > 0)]),
        longs(256, &[level.width]),
        longs(257, &[level.height]),
        shorts(258, &vec![8; ch as usize]),
        shorts(259, &[compression.code()]),
        shorts(262, &[photometric]),
    ];
    match tile {
        None => {
            e.push(longs(273, offsets));
            e.push(shorts(277, &[ch]));
            e.push(longs(278, &[level.height]));
            e.push(longs(279, counts));
            e.push(shorts(284, &[1]));
        }
        Some((tw, th)) => {
            e.push(shorts(277, &[ch]));
            e.push(shorts(284, &[1]));
            e.push(longs(322, &[tw]));
            e.push(longs(323, &[th]));
            e.push(longs(324, offsets));
            e.push(longs(325, counts));
        }
    }
    if ch == 2 || ch == 4 {
        e.push(shorts(338, &[2]));
    }
    if jpeg_colour {
        e.push(shorts(530, &[2, 2]));
    }
    if let (0, Some(p)) = (index, icc) {
        e.push(Entry {
            tag: 34675,
            kind: UNDEFINED,
            count: p.len() as u32,
            bytes: p.to_vec(),
        });
    }
    e
}

/// Writes one IFD at the end of `out` with its out-of-line values after it; returns the
/// position of its next-IFD field.
fn write_ifd(out: &mut Vec<u8>, entries: &[Entry]) -> usize {
    let start = out.len();
    let next_field = start + 2 + 12 * entries.len();
    let mut extra_pos = next_field + 4;
    let mut extra = Vec::new();
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for e in entries {
        out.extend_from_slice(&e.tag.to_le_bytes());
        out.extend_from_slice(&e.kind.to_le_bytes());
        out.extend_from_slice(&e.count.to_le_bytes());
        if e.bytes.len() <= 4 {
            let mut v = e.bytes.clone();
            v.resize(4, 0);
            out.extend_from_slice(&v);
        } else {
            out.extend_from_slice(&(extra_pos as u32).to_le_bytes());
            extra.extend_from_slice(&e.bytes);
            if e.bytes.len() % 2 == 1 {
                extra.push(0);
            }
            extra_pos = next_field + 4 + extra.len();
        }
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&extra);
    next_field
}

/// Halves a raster (2×2 box average, odd last row/column dropped as libvips does).
pub fn halve(src: &Raster) -> Raster {
    let (w, h, ch) = (src.width / 2, src.height / 2, src.channels as usize);
    let mut out = Raster::filled(w.max(1), h.max(1), src.channels, 0);
    let stride = src.stride();
    for y in 0..h as usize {
        for x in 0..w as usize {
            for c in 0..ch {
                let at = |yy: usize, xx: usize| src.data[yy * stride + xx * ch + c] as u32;
                let s = at(2 * y, 2 * x)
                    + at(2 * y, 2 * x + 1)
                    + at(2 * y + 1, 2 * x)
                    + at(2 * y + 1, 2 * x + 1);
                out.data[(y * w as usize + x) * ch + c] = ((s + 2) / 4) as u8;
            }
        }
    }
    out
}

/// The pyramid of `full`: each level half the previous until it fits in one `tile`.
pub fn pyramid(full: Raster, tile: u32) -> Vec<Raster> {
    let mut levels = vec![full];
    while let Some(last) = levels.last() {
        if (last.width <= tile && last.height <= tile) || last.width < 2 || last.height < 2 {
            break;
        }
        let next = halve(last);
        levels.push(next);
    }
    levels
}
