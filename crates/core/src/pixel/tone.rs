//! Tone and colour processing of the original's float pipeline (IIP MINMAX, SHD, CTW, GAM,
//! INV, CMP, CNV, CNT) and the histogram operations (CNT=st, CNT=eq, bitonal threshold).
//!
//! Samples are normalised to 0-1 with each channel's input range, processed in the
//! original's order — shade, twist, gamma or log, invert, colour map, convolution — and
//! brought back to 8 bits by the contrast step (multiply, clip, truncate), as the original
//! does. The histogram is one 256-bin count of the channel average over the image's
//! smallest level, so every tile of an image is treated alike.
//!
//! Written for this project from the original's documented behaviour and its answers; the
//! original reads out of bounds when hill-shading single-channel data, ours shades a height
//! field instead (see [`shade`]).

use crate::raster::{FloatRaster, Raster};
use crate::view::{Colormap, Contrast, Gamma, Process};

/// A 256-bin histogram of channel averages.
pub type Histogram = [u32; 256];

/// Samples as floats, interleaved, with their geometry.
struct Floats {
    width: u32,
    height: u32,
    channels: usize,
    data: Vec<f32>,
}

/// Runs the float pipeline on 8-bit `src` (at pyramid-level resolution, before resizing).
/// `hist` is needed for [`Contrast::Stretch`]; without it the full 0-255 range is used.
pub fn apply(src: &Raster, p: &Process, hist: Option<&Histogram>) -> Raster {
    let full = vec![(0.0, 255.0); src.channels as usize];
    apply_float(src.to_float(), &full, p, hist)
}

/// Runs the float pipeline on samples in the image's own units, `ranges` being each
/// channel's (min, max) when the request sets none (SMin/SMaxSampleValue or the type's
/// range): this is how 16-bit and float images become 8-bit answers.
pub fn apply_float(
    src: FloatRaster,
    ranges: &[(f32, f32)],
    p: &Process,
    hist: Option<&Histogram>,
) -> Raster {
    let ranges = input_ranges(ranges, p, hist);
    let mut f = normalise(src, &ranges);
    if let Some((h, v)) = p.shade {
        f = shade(&f, h, v);
    }
    if p.clip {
        map(&mut f, |v| v.clamp(0.0, 1.0));
    }
    if let Some(m) = &p.twist {
        f = twist(&f, m);
    }
    match p.gamma {
        Some(Gamma::Power(g)) if g != 1.0 => map(&mut f, |v| v.max(0.0).powf(g)),
        Some(Gamma::Log) => {
            let scale = 1.0 / 256f32.ln();
            map(&mut f, |v| scale * (1.0 + 255.0 * v).ln())
        }
        _ => {}
    }
    if p.invert {
        map(&mut f, |v| 1.0 - v);
    }
    if let Some(c) = p.colormap {
        f = colormap(&f, c);
    }
    if let Some(k) = &p.convolution {
        f = convolve(&f, k);
    }
    let factor = match p.contrast {
        Some(Contrast::Factor(c)) => c,
        _ => 1.0,
    };
    to_bytes(&f, factor)
}

/// Each channel's (min, max): the image's, then MINMAX overrides, or the histogram's used
/// range (in 1/255ths of the image's) for a stretch.
fn input_ranges(defaults: &[(f32, f32)], p: &Process, hist: Option<&Histogram>) -> Vec<(f32, f32)> {
    let mut ranges = defaults.to_vec();
    let channels = ranges.len();
    for r in &p.ranges {
        match r.channel {
            Some(c) if c < channels => ranges[c] = (r.min, r.max),
            Some(_) => {}
            None => ranges.iter_mut().for_each(|x| *x = (r.min, r.max)),
        }
    }
    if let (Some(Contrast::Stretch), Some(h)) = (p.contrast, hist) {
        if let (Some(lo), Some(hi)) = (
            h.iter().position(|&n| n > 0),
            h.iter().rposition(|&n| n > 0),
        ) {
            let at = |(a, b): (f32, f32), k: usize| a + (b - a) * k as f32 / 255.0;
            ranges
                .iter_mut()
                .for_each(|x| *x = (at(*x, lo), at(*x, hi)));
        }
    }
    ranges
}

