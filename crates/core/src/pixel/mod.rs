//! Pixel operations on [`Raster`]s: resize, colour treatment, mirror and rotation.
//! Pure functions, no I/O; the pipeline calls them in a fixed order.

pub mod colour;
pub mod tone;

use crate::raster::Raster;
use crate::view::{Quality, Rotation};
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

/// Resampling filter (INTERPOLATION: 0 nearest, 1 bilinear, 2 bicubic, 3 Lanczos-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// Nearest neighbour: fastest, blocky.
    Nearest,
    /// Bilinear (area-aware when shrinking): the original's default.
    Bilinear,
    /// Catmull-Rom bicubic.
    Bicubic,
    /// Lanczos-3: sharpest.
    Lanczos3,
}

impl Interpolation {
    /// Maps the INTERPOLATION setting to a filter; unknown values fall back to bilinear.
    pub fn from_setting(v: u8) -> Interpolation {
        match v {
            0 => Interpolation::Nearest,
            2 => Interpolation::Bicubic,
            3 => Interpolation::Lanczos3,
            _ => Interpolation::Bilinear,
        }
    }

    fn algorithm(self) -> ResizeAlg {
        match self {
            Interpolation::Nearest => ResizeAlg::Nearest,
            Interpolation::Bilinear => ResizeAlg::Convolution(FilterType::Bilinear),
            Interpolation::Bicubic => ResizeAlg::Convolution(FilterType::CatmullRom),
            Interpolation::Lanczos3 => ResizeAlg::Convolution(FilterType::Lanczos3),
        }
    }
}

/// A sub-pixel source window for [`resize`]: left, top, width, height in source pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Left edge.
    pub left: f64,
    /// Top edge.
    pub top: f64,
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
}

fn pixel_type(channels: u8) -> PixelType {
    match channels {
        1 => PixelType::U8,
        2 => PixelType::U8x2,
        3 => PixelType::U8x3,
        _ => PixelType::U8x4,
    }
}

/// Resamples the `window` of `src` to `width`×`height`. The window is clamped to the source.
pub fn resize(
    src: &Raster,
    window: Window,
    width: u32,
    height: u32,
    filter: Interpolation,
) -> Raster {
    let pt = pixel_type(src.channels);
    let Ok(src_view) = ImageRef::new(src.width, src.height, &src.data, pt) else {
        return Raster::filled(width, height, src.channels, 0);
    };
    let mut dst = Image::new(width, height, pt);
    let left = window.left.clamp(0.0, src.width as f64);
    let top = window.top.clamp(0.0, src.height as f64);
    let w = window
        .width
        .min(src.width as f64 - left)
        .max(f64::MIN_POSITIVE);
    let h = window
        .height
        .min(src.height as f64 - top)
        .max(f64::MIN_POSITIVE);
    let opts = ResizeOptions::new()
        .resize_alg(filter.algorithm())
        .crop(left, top, w, h)
        .use_alpha(false);
    let mut resizer = Resizer::new();
    if resizer.resize(&src_view, &mut dst, &opts).is_err() {
        return Raster::filled(width, height, src.channels, 0);
    }
    Raster {
        width,
        height,
        channels: src.channels,
        data: dst.into_vec(),
    }
}

/// Rec. 601 luma of an RGB triple in 22-bit fixed point, truncated, as the original
/// computes greyscale (so grey answers match it exactly).
fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((1_254_097 * r as u32 + 2_462_056 * g as u32 + 478_151 * b as u32) >> 22) as u8
}

/// Converts to one grey channel (alpha dropped).
pub fn to_gray(src: &Raster) -> Raster {
    let ch = src.channels as usize;
    let data: Vec<u8> = match ch {
        1 => return src.clone(),
        2 => src.data.chunks_exact(2).map(|p| p[0]).collect(),
        _ => src
            .data
            .chunks_exact(ch)
            .map(|p| luma(p[0], p[1], p[2]))
            .collect(),
    };
    Raster {
        width: src.width,
        height: src.height,
        channels: 1,
        data,
    }
}

