//! WATERMARK: an image added to answers, as the original does it — its colours, scaled by
//! WATERMARK_OPACITY and the watermark's own alpha, added to the pixels and clipped. The
//! answer is cut into blocks of twice the image's tile size; each block gets the watermark
//! with WATERMARK_PROBABILITY, at a random place inside the block when the watermark is
//! smaller. The randomness is seeded by the answer's cache key, so the same request always
//! gives the same bytes (the original draws new numbers each time).

use crate::error::{Error, Result};
use iipsrv_core::raster::Raster;
use iipsrv_formats::source::region::compose;
use std::fmt;
use std::path::Path;

/// Largest watermark accepted, in pixels.
const MAX_WATERMARK_PIXELS: u64 = 16_000_000;

/// A loaded watermark: premultiplied RGB (colour × alpha × opacity) and its placement odds.
pub struct Watermark {
    path: String,
    probability: f32,
    opacity: f32,
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl fmt::Debug for Watermark {
    /// Names the file and settings only: the settings fingerprint includes this text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Watermark({}, p={}, o={}, {}x{})",
            self.path, self.probability, self.opacity, self.width, self.height
        )
    }
}

impl Watermark {
    /// Loads a watermark image (any TIFF the server reads; its full-resolution level).
    pub fn load(path: &Path, probability: f32, opacity: f32) -> Result<Watermark> {
        let src = iipsrv_formats::open::open_source(path)?;
        let l = &src.info().levels[0];
        if l.width as u64 * l.height as u64 > MAX_WATERMARK_PIXELS {
            return Err(Error::BadImage("watermark image is too large".into()));
        }
        let r = compose(src.as_ref(), 0, 0, 0, l.width, l.height)?;
        let ch = r.channels as usize;
        let rgb = r
            .data
            .chunks_exact(ch)
            .flat_map(|p| {
                let (c, a) = match ch {
                    1 => ([p[0]; 3], 255),
                    2 => ([p[0]; 3], p[1]),
                    3 => ([p[0], p[1], p[2]], 255),
                    _ => ([p[0], p[1], p[2]], p[3]),
                };
                let k = opacity.clamp(0.0, 1.0) * a as f32 / 255.0;
                c.map(|v| (v as f32 * k) as u8)
            })
            .collect();
        Ok(Watermark {
            path: path.display().to_string(),
            probability: probability.clamp(0.0, 1.0),
            opacity,
            width: r.width,
            height: r.height,
            rgb,
        })
    }

    /// Adds the watermark to `out` in blocks of `block` pixels; `seed` makes the placement
    /// repeatable for one answer.
    pub fn apply(&self, out: &mut Raster, block: u32, seed: u64) {
        let block = block.max(1);
        for by in 0..out.height.div_ceil(block) {
            for bx in 0..out.width.div_ceil(block) {
                let mut rng = Rng(seed ^ ((by as u64) << 32 | bx as u64).wrapping_mul(0x9E37_79B9));
                if rng.next() >= self.probability {
                    continue;
                }
                let (x0, y0) = (bx * block, by * block);
                let (bw, bh) = ((out.width - x0).min(block), (out.height - y0).min(block));
                let dx = (rng.next() * bw.saturating_sub(self.width) as f32) as u32;
                let dy = (rng.next() * bh.saturating_sub(self.height) as f32) as u32;
                self.add(out, x0 + dx, y0 + dy, bw - dx, bh - dy);
            }
        }
    }

    /// Adds the watermark with its top left at (x, y), limited to `w`×`h`.
    fn add(&self, out: &mut Raster, x: u32, y: u32, w: u32, h: u32) {
        let ch = out.channels as usize;
        let stride = out.stride();
        for j in 0..h.min(self.height) {
            for i in 0..w.min(self.width) {
                let wm = &self.rgb[((j * self.width + i) * 3) as usize..][..3];
                let at = (y + j) as usize * stride + (x + i) as usize * ch;
                let px = &mut out.data[at..at + ch];
                if ch >= 3 {
                    for k in 0..3 {
                        px[k] = px[k].saturating_add(wm[k]);
                    }
                } else {
                    let grey = ((wm[0] as u32 * 299 + wm[1] as u32 * 587 + wm[2] as u32 * 114)
                        / 1000) as u8;
                    px[0] = px[0].saturating_add(grey);
                }
            }
        }
    }
}

/// A small deterministic generator (splitmix64) giving floats in [0, 1).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(probability: f32) -> Watermark {
        Watermark {
            path: "t".into(),
            probability,
            opacity: 1.0,
            width: 4,
            height: 4,
            rgb: vec![100; 48],
        }
    }

    #[test]
    fn adds_and_clips_within_each_block() {
        let mut r = Raster::filled(16, 16, 3, 200);
        mark(1.0).apply(&mut r, 8, 7);
        let brightened = r.data.iter().filter(|&&v| v == 255).count();
        assert_eq!(
            brightened,
            4 * 16 * 3,
            "one 4x4 mark in each of the four blocks"
        );
    }

    #[test]
    fn probability_zero_leaves_pixels_and_placement_repeats() {
        let mut r = Raster::filled(16, 16, 1, 10);
        mark(0.0).apply(&mut r, 8, 1);
        assert!(r.data.iter().all(|&v| v == 10));
        let (mut a, mut b) = (Raster::filled(64, 64, 3, 0), Raster::filled(64, 64, 3, 0));
        mark(0.5).apply(&mut a, 16, 42);
        mark(0.5).apply(&mut b, 16, 42);
        assert_eq!(a.data, b.data);
    }
}