fn normalise(src: FloatRaster, ranges: &[(f32, f32)]) -> Floats {
    let ch = src.channels as usize;
    let scale: Vec<(f32, f32)> = ranges
        .iter()
        .map(|&(lo, hi)| {
            let d = hi - lo;
            (lo, if d.abs() > 1e-30 { 1.0 / d } else { 1e30 })
        })
        .collect();
    let mut data = src.data;
    for p in data.chunks_exact_mut(ch) {
        for (v, &(lo, inv)) in p.iter_mut().zip(&scale) {
            *v = (*v - lo) * inv;
        }
    }
    Floats {
        width: src.width,
        height: src.height,
        channels: ch,
        data,
    }
}

fn map(f: &mut Floats, op: impl Fn(f32) -> f32) {
    f.data.iter_mut().for_each(|v| *v = op(*v));
}

/// The light direction of SHD in the original's convention for normal maps: azimuth from
/// 12 o'clock, elevation downwards from the horizontal.
fn light(h_angle: i32, v_angle: i32) -> [f32; 3] {
    let a = (h_angle as f32).to_radians();
    let sy = a.cos();
    let mut sx = (1.0 - sy * sy).max(0.0).sqrt();
    if h_angle > 180 {
        sx = -sx;
    }
    let sz = -(v_angle as f32).to_radians().sin();
    let n = (sx * sx + sy * sy + sz * sz).sqrt().max(1e-12);
    [sx / n, sy / n, sz / n]
}

/// SHD: hill shading to one channel. Three-channel images are surface-normal maps, shaded
/// as the original does (half the dot product of light and normal, clipped to 0-1).
/// Single-channel images are height fields: normals from Horn's 3×3 gradient (heights in
/// 8-bit units per pixel) and Lambertian shading with the light at the given azimuth
/// (clockwise from north) and elevation above the horizon.
fn shade(f: &Floats, h: i32, v: i32) -> Floats {
    let data = if f.channels >= 3 {
        let s = light(h, v);
        f.data
            .chunks_exact(f.channels)
            .map(|p| {
                if p[0] == 0.0 && p[1] == 0.0 && p[2] == 0.0 {
                    return 0.0;
                }
                let o = [(0.5 - p[0]) * 2.0, (0.5 - p[1]) * 2.0, (0.5 - p[2]) * 2.0];
                (0.5 * (s[0] * o[0] + s[1] * o[1] + s[2] * o[2])).clamp(0.0, 1.0)
            })
            .collect()
    } else {
        shade_heights(f, h, v)
    };
    Floats {
        width: f.width,
        height: f.height,
        channels: 1,
        data,
    }
}

fn shade_heights(f: &Floats, h: i32, v: i32) -> Vec<f32> {
    let (w, ht, ch) = (f.width as i64, f.height as i64, f.channels);
    let at = |x: i64, y: i64| f.data[((y.clamp(0, ht - 1) * w + x.clamp(0, w - 1)) as usize) * ch];
    let (az, el) = ((h as f32).to_radians(), (v as f32).to_radians());
    let l = [az.sin() * el.cos(), -az.cos() * el.cos(), el.sin()];
    let mut out = Vec::with_capacity((w * ht) as usize);
    for y in 0..ht {
        for x in 0..w {
            let dx = (at(x + 1, y - 1) + 2.0 * at(x + 1, y) + at(x + 1, y + 1))
                - (at(x - 1, y - 1) + 2.0 * at(x - 1, y) + at(x - 1, y + 1));
            let dy = (at(x - 1, y + 1) + 2.0 * at(x, y + 1) + at(x + 1, y + 1))
                - (at(x - 1, y - 1) + 2.0 * at(x, y - 1) + at(x + 1, y - 1));
            let (nx, ny) = (-dx * 255.0 / 8.0, -dy * 255.0 / 8.0);
            let n = (nx * nx + ny * ny + 1.0).sqrt();
            out.push(((nx * l[0] + ny * l[1] + l[2]) / n).clamp(0.0, 1.0));
        }
    }
    out
}