/// Applies the colour treatment: greyscale, or black and white split at `threshold`
/// (the image's Otsu level, see [`tone::otsu`]).
pub fn apply_quality(src: Raster, quality: Quality, threshold: u8) -> Raster {
    match quality {
        Quality::Default => src,
        Quality::Gray => to_gray(&src),
        Quality::Bitonal => tone::threshold(to_gray(&src), threshold),
    }
}

/// Mirrors horizontally.
pub fn mirror(src: &Raster) -> Raster {
    let ch = src.channels as usize;
    let mut out = src.clone();
    for (srow, drow) in src
        .data
        .chunks_exact(src.stride())
        .zip(out.data.chunks_exact_mut(src.stride()))
    {
        for (i, px) in srow.chunks_exact(ch).rev().enumerate() {
            drow[i * ch..(i + 1) * ch].copy_from_slice(px);
        }
    }
    out
}

/// Rotates clockwise by `turns` quarter turns (exact, no resampling).
pub(crate) fn rotate_quarters(src: &Raster, turns: u32) -> Raster {
    let (w, h, ch) = (
        src.width as usize,
        src.height as usize,
        src.channels as usize,
    );
    match turns % 4 {
        0 => src.clone(),
        2 => {
            let mut out = src.clone();
            for (i, px) in src.data.chunks_exact(ch).rev().enumerate() {
                out.data[i * ch..(i + 1) * ch].copy_from_slice(px);
            }
            out
        }
        t => {
            let mut out = Raster::filled(h as u32, w as u32, src.channels, 0);
            for y in 0..h {
                for x in 0..w {
                    // clockwise: (x, y) -> (h-1-y, x); counter-clockwise: (y, w-1-x)
                    let (dx, dy) = if t == 1 {
                        (h - 1 - y, x)
                    } else {
                        (y, w - 1 - x)
                    };
                    let s = (y * w + x) * ch;
                    let d = (dy * h + dx) * ch;
                    out.data[d..d + ch].copy_from_slice(&src.data[s..s + ch]);
                }
            }
            out
        }
    }
}

/// Adds an opaque alpha channel (grey → grey+alpha, RGB → RGBA); rasters with alpha are
/// returned unchanged.
fn with_alpha(src: &Raster) -> Raster {
    if src.channels == 2 || src.channels == 4 {
        return src.clone();
    }
    let ch = src.channels as usize;
    let mut data = Vec::with_capacity(src.data.len() / ch * (ch + 1));
    for px in src.data.chunks_exact(ch) {
        data.extend_from_slice(px);
        data.push(255);
    }
    Raster {
        width: src.width,
        height: src.height,
        channels: src.channels + 1,
        data,
    }
}

