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
    fn from_vec_checks_length() {
        assert!(Raster::from_vec(2, 2, 3, vec![0; 11]).is_none());
    }
}