/// CTW: each row of the matrix makes one output channel from the input channels.
fn twist(f: &Floats, m: &[Vec<f32>]) -> Floats {
    let rows = m.len().max(1);
    let mut data = Vec::with_capacity(f.data.len() / f.channels * rows);
    for p in f.data.chunks_exact(f.channels) {
        for row in m {
            data.push(row.iter().zip(p).map(|(c, v)| c * v).sum());
        }
    }
    Floats {
        width: f.width,
        height: f.height,
        channels: rows,
        data,
    }
}

/// The RGB of a colour map at value `v` (normalised).
fn colour_of(map: Colormap, v: f32) -> [f32; 3] {
    const T: f32 = 1.0 / 3.0;
    const E: f32 = 1.0 / 8.0;
    match map {
        Colormap::Hot | Colormap::Cold => {
            let ramp = if v > 1.0 || v >= 1.0 {
                [1.0, 1.0, 1.0]
            } else if v <= 0.0 {
                [0.0, 0.0, 0.0]
            } else if v < T {
                [3.0 * v, 0.0, 0.0]
            } else if v < 2.0 * T {
                [1.0, 3.0 * v - 1.0, 0.0]
            } else {
                [1.0, 1.0, 3.0 * v - 2.0]
            };
            if map == Colormap::Hot {
                ramp
            } else {
                [ramp[2], ramp[1], ramp[0]]
            }
        }
        Colormap::Jet => {
            if v < 0.0 {
                [0.0, 0.0, 0.0]
            } else if v < E {
                [0.0, 0.0, 4.0 * v + 0.5]
            } else if v < 3.0 * E {
                [0.0, 4.0 * v - 0.5, 1.0]
            } else if v < 5.0 * E {
                [4.0 * v - 1.5, 1.0, 2.5 - 4.0 * v]
            } else if v < 7.0 * E {
                [1.0, 3.5 - 4.0 * v, 0.0]
            } else if v < 1.0 {
                [4.5 - 4.0 * v, 0.0, 0.0]
            } else {
                [0.5, 0.0, 0.0]
            }
        }
        Colormap::Red => [v, 0.0, 0.0],
        Colormap::Green => [0.0, v, 0.0],
        Colormap::Blue => [0.0, 0.0, v],
    }
}

/// CMP: channel 0 through a colour map, to three channels.
fn colormap(f: &Floats, map: Colormap) -> Floats {
    let data = f
        .data
        .chunks_exact(f.channels)
        .flat_map(|p| colour_of(map, p[0]))
        .collect();
    Floats {
        width: f.width,
        height: f.height,
        channels: 3,
        data,
    }
}

/// CNV: convolution with a square kernel, wrapping at the edges as the original does,
/// divided by the kernel's sum when that is positive.
fn convolve(f: &Floats, k: &[f32]) -> Floats {
    let side = (k.len() as f64).sqrt() as i64;
    let half = side / 2;
    let total: f32 = k.iter().sum();
    let norm = if total > 0.0 { 1.0 / total } else { 1.0 };
    let (w, h, ch) = (f.width as i64, f.height as i64, f.channels);
    let mut data = vec![0.0f32; f.data.len()];
    for y in 0..h {
        for x in 0..w {
            for c in 0..ch {
                let mut v = 0.0f32;
                for fy in 0..side {
                    let iy = (y + fy - half).rem_euclid(h);
                    for fx in 0..side {
                        let ix = (x + fx - half).rem_euclid(w);
                        v += f.data[(iy * w + ix) as usize * ch + c] * k[(fy * side + fx) as usize];
                    }
                }
                data[(y * w + x) as usize * ch + c] = v * norm;
            }
        }
    }
    Floats { data, ..*f }
}

