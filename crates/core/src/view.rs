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
    /// AVIF (AV1 still image; lossy unless AVIF_QUALITY is -1).
    Avif,
}

impl Format {
    /// The MIME type of an answer in this format.
    pub const fn mime(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Webp => "image/webp",
            Format::Tiff => "image/tiff",
            Format::Avif => "image/avif",
        }
    }

    /// The usual file extension (IIIF format token).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::Webp => "webp",
            Format::Tiff => "tif",
            Format::Avif => "avif",
        }
    }

    /// Whether the format can carry an alpha channel (transparent rotation background).
    pub fn has_alpha(self) -> bool {
        matches!(
            self,
            Format::Png | Format::Webp | Format::Tiff | Format::Avif
        )
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
    pub(crate) fn quarter_turns(&self) -> Option<u32> {
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

/// GAM: a power law, or the original's logarithm transform.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gamma {
    /// v → v^g on normalised values.
    Power(f32),
    /// v → ln(1 + 255 v) / ln(256) (`GAM=log`).
    Log,
}

/// CNT: a contrast factor or a stretch of the image's histogram range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Contrast {
    /// v → v × factor, clipped.
    Factor(f32),
    /// Input range set to the lowest and highest used levels of the image (`CNT=st`).
    Stretch,
}

/// CMP: colour maps for single-channel data (channel 0 of colour images).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colormap {
    /// Black, red, yellow, white.
    Hot,
    /// Black, blue, cyan, white.
    Cold,
    /// Dark blue to dark red through green.
    Jet,
    /// Value in the red channel.
    Red,
    /// Value in the green channel.
    Green,
    /// Value in the blue channel.
    Blue,
}

/// MINMAX: the input range of one channel (`None` for all) used to normalise samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelRange {
    /// Channel index, or `None` for every channel.
    pub channel: Option<usize>,
    /// Sample value mapped to 0.
    pub min: f32,
    /// Sample value mapped to 1.
    pub max: f32,
}

/// Tone and colour processing (IIP MINMAX, SHD, CTW, GAM, INV, CMP, CNV, CNT), applied in
/// the original's order on values normalised to 0-1, before resizing; then CNT=eq after
/// the colour treatment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Process {
    /// MINMAX overrides, applied in order.
    pub ranges: Vec<ChannelRange>,
    /// SHD: light azimuth (degrees from 12 o'clock) and elevation.
    pub shade: Option<(i32, i32)>,
    /// CTW: one row per output channel, one coefficient per input channel.
    pub twist: Option<Vec<Vec<f32>>>,
    /// Whether normalised samples are clipped to 0-1 before the twist (a fluorescence
    /// composite: a sample outside its channel's range adds nothing or its full colour).
    pub clip: bool,
    /// GAM.
    pub gamma: Option<Gamma>,
    /// INV: v → 1 - v.
    pub invert: bool,
    /// CMP.
    pub colormap: Option<Colormap>,
    /// CNV: a square kernel of odd side (3 or 5), row-major.
    pub convolution: Option<Vec<f32>>,
    /// CNT as a factor or a stretch.
    pub contrast: Option<Contrast>,
    /// CNT=eq: histogram equalisation.
    pub equalise: bool,
}

impl Process {
    /// Whether the float pipeline must run (any operation but equalisation).
    pub fn needs_float(&self) -> bool {
        !self.ranges.is_empty()
            || self.shade.is_some()
            || self.twist.is_some()
            || self.gamma.is_some_and(|g| g != Gamma::Power(1.0))
            || self.invert
            || self.colormap.is_some()
            || self.convolution.is_some()
            || self.contrast.is_some_and(|c| c != Contrast::Factor(1.0))
    }

    /// Whether nothing is changed.
    pub(crate) fn is_identity(&self) -> bool {
        !self.needs_float() && !self.equalise
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
    /// Tone and colour processing.
    pub process: Process,
    /// Output encoding.
    pub format: Format,
    /// Encoder quality asked by the request (IIP QLT); `None` uses the configured default.
    pub encoder_quality: Option<u8>,
    /// JPEG2000 quality layers asked by the request (IIP LYR); 0 leaves it to MAX_LAYERS.
    pub layers: i32,
    /// The planes (stack pages) read as the channels of a composite; empty for the image
    /// itself.
    pub planes: Vec<u32>,
}

impl View {
    /// Whether the view asks for nothing but pixels: no colour change, no rotation.
    pub fn is_plain(&self) -> bool {
        self.quality == Quality::Default
            && self.rotation == Rotation::NONE
            && self.process.is_identity()
    }

    /// Whether the image's histogram is needed (bitonal threshold, stretch, equalisation).
    pub fn needs_histogram(&self) -> bool {
        self.quality == Quality::Bitonal
            || self.process.equalise
            || self.process.contrast == Some(Contrast::Stretch)
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
        if !self.process.is_identity() {
            let _ = write!(k, "/{:?}", self.process);
        }
        if self.layers != 0 {
            let _ = write!(k, "/l{}", self.layers);
        }
        if !self.planes.is_empty() {
            let _ = write!(k, "/p{:?}", self.planes);
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
            process: Process::default(),
            format: Format::Jpeg,
            encoder_quality: None,
            layers: 0,
            planes: Vec::new(),
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
        e.process.invert = true;
        let mut f = view();
        f.layers = 2;
        let mut g = view();
        g.planes = vec![0, 2];
        let keys = [
            a.cache_key(),
            b.cache_key(),
            c.cache_key(),
            d.cache_key(),
            e.cache_key(),
            f.cache_key(),
            g.cache_key(),
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
