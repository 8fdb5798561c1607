//! The neutral description of one render, produced by every protocol parser and consumed
//! by the pipeline alone. Nothing here touches files or pixels.
//!
//! A [`View`] is fully resolved: its region is in full-resolution pixels and already clipped
//! to the image, its output size is final. Its [`View::cache_key`] is canonical, so the same
//! pixels asked through any protocol share one cache entry.

use std::fmt::Write as _;

/// A rectangle in full-resolution image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width, at least 1.
    pub w: u32,
    /// Height, at least 1.
    pub h: u32,
}

/// Colour treatment of the output (IIIF qualities; IIP COL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quality {
    /// The image as stored (IIIF `default`, `color`, `native`).
    Default,
    /// Greyscale.
    Gray,
    /// Black and white, thresholded at mid-grey.
    Bitonal,
}

/// Output encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// JPEG (baseline, 4:2:0 for colour).
    Jpeg,
    /// PNG.
    Png,
    /// WebP (lossy unless WEBP_QUALITY is -1).
    Webp,
    /// TIFF (one strip, compression from TIFF_COMPRESSION).
    Tiff,
}

impl Format {
    /// The MIME type of an answer in this format.
    pub const fn mime(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
            Format::Tiff => "image/tiff",
        }
    }

    /// The usual file extension (IIIF format token).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::Webp => "webp",
            Format::Tiff => "tif",
        }
    }

    /// Whether the format can carry an alpha channel (transparent rotation background).
    pub fn has_alpha(self) -> bool {
        matches!(self, Format::Png | Format::Webp | Format::Tiff)
    }
}

/// Rotation and mirroring, applied after scaling: mirror first, then rotate clockwise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rotation {
    /// Mirror horizontally before rotating.
    pub mirror: bool,
    /// Clockwise degrees in `[0, 360)`.
    pub degrees: f64,
}

impl Rotation {
    /// No rotation, no mirroring.
    pub const NONE: Rotation = Rotation {
        mirror: false,
        degrees: 0.0,
    };

    /// The number of quarter turns when the angle is a multiple of 90 degrees.
    pub fn quarter_turns(&self) -> Option<u32> {
        let q = self.degrees / 90.0;
        (q.fract() == 0.0).then_some(q as u32 % 4)
    }
}

/// Server limits on the output size, shared by every protocol.
#[derive(Debug, Clone, Copy)]
pub struct SizeLimits {
    /// Largest output width and height (MAX_CVT); `None` for no limit.
    pub max_size: Option<u32>,
    /// Whether sizes larger than the region may be produced (ALLOW_UPSCALING).
    pub allow_upscaling: bool,
}

/// Tone adjustments (IIP GAM, INV, CNT), applied in the original's order: gamma, then
/// inversion, then contrast, on values normalised to 0-1.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Adjust {
    /// GAM: v → v^gamma.
    pub gamma: Option<f32>,
    /// INV: v → 1 - v.
    pub invert: bool,
    /// CNT: v → v × contrast, clipped.
    pub contrast: Option<f32>,
}

impl Adjust {
    /// Whether nothing is changed.
    pub fn is_identity(&self) -> bool {
        self.gamma.is_none_or(|g| g == 1.0)
            && !self.invert
            && self.contrast.is_none_or(|c| c == 1.0)
    }
}

/// One render: which pixels of which size, treated how, encoded how.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    /// Region of the full-resolution image, clipped to it.
    pub region: Rect,
    /// Output width before rotation.
    pub width: u32,
    /// Output height before rotation.
    pub height: u32,
    /// Rotation and mirroring.
    pub rotation: Rotation,
    /// Colour treatment.
    pub quality: Quality,
    /// Tone adjustments.
    pub adjust: Adjust,
    /// Output encoding.
    pub format: Format,
    /// Encoder quality asked by the request (IIP QLT); `None` uses the configured default.
    pub encoder_quality: Option<u8>,
}

impl View {
    /// Whether the view asks for nothing but pixels: no colour change, no rotation.
    pub fn is_plain(&self) -> bool {
        self.quality == Quality::Default
            && self.rotation == Rotation::NONE
            && self.adjust.is_identity()
    }

    /// A canonical text naming exactly these pixels and this encoding; two views with the
    /// same key produce the same bytes from the same file.
    pub fn cache_key(&self) -> String {
        let r = self.region;
        let mut k = String::with_capacity(64);
        let _ = write!(
            k,
            "{},{},{},{}/{}x{}/{}{}/{:?}/{}",
            r.x,
            r.y,
            r.w,
            r.h,
            self.width,
            self.height,
            if self.rotation.mirror { "!" } else { "" },
            self.rotation.degrees,
            self.quality,
            self.format.extension()
        );
        if let Some(q) = self.encoder_quality {
            let _ = write!(k, "/q{q}");
        }
        if !self.adjust.is_identity() {
            let a = self.adjust;
            let _ = write!(k, "/g{:?}i{}c{:?}", a.gamma, a.invert, a.contrast);
        }
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> View {
        View {
            region: Rect {
                x: 0,
                y: 0,
                w: 10,
                h: 10,
            },
            width: 5,
            height: 5,
            rotation: Rotation::NONE,
            quality: Quality::Default,
            adjust: Adjust::default(),
            format: Format::Jpeg,
            encoder_quality: None,
        }
    }

    #[test]
    fn cache_key_distinguishes_every_field() {
        let a = view();
        let mut b = view();
        b.rotation.mirror = true;
        let mut c = view();
        c.encoder_quality = Some(90);
        let mut d = view();
        d.format = Format::Png;
        let mut e = view();
        e.adjust.invert = true;
        let keys = [
            a.cache_key(),
            b.cache_key(),
            c.cache_key(),
            d.cache_key(),
            e.cache_key(),
        ];
        for i in 0..keys.len() {
            for j in i + 1..keys.len() {
                assert_ne!(keys[i], keys[j]);
            }
        }
    }

    #[test]
    fn quarter_turns() {
        let r = |d| Rotation {
            mirror: false,
            degrees: d,
        };
        assert_eq!(r(0.0).quarter_turns(), Some(0));
        assert_eq!(r(270.0).quarter_turns(), Some(3));
        assert_eq!(r(45.5).quarter_turns(), None);
    }
}
