//! Colour conversion of float pixels for display: CIELAB to sRGB with Little CMS, the
//! colour-management library.
//!
//! CIELAB TIFFs are relative to D65 (as libvips writes them and the original reads them),
//! while an ICC Lab profile is relative to the D50 connection space. So L*a*b* becomes
//! D65 XYZ here (the CIE formula), Little CMS's Bradford adaptation takes it to D50, and
//! its sRGB profile makes the RGB (relative colorimetric).

use crate::raster::FloatRaster;
use lcms2::{CIEXYZExt, Flags, Intent, PixelFormat, Profile, ThreadContext, Transform, CIEXYZ};
use std::sync::OnceLock;

/// An XYZ to sRGB transform that threads share: thread context, no cache (`Sync`).
type XyzToRgb = Transform<[f32; 3], [f32; 3], ThreadContext, lcms2::DisallowCache>;

/// The D65 white, Y = 1.
const D65: CIEXYZ = CIEXYZ {
    X: 0.95047,
    Y: 1.0,
    Z: 1.08883,
};

/// The D50 white of the ICC connection space, Y = 1.
const D50: CIEXYZ = CIEXYZ {
    X: 0.96422,
    Y: 1.0,
    Z: 0.82521,
};

/// What the conversion needs, built once: the D65 → D50 adaptation matrix (rows) and the
/// XYZ → sRGB transform.
struct Engine {
    adapt: [[f32; 3]; 3],
    to_rgb: XyzToRgb,
}

/// The shared engine, built on first use; `None` if Little CMS refused to build it.
fn engine() -> Option<&'static Engine> {
    static E: OnceLock<Option<Engine>> = OnceLock::new();
    E.get_or_init(|| {
        let ctx = ThreadContext::new();
        let xyz = Profile::new_xyz_context(&ctx);
        let srgb = Profile::new_srgb_context(&ctx);
        let to_rgb = Transform::new_flags_context(
            &ctx,
            &xyz,
            PixelFormat::XYZ_FLT,
            &srgb,
            PixelFormat::RGB_FLT,
            Intent::RelativeColorimetric,
            Flags::NO_CACHE,
        )
        .ok()?;
        // The adaptation is linear: its columns are the adapted unit vectors.
        let mut adapt = [[0f32; 3]; 3];
        for (col, unit) in [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
            .iter()
            .enumerate()
        {
            let v = CIEXYZ {
                X: unit[0],
                Y: unit[1],
                Z: unit[2],
            }
            .adapt_to_illuminant(&D65, &D50)?;
            for (row, x) in [v.X, v.Y, v.Z].into_iter().enumerate() {
                adapt[row][col] = x as f32;
            }
        }
        Some(Engine { adapt, to_rgb })
    })
    .as_ref()
}

/// CIE L*a*b* to XYZ relative to the white `w`.
fn lab_to_xyz(l: f32, a: f32, b: f32, w: &CIEXYZ) -> [f32; 3] {
    let fy = (l + 16.0) / 116.0;
    let (fx, fz) = (fy + a / 500.0, fy - b / 200.0);
    let inv = |t: f32| {
        if t > 6.0 / 29.0 {
            t * t * t
        } else {
            3.0 * (6.0f32 / 29.0).powi(2) * (t - 4.0 / 29.0)
        }
    };
    [
        inv(fx) * w.X as f32,
        inv(fy) * w.Y as f32,
        inv(fz) * w.Z as f32,
    ]
}

/// Converts L* (0-100), a*, b* pixels (first three channels; more are dropped) to sRGB in
/// 0-255 units. `None` when the colour engine is unavailable.
pub fn lab_to_srgb(src: &FloatRaster) -> Option<FloatRaster> {
    let e = engine()?;
    let ch = src.channels as usize;
    if ch < 3 {
        return None;
    }
    let m = &e.adapt;
    let xyz: Vec<[f32; 3]> = src
        .data
        .chunks_exact(ch)
        .map(|p| {
            let v = lab_to_xyz(p[0], p[1], p[2], &D65);
            let row = |r: &[f32; 3]| r[0] * v[0] + r[1] * v[1] + r[2] * v[2];
            [row(&m[0]), row(&m[1]), row(&m[2])]
        })
        .collect();
    let mut rgb = vec![[0f32; 3]; xyz.len()];
    e.to_rgb.transform_pixels(&xyz, &mut rgb);
    Some(FloatRaster {
        width: src.width,
        height: src.height,
        channels: 3,
        data: rgb
            .iter()
            .flat_map(|p| p.map(|v| v.clamp(0.0, 1.0) * 255.0))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(lab: [f32; 3]) -> [f32; 3] {
        let r = FloatRaster::from_vec(1, 1, 3, lab.to_vec()).expect("one pixel");
        let out = lab_to_srgb(&r).expect("transform");
        [out.data[0], out.data[1], out.data[2]]
    }

    #[test]
    fn white_black_and_red() {
        let white = convert([100.0, 0.0, 0.0]);
        assert!(white.iter().all(|v| *v > 254.0), "{white:?}");
        let black = convert([0.0, 0.0, 0.0]);
        assert!(black.iter().all(|v| *v < 1.0), "{black:?}");
        // sRGB red and blue in D65 L*a*b*, as libvips computes them.
        let red = convert([53.23, 80.11, 67.22]);
        assert!(red[0] > 250.0 && red[1] < 5.0 && red[2] < 5.0, "{red:?}");
        let blue = convert([32.30, 79.19, -107.86]);
        assert!(
            blue[0] < 5.0 && blue[1] < 5.0 && blue[2] > 250.0,
            "{blue:?}"
        );
    }
}
