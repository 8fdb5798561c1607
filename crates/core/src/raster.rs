//! Interleaved pixel buffers: what tiles decode into, what the pipeline works on and what
//! encoders take. Pure data, no I/O. 8-bit [`Raster`]s carry most images end to end;
//! [`FloatRaster`]s carry 16-bit, 32-bit and CIELAB samples until they are brought to 8 bits.

use crate::view::Rect;

/// Interleaved pixels of sample type `T`, `channels` samples per pixel, rows packed without
/// padding.
#[derive(Debug, Clone, PartialEq)]
pub struct Pixels<T> {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Samples per pixel: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA.
    pub channels: u8,
    /// `width * height * channels` samples.
    pub data: Vec<T>,
}

/// 8-bit pixels: what most images are, and what every encoder takes.
pub type Raster = Pixels<u8>;

/// Float pixels in the image's own units (16-bit, 32-bit, CIELAB samples), before they are
/// brought to 8 bits by the processing pipeline.
pub type FloatRaster = Pixels<f32>;

impl<T: Copy + Default> Pixels<T> {
    /// A raster filled with one sample value.
    pub fn filled(width: u32, height: u32, channels: u8, value: T) -> Pixels<T> {
        Pixels {
            width,
            height,
            channels,
            data: vec![value; width as usize * height as usize * channels as usize],
        }
    }

    /// Wraps existing pixel data; `None` when the length does not match the dimensions.
    pub fn from_vec(width: u32, height: u32, channels: u8, data: Vec<T>) -> Option<Pixels<T>> {
        (data.len() == width as usize * height as usize * channels as usize).then_some(Pixels {
            width,
            height,
            channels,
            data,
        })
    }

    /// Bytes per row.
    pub fn stride(&self) -> usize {
        self.width as usize * self.channels as usize
    }

    /// Copies the block `from` of `src` to (`dx`, `dy`) of `self`.
    /// Both rasters must have the same channel count and the blocks must fit.
    pub fn blit(&mut self, src: &Pixels<T>, from: Rect, dx: u32, dy: u32) {
        let ch = self.channels as usize;
        let row = from.w as usize * ch;
        for r in 0..from.h as usize {
            let s = (from.y as usize + r) * src.stride() + from.x as usize * ch;
            let d = (dy as usize + r) * self.stride() + dx as usize * ch;
            self.data[d..d + row].copy_from_slice(&src.data[s..s + row]);
        }
    }

    /// The `w`×`h` block at (`x`, `y`) as a new raster.
    pub fn crop(&self, x: u32, y: u32, w: u32, h: u32) -> Pixels<T> {
        let mut out = Pixels::filled(w, h, self.channels, T::default());
        out.blit(self, Rect { x, y, w, h }, 0, 0);
        out
    }
}

/// Samples a 2×2 box average can be taken of (8 and 16-bit): the one halving that builds
/// every pyramid made here (in-memory images, TIFF writing, `iipsrv convert`).
pub trait Average: Copy + Default {
    /// The rounded mean of four samples.
    fn mean4(a: Self, b: Self, c: Self, d: Self) -> Self;
}

impl Average for u8 {
    fn mean4(a: u8, b: u8, c: u8, d: u8) -> u8 {
        ((a as u32 + b as u32 + c as u32 + d as u32 + 2) / 4) as u8
    }
}

impl Average for u16 {
    fn mean4(a: u16, b: u16, c: u16, d: u16) -> u16 {
        ((a as u32 + b as u32 + c as u32 + d as u32 + 2) / 4) as u16
    }
}

impl<T: Average> Pixels<T> {
    /// The first `rows` rows halved into `width` columns (at most half of each): every
    /// pixel the rounded mean of a 2×2 block, an odd last row or column dropped, as libvips
    /// does. `rows` may stop short of the height when rows arrive in bands.
    pub fn halve_rows(&self, rows: u32, width: u32) -> Pixels<T> {
        let ch = self.channels as usize;
        let stride = self.stride();
        let (rows, width) = (rows.min(self.height) / 2, width.min(self.width / 2));
        let mut out = Pixels::filled(width, rows, self.channels, T::default());
        let out_stride = out.stride();
        for (y, row) in out.data.chunks_exact_mut(out_stride.max(1)).enumerate() {
            let a = &self.data[2 * y * stride..];
            let b = &self.data[(2 * y + 1) * stride..];
            for x in 0..width as usize {
                for c in 0..ch {
                    let (l, r) = (2 * x * ch + c, (2 * x + 1) * ch + c);
                    row[x * ch + c] = T::mean4(a[l], a[r], b[l], b[r]);
                }
            }
        }
        out
    }

    /// The whole raster halved (floor sizes).
    pub fn halved(&self) -> Pixels<T> {
        self.halve_rows(self.height, self.width / 2)
    }
}

/// The pyramid of `full`, largest first: each level half the previous until it fits in
/// one `tile` × `tile` tile (or a side is under 2 pixels).
pub fn pyramid<T: Average>(full: Pixels<T>, tile: u32) -> Vec<Pixels<T>> {
    let mut levels = vec![full];
    while let Some(last) = levels.last() {
        if (last.width <= tile && last.height <= tile) || last.width < 2 || last.height < 2 {
            break;
        }
        let next = last.halved();
        levels.push(next);
    }
    levels
}

impl Raster {
    /// The same pixels as floats (0-255).
    pub fn to_float(&self) -> FloatRaster {
        FloatRaster {
            width: self.width,
            height: self.height,
            channels: self.channels,
            data: self.data.iter().map(|&v| v as f32).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_and_blit_round_trip() {
        let data: Vec<u8> = (0..4 * 3 * 3).map(|i| i as u8).collect();
        let r = Raster::from_vec(4, 3, 3, data).expect("size");
        let c = r.crop(1, 1, 2, 2);
        assert_eq!(&c.data[..3], &r.data[(4 + 1) * 3..(4 + 1) * 3 + 3]);
        let mut back = Raster::filled(4, 3, 3, 0);
        back.blit(
            &c,
            Rect {
                x: 0,
                y: 0,
                w: 2,
                h: 2,
            },
            1,
            1,
        );
        assert_eq!(back.crop(1, 1, 2, 2), c);
    }

    #[test]
    fn halving_averages_blocks_and_drops_odd_edges() {
        let r = Raster::from_vec(3, 3, 1, vec![0, 10, 99, 20, 30, 99, 99, 99, 99]).expect("raster");
        assert_eq!(r.halved().data, vec![15]);
        let wide = Pixels::<u16>::filled(1000, 600, 2, 40000);
        let sizes: Vec<(u32, u32)> = pyramid(wide, 256)
            .iter()
            .map(|l| (l.width, l.height))
            .collect();
        assert_eq!(sizes, vec![(1000, 600), (500, 300), (250, 150)]);
    }

    #[test]
    fn from_vec_checks_length() {
        assert!(Raster::from_vec(2, 2, 3, vec![0; 11]).is_none());
    }
}