/// CNT and the return to 8 bits: v × 255 × factor, clipped and truncated. Twists with
/// more than four rows keep the first four; a twist to two rows is grey plus alpha.
fn to_bytes(f: &Floats, factor: f32) -> Raster {
    let keep = if f.channels > 4 { 3 } else { f.channels };
    let scale = 255.0 * factor;
    let data = f
        .data
        .chunks_exact(f.channels)
        .flat_map(|p| {
            p[..keep]
                .iter()
                .map(|v| (v * scale).clamp(0.0, 255.0) as u8)
        })
        .collect();
    Raster {
        width: f.width,
        height: f.height,
        channels: keep as u8,
        data,
    }
}

/// The histogram of channel averages of an image (alpha included, as the original).
pub fn histogram(r: &Raster) -> Histogram {
    let mut h = [0u32; 256];
    let ch = r.channels as usize;
    for p in r.data.chunks_exact(ch) {
        let sum: u32 = p.iter().map(|&v| v as u32).sum();
        let avg = (sum as f32 / ch as f32).round() as usize;
        h[avg.min(255)] += 1;
    }
    h
}

/// Otsu's threshold: the level that best separates the histogram into two classes.
pub fn otsu(h: &Histogram) -> u8 {
    let total: f64 = h.iter().map(|&n| n as f64).sum();
    let sum: f64 = h
        .iter()
        .enumerate()
        .map(|(i, &n)| i as f64 * n as f64)
        .sum();
    let (mut wb, mut sumb, mut best, mut level) = (0.0f64, 0.0f64, 0.0f64, 0u8);
    for (i, &n) in h.iter().enumerate() {
        wb += n as f64;
        if wb == 0.0 {
            continue;
        }
        let wf = total - wb;
        if wf == 0.0 {
            break;
        }
        sumb += i as f64 * n as f64;
        let (mb, mf) = (sumb / wb, (sum - sumb) / wf);
        let between = wb * wf * (mb - mf) * (mb - mf);
        if between > best {
            best = between;
            level = i as u8;
        }
    }
    level
}

/// Black and white: grey levels below the threshold become 0, the others 255.
pub(crate) fn threshold(mut grey: Raster, level: u8) -> Raster {
    grey.data
        .iter_mut()
        .for_each(|v| *v = if *v < level { 0 } else { 255 });
    grey
}