/// Rotates clockwise by any angle with bilinear sampling into the bounding box. Uncovered
/// corners are transparent when `transparent` (an alpha channel is added), white otherwise.
pub(crate) fn rotate_any(src: &Raster, degrees: f64, transparent: bool) -> Raster {
    let src = if transparent {
        with_alpha(src)
    } else {
        src.clone()
    };
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (sw, sh) = (src.width as f64, src.height as f64);
    let ow = (sw * cos.abs() + sh * sin.abs()).round().max(1.0) as u32;
    let oh = (sw * sin.abs() + sh * cos.abs()).round().max(1.0) as u32;
    let ch = src.channels as usize;
    let background = if transparent { 0 } else { 255 };
    let mut out = Raster::filled(ow, oh, src.channels, background);
    let (ocx, ocy, scx, scy) = (ow as f64 / 2.0, oh as f64 / 2.0, sw / 2.0, sh / 2.0);
    let mut px = vec![0f64; ch];
    for oy in 0..oh {
        for ox in 0..ow {
            let (dx, dy) = (ox as f64 + 0.5 - ocx, oy as f64 + 0.5 - ocy);
            // inverse of a clockwise rotation
            let sx = cos * dx + sin * dy + scx - 0.5;
            let sy = -sin * dx + cos * dy + scy - 0.5;
            if sx < -0.5 || sy < -0.5 || sx > sw - 0.5 || sy > sh - 0.5 {
                continue;
            }
            sample_bilinear(&src, sx, sy, &mut px);
            let d = (oy as usize * ow as usize + ox as usize) * ch;
            for (o, v) in out.data[d..d + ch].iter_mut().zip(&px) {
                *o = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

fn sample_bilinear(src: &Raster, x: f64, y: f64, out: &mut [f64]) {
    let ch = src.channels as usize;
    let clampx = |v: f64| v.clamp(0.0, src.width as f64 - 1.0);
    let clampy = |v: f64| v.clamp(0.0, src.height as f64 - 1.0);
    let (x, y) = (clampx(x), clampy(y));
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let x1 = clampx(x0 as f64 + 1.0) as usize;
    let y1 = clampy(y0 as f64 + 1.0) as usize;
    let (fx, fy) = (x - x0 as f64, y - y0 as f64);
    let at =
        |xx: usize, yy: usize, c: usize| src.data[(yy * src.width as usize + xx) * ch + c] as f64;
    for (c, o) in out.iter_mut().enumerate() {
        let top = at(x0, y0, c) * (1.0 - fx) + at(x1, y0, c) * fx;
        let bottom = at(x0, y1, c) * (1.0 - fx) + at(x1, y1, c) * fx;
        *o = top * (1.0 - fy) + bottom * fy;
    }
}

/// Applies a [`Rotation`]: mirror first, then the clockwise rotation.
pub fn apply_rotation(src: Raster, rotation: Rotation, transparent: bool) -> Raster {
    let src = if rotation.mirror { mirror(&src) } else { src };
    match rotation.quarter_turns() {
        Some(0) => src,
        Some(t) => rotate_quarters(&src, t),
        None => rotate_any(&src, rotation.degrees, transparent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: u32, h: u32) -> Raster {
        let data = (0..w * h).map(|i| i as u8).collect();
        Raster::from_vec(w, h, 1, data).expect("size")
    }

    #[test]
    fn quarter_turns_compose_to_identity() {
        let r = ramp(5, 3);
        let once = rotate_quarters(&r, 1);
        assert_eq!((once.width, once.height), (3, 5));
        // top-left after a clockwise turn is the old bottom-left
        assert_eq!(once.data[0], r.data[2 * 5]);
        let back = rotate_quarters(&rotate_quarters(&rotate_quarters(&once, 1), 1), 1);
        assert_eq!(back, r);
        assert_eq!(rotate_quarters(&rotate_quarters(&r, 2), 2), r);
    }

    #[test]
    fn mirror_reverses_rows() {
        let r = ramp(4, 2);
        let m = mirror(&r);
        assert_eq!(m.data, vec![3, 2, 1, 0, 7, 6, 5, 4]);
    }

    #[test]
    fn rotate_any_grows_and_fills_background() {
        let r = Raster::filled(10, 10, 3, 0);
        let out = rotate_any(&r, 45.0, false);
        assert_eq!((out.width, out.height), (14, 14));
        assert_eq!(&out.data[..3], &[255, 255, 255]);
        let centre = ((7 * 14) + 7) * 3;
        assert_eq!(&out.data[centre..centre + 3], &[0, 0, 0]);
        let t = rotate_any(&r, 30.0, true);
        assert_eq!(t.channels, 4);
        assert_eq!(t.data[3], 0);
    }

    #[test]
    fn bitonal_is_black_or_white() {
        let r = ramp(16, 16);
        let b = apply_quality(r, Quality::Bitonal, 128);
        assert!(b.data.iter().all(|&v| v == 0 || v == 255));
    }

    #[test]
    fn resize_halves_a_flat_image() {
        let r = Raster::filled(8, 8, 3, 77);
        let w = Window {
            left: 0.0,
            top: 0.0,
            width: 8.0,
            height: 8.0,
        };
        let out = resize(&r, w, 4, 4, Interpolation::Bilinear);
        assert_eq!((out.width, out.height, out.channels), (4, 4, 3));
        assert!(out.data.iter().all(|&v| v == 77));
    }
}