/// CNT=eq: every sample mapped through the image's cumulative histogram.
pub fn equalise(mut r: Raster, h: &Histogram) -> Raster {
    let total: f64 = h.iter().map(|&n| n as f64).sum::<f64>().max(1.0);
    let mut lut = [0u8; 256];
    let mut cdf = 0.0f64;
    for (i, &n) in h.iter().enumerate() {
        cdf += n as f64;
        lut[i] = (255.0 * cdf / total).round().clamp(0.0, 255.0) as u8;
    }
    r.data.iter_mut().for_each(|v| *v = lut[*v as usize]);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::ChannelRange;

    fn rgb(px: &[[u8; 3]]) -> Raster {
        Raster {
            width: px.len() as u32,
            height: 1,
            channels: 3,
            data: px.iter().flatten().copied().collect(),
        }
    }

    #[test]
    fn gamma_invert_contrast_in_order() {
        let r = rgb(&[[0, 128, 255]]);
        let p = Process {
            gamma: Some(Gamma::Power(2.0)),
            invert: true,
            contrast: Some(Contrast::Factor(2.0)),
            ..Process::default()
        };
        // (1 - v²) × 2, clipped, truncated
        assert_eq!(apply(&r, &p, None).data, vec![255, 255, 0]);
    }

    #[test]
    fn colour_maps_match_the_originals_answers() {
        // values read from Debian's iipsrv 1.1 on uniform patches (JPEG: within 1)
        let r = rgb(&[[200, 100, 50], [10, 20, 30], [128, 128, 128], [255, 0, 0]]);
        let jet = Process {
            colormap: Some(Colormap::Jet),
            ..Process::default()
        };
        let out = apply(&r, &jet, None);
        assert_eq!(
            out.data,
            vec![255, 92, 0, 0, 0, 167, 129, 255, 125, 127, 0, 0]
        );
        let hot = Process {
            colormap: Some(Colormap::Hot),
            ..Process::default()
        };
        assert_eq!(&apply(&r, &hot, None).data[..6], &[255, 255, 90, 30, 0, 0]);
    }

    #[test]
    fn twist_rows_make_output_channels() {
        let r = rgb(&[[200, 100, 50]]);
        let p = Process {
            twist: Some(vec![
                vec![0.0, 1.0, 0.0],
                vec![0.0, 0.0, 1.0],
                vec![1.0, 0.0, 0.0],
            ]),
            ..Process::default()
        };
        assert_eq!(apply(&r, &p, None).data, vec![100, 50, 200]);
        let grey = Process {
            twist: Some(vec![vec![0.5, 0.5, 0.0]]),
            ..Process::default()
        };
        let g = apply(&r, &grey, None);
        assert_eq!((g.channels, g.data[0]), (1, 150));
    }

    #[test]
    fn normal_map_shading_matches_the_original() {
        let r = rgb(&[[200, 100, 50], [10, 20, 30]]);
        let p = Process {
            shade: Some((0, 0)),
            ..Process::default()
        };
        let out = apply(&r, &p, None);
        assert_eq!((out.channels, out.data.clone()), (1, vec![27, 107]));
    }

    #[test]
    fn height_field_shading_lights_slopes_facing_the_light() {
        // a ramp rising to the east: lit from the west (270), dark from the east (90)
        let ramp = Raster {
            width: 8,
            height: 8,
            channels: 1,
            data: (0..64).map(|i| (i % 8) as u8 * 30).collect(),
        };
        let shade = |h| {
            let p = Process {
                shade: Some((h, 30)),
                ..Process::default()
            };
            apply(&ramp, &p, None).data[8 * 4 + 4]
        };
        assert!(shade(270) > shade(90) + 50, "{} {}", shade(270), shade(90));
    }

    #[test]
    fn stretch_uses_the_histogram_range() {
        let r = rgb(&[[20, 20, 20], [128, 128, 128], [74, 74, 74]]);
        let h = histogram(&r);
        let p = Process {
            contrast: Some(Contrast::Stretch),
            ..Process::default()
        };
        assert_eq!(
            apply(&r, &p, Some(&h)).data,
            vec![0, 0, 0, 255, 255, 255, 127, 127, 127]
        );
    }

    #[test]
    fn minmax_sets_one_channel_range() {
        let r = rgb(&[[100, 100, 100]]);
        let p = Process {
            ranges: vec![ChannelRange {
                channel: Some(1),
                min: 50.0,
                max: 150.0,
            }],
            ..Process::default()
        };
        assert_eq!(apply(&r, &p, None).data, vec![100, 127, 100]);
    }

    #[test]
    fn convolution_wraps_and_normalises() {
        let r = Raster {
            width: 3,
            height: 3,
            channels: 1,
            data: vec![0, 0, 0, 0, 90, 0, 0, 0, 0],
        };
        let p = Process {
            convolution: Some(vec![1.0; 9]),
            ..Process::default()
        };
        assert!(apply(&r, &p, None).data.iter().all(|&v| v == 10));
    }

    #[test]
    fn otsu_and_equalise_match_the_originals_answers() {
        // channel averages of the four patches above: 117, 20, 128, 85
        let mut h = [0u32; 256];
        for v in [117, 20, 128, 85] {
            h[v] = 10;
        }
        assert_eq!(otsu(&h), 20);
        let r = Raster {
            width: 4,
            height: 1,
            channels: 1,
            data: vec![10, 100, 200, 50],
        };
        // CNT=eq on the patch (200,100,50) gave (255,127,64), on (10,20,30) (0,64,64)
        assert_eq!(equalise(r, &h).data, vec![0, 128, 255, 64]);
    }
}
