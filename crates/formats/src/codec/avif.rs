//! AVIF answers through the system libavif (Debian's `libavif-dev`, built with the aom,
//! rav1e and SVT-AV1 encoders), behind the cargo feature `avif`. libavif is reached through a
//! small C file, `csrc/avif_encode.c` (built by build.rs), so that its structs are filled by
//! the C compiler that knows their layout; this module only passes plain values and copies
//! the file it gets back. Without the feature the same API is here and [`encode`] refuses
//! with [`EncodeError::AvifNotBuilt`].
//!
//! Grey images are encoded as monochrome (YUV 4:0:0) AV1, colour as 4:2:0 when lossy, as
//! the newest original does; lossless is 4:4:4 with the identity matrix and quantizer 0 on
//! aom (rav1e is not exact at quantizer 0; SVT-AV1 encodes 4:2:0 only), so it is exact.
//! Specification: AV1 Image File Format, <https://aomediacodec.github.io/av1-avif/>.

use super::Embedded;
use crate::error::EncodeError;
use iipsrv_core::raster::{Pixels, Raster};

/// Whether this build can encode AVIF (cargo feature `avif`).
pub const BUILT: bool = cfg!(feature = "avif");

/// The encoder speed of answers, 0 (slowest) to 10 (fastest): speed 10 is the newest
/// original's choice; in the README's encoder comparison aom's speed 8 takes twice the time
/// of a tile for 10% fewer bytes, speed 6 five times for 9% fewer.
pub const SERVER_SPEED: u8 = 10;

/// The AV1 encoder libavif uses (AVIF_CODEC: 0 auto, 1 aom, 2 rav1e, 3 svt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// libavif's own choice: the first encoder it was built with (aom on Debian).
    Auto,
    /// libaom.
    Aom,
    /// rav1e.
    Rav1e,
    /// SVT-AV1 (RGB and RGBA of at least 64 × 64 even-sized pixels, lossy only).
    Svt,
}

impl Codec {
    /// The codec of an AVIF_CODEC value (its number or its name, in any case), `None` for
    /// a value that names none.
    pub fn from_setting(value: &str) -> Option<Codec> {
        match value.to_ascii_lowercase().as_str() {
            "0" | "auto" => Some(Codec::Auto),
            "1" | "aom" => Some(Codec::Aom),
            "2" | "rav1e" => Some(Codec::Rav1e),
            "3" | "svt" => Some(Codec::Svt),
            _ => None,
        }
    }

    /// The codec's name, as libavif spells it ("auto" for [`Codec::Auto`]).
    pub fn name(self) -> &'static str {
        match self {
            Codec::Auto => "auto",
            Codec::Aom => "aom",
            Codec::Rav1e => "rav1e",
            Codec::Svt => "svt",
        }
    }

    /// The AVIF_CODEC number, which the C part takes too.
    #[cfg_attr(not(feature = "avif"), allow(dead_code))]
    fn code(self) -> i32 {
        match self {
            Codec::Auto => 0,
            Codec::Aom => 1,
            Codec::Rav1e => 2,
            Codec::Svt => 3,
        }
    }
}

/// How an image is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Options {
    /// Quality 0-100 (libavif 1.x's scale), or `None` for lossless.
    pub quality: Option<u8>,
    /// The AV1 encoder.
    pub codec: Codec,
    /// Encoder speed 0-10 ([`SERVER_SPEED`] for answers).
    pub speed: u8,
    /// Threads the encoder may use (1 for none besides the caller's).
    pub threads: u32,
}

impl Options {
    /// Lossy at `quality` (0-100) with `codec`, at the server's speed on one thread.
    pub fn new(quality: Option<u8>, codec: Codec) -> Options {
        Options {
            quality,
            codec,
            speed: SERVER_SPEED,
            threads: 1,
        }
    }
}

/// The AV1 quantizer (0 best, 63 worst) of a quality 0-100, as libavif 1.x maps its
/// `quality` field, which 0.11 lacks: (100 − q) × 63 / 100, rounded.
pub fn quantizer(quality: u8) -> u8 {
    let q = u32::from(quality.min(100));
    (((100 - q) * 63 + 50) / 100) as u8
}

/// The bit depth of the AV1 stream made from 16-bit samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// 8 bits.
    Eight,
    /// 10 bits.
    Ten,
    /// 12 bits.
    Twelve,
}

impl Depth {
    fn bits(self) -> i32 {
        match self {
            Depth::Eight => 8,
            Depth::Ten => 10,
            Depth::Twelve => 12,
        }
    }
}

/// The codec that can encode this image: SVT-AV1 takes neither grey, lossless, odd sizes
/// nor sizes under 64 pixels, nor alpha (libavif before 1.0.4 hands it an alpha image
/// without chroma planes, which SVT-AV1 1.8 and later refuse), and rav1e is not exact at
/// quantizer 0, so those go to aom (libavif's own choice when aom is missing).
#[cfg_attr(not(feature = "avif"), allow(dead_code))]
fn fitting_codec(codec: Codec, channels: u8, width: u32, height: u32, lossless: bool) -> Codec {
    let svt_fits = channels == 3
        && width >= 64
        && height >= 64
        && width.is_multiple_of(2)
        && height.is_multiple_of(2);
    match codec {
        _ if lossless && can_encode(Codec::Aom) => Codec::Aom,
        Codec::Rav1e if lossless => Codec::Auto,
        Codec::Svt if lossless || !svt_fits => Codec::Auto,
        c => c,
    }
}

/// Encodes 8-bit pixels (1 to 4 channels) as an 8-bit AVIF, with the ICC profile (a `colr`
/// box) and the XMP packet (a `mime` item) of `extra`.
pub fn encode(pixels: &Raster, options: &Options, extra: Embedded) -> Result<Vec<u8>, EncodeError> {
    ffi::encode(
        ffi::Samples::Eight(&pixels.data),
        layout(pixels)?,
        8,
        options,
        extra,
    )
}

/// Encodes 16-bit pixels (1 to 4 channels) as an AVIF of `depth` bits (samples rescaled
/// from 0-65535), with the ICC profile and XMP packet of `extra`.
pub fn encode_16(
    pixels: &Pixels<u16>,
    depth: Depth,
    options: &Options,
    extra: Embedded,
) -> Result<Vec<u8>, EncodeError> {
    let samples = ffi::Samples::Sixteen(&pixels.data);
    ffi::encode(samples, layout(pixels)?, depth.bits(), options, extra)
}

/// Width, height and channels, checked: 1 to 4 channels and as many samples as they need.
fn layout<T>(pixels: &Pixels<T>) -> Result<(u32, u32, u8), EncodeError> {
    let n = pixels.width as usize * pixels.height as usize * pixels.channels as usize;
    if !(1..=4).contains(&pixels.channels) || pixels.data.len() != n || n == 0 {
        return Err(EncodeError::Channels {
            format: crate::error::EncodeFormat::Avif,
            channels: pixels.channels,
        });
    }
    Ok((pixels.width, pixels.height, pixels.channels))
}

/// Lowers SVT-AV1's logging to errors (`SVT_LOG=1`) unless SVT_LOG is set: at its default it
/// writes a dozen lines to standard error for every image it encodes. Changes the process
/// environment, so call it before any other thread starts.
pub fn quiet_svt() {
    if BUILT && std::env::var_os("SVT_LOG").is_none() {
        std::env::set_var("SVT_LOG", "1");
    }
}

/// Whether this libavif can encode with `codec` (always false without the feature).
pub fn can_encode(codec: Codec) -> bool {
    ffi::can_encode(codec)
}

/// libavif's codecs and their versions, e.g. "dav1d [dec]:1.0.0, aom [enc/dec]:v3.6.0"
/// (empty without the feature).
pub fn versions() -> String {
    ffi::versions()
}

#[cfg(feature = "avif")]
mod ffi {
    //! The calls into `csrc/avif_encode.c`.
    use super::{fitting_codec, quantizer, Codec, Embedded, Options};
    use crate::error::{EncodeError, EncodeFormat};
    use std::ffi::{c_char, c_int, c_void, CStr};

    extern "C" {
        fn iip_avif_encode(
            pixels: *const c_void,
            width: u32,
            height: u32,
            channels: c_int,
            sample_bytes: c_int,
            depth: c_int,
            quantizer: c_int,
            lossless: c_int,
            codec: c_int,
            speed: c_int,
            threads: c_int,
            icc: *const u8,
            icc_len: usize,
            xmp: *const u8,
            xmp_len: usize,
            out: *mut *mut u8,
            out_len: *mut usize,
            err: *mut c_char,
            err_len: usize,
        ) -> c_int;
        fn iip_avif_free(data: *mut u8, len: usize);
        fn iip_avif_can_encode(codec: c_int) -> c_int;
        fn iip_avif_versions(out: *mut c_char);
    }

    /// Interleaved samples of either width.
    pub(super) enum Samples<'a> {
        /// 8-bit.
        Eight(&'a [u8]),
        /// 16-bit, native-endian.
        Sixteen(&'a [u16]),
    }

    impl Samples<'_> {
        fn pointer(&self) -> (*const c_void, c_int) {
            match self {
                Samples::Eight(s) => (s.as_ptr().cast(), 1),
                Samples::Sixteen(s) => (s.as_ptr().cast(), 2),
            }
        }
    }

    /// Encodes `samples` laid out as `(width, height, channels)` (checked by the caller).
    pub(super) fn encode(
        samples: Samples,
        (width, height, channels): (u32, u32, u8),
        depth: c_int,
        options: &Options,
        extra: Embedded,
    ) -> Result<Vec<u8>, EncodeError> {
        let lossless = options.quality.is_none();
        let q = options.quality.map_or(0, quantizer);
        let codec = fitting_codec(options.codec, channels, width, height, lossless);
        let (pixels, sample_bytes) = samples.pointer();
        let icc = extra.icc.unwrap_or_default();
        let xmp = extra.xmp.unwrap_or_default().as_bytes();
        let (mut out, mut out_len) = (std::ptr::null_mut(), 0usize);
        let mut err = [0 as c_char; 512];
        // SAFETY: `pixels` holds width × height × channels samples of `sample_bytes` each
        // (checked by `layout`), `icc` and `xmp` are readable for their lengths, the out-pointers are
        // live locals and `err` has the length passed; the C side reads the inputs only
        // during the call.
        let ok = unsafe {
            iip_avif_encode(
                pixels,
                width,
                height,
                c_int::from(channels),
                sample_bytes,
                depth,
                c_int::from(q),
                c_int::from(lossless),
                codec.code(),
                c_int::from(options.speed.min(10)),
                options.threads.clamp(1, 64) as c_int,
                icc.as_ptr(),
                icc.len(),
                xmp.as_ptr(),
                xmp.len(),
                &mut out,
                &mut out_len,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        if ok == 0 || out.is_null() {
            // SAFETY: the C side wrote a NUL-terminated message into `err` (zeroed before).
            let message = unsafe { CStr::from_ptr(err.as_ptr()) };
            return Err(EncodeError::library(
                EncodeFormat::Avif,
                message.to_string_lossy(),
            ));
        }
        // SAFETY: libavif allocated `out_len` bytes at `out`; they are copied, then freed once.
        Ok(unsafe {
            let file = std::slice::from_raw_parts(out, out_len).to_vec();
            iip_avif_free(out, out_len);
            file
        })
    }

    /// Whether libavif has an encoder for `codec`.
    pub(super) fn can_encode(codec: Codec) -> bool {
        // SAFETY: a lookup in libavif's static codec table; no pointers passed.
        unsafe { iip_avif_can_encode(codec.code()) != 0 }
    }

    /// libavif's codec list.
    pub(super) fn versions() -> String {
        let mut out = [0 as c_char; 256];
        // SAFETY: libavif writes a NUL-terminated string of at most 256 bytes into `out`.
        unsafe {
            iip_avif_versions(out.as_mut_ptr());
            CStr::from_ptr(out.as_ptr()).to_string_lossy().into_owned()
        }
    }
}

#[cfg(not(feature = "avif"))]
mod ffi {
    //! A build without libavif: every encode is refused.
    use super::{Codec, Embedded, Options};
    use crate::error::EncodeError;

    /// Interleaved samples of either width.
    pub(super) enum Samples<'a> {
        /// 8-bit.
        Eight(#[allow(dead_code)] &'a [u8]),
        /// 16-bit.
        Sixteen(#[allow(dead_code)] &'a [u16]),
    }

    /// Refuses: this build has no AVIF encoder.
    pub(super) fn encode(
        _: Samples,
        _: (u32, u32, u8),
        _: i32,
        _: &Options,
        _: Embedded,
    ) -> Result<Vec<u8>, EncodeError> {
        Err(EncodeError::AvifNotBuilt)
    }

    /// No codec without libavif.
    pub(super) fn can_encode(_: Codec) -> bool {
        false
    }

    /// Nothing to list without libavif.
    pub(super) fn versions() -> String {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_maps_to_quantizers_as_libavif_1_does() {
        assert_eq!(quantizer(100), 0);
        assert_eq!(quantizer(50), 32);
        assert_eq!(quantizer(0), 63);
        assert_eq!(quantizer(200), 0);
        assert_eq!(quantizer(75), 16);
    }

    #[test]
    fn settings_name_codecs_by_number_or_name() {
        assert_eq!(Codec::from_setting("0"), Some(Codec::Auto));
        assert_eq!(Codec::from_setting("3"), Some(Codec::Svt));
        assert_eq!(Codec::from_setting("RAV1E"), Some(Codec::Rav1e));
        assert_eq!(Codec::from_setting("4"), None);
        assert_eq!(Codec::from_setting("x"), None);
        assert_eq!(Codec::Aom.name(), "aom");
    }

    #[test]
    fn svt_and_lossless_fall_back_where_they_cannot_encode() {
        assert_eq!(fitting_codec(Codec::Svt, 3, 256, 256, false), Codec::Svt);
        assert_eq!(fitting_codec(Codec::Svt, 1, 256, 256, false), Codec::Auto);
        assert_eq!(fitting_codec(Codec::Svt, 3, 63, 256, false), Codec::Auto);
        assert_eq!(fitting_codec(Codec::Svt, 4, 256, 255, false), Codec::Auto);
        assert_eq!(fitting_codec(Codec::Svt, 4, 256, 256, false), Codec::Auto);
        assert_eq!(fitting_codec(Codec::Rav1e, 1, 5, 5, false), Codec::Rav1e);
        let lossless = fitting_codec(Codec::Rav1e, 3, 256, 256, true);
        assert_ne!(lossless, Codec::Rav1e);
    }

    #[test]
    fn bad_layouts_are_refused() {
        let r = Raster {
            width: 2,
            height: 2,
            channels: 5,
            data: vec![0; 20],
        };
        assert!(matches!(
            encode(
                &r,
                &Options::new(Some(50), Codec::Auto),
                Embedded::default()
            ),
            Err(EncodeError::Channels { channels: 5, .. })
        ));
        let short = Raster {
            width: 2,
            height: 2,
            channels: 3,
            data: vec![0; 11],
        };
        assert!(encode(
            &short,
            &Options::new(Some(50), Codec::Auto),
            Embedded::default()
        )
        .is_err());
    }

    #[cfg(not(feature = "avif"))]
    #[test]
    fn without_libavif_encoding_is_refused() {
        let r = Raster::filled(4, 4, 3, 9);
        let e = encode(
            &r,
            &Options::new(Some(50), Codec::Auto),
            Embedded::default(),
        );
        assert!(matches!(e, Err(EncodeError::AvifNotBuilt)));
        assert!(!can_encode(Codec::Aom));
    }

    /// The top-level boxes of an ISO BMFF file: (type, payload).
    #[cfg(feature = "avif")]
    fn boxes(file: &[u8]) -> Vec<(String, &[u8])> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 8 <= file.len() {
            let size = u32::from_be_bytes([file[at], file[at + 1], file[at + 2], file[at + 3]]);
            let end = (at + size as usize).min(file.len());
            let kind = String::from_utf8_lossy(&file[at + 4..at + 8]).into_owned();
            out.push((kind, &file[at + 8..end]));
            at = end.max(at + 8);
        }
        out
    }

    #[cfg(feature = "avif")]
    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[cfg(feature = "avif")]
    fn gradient(w: u32, h: u32, channels: u8) -> Raster {
        let data = (0..w * h * channels as u32)
            .map(|i| ((i % 251) ^ (i / 97)) as u8)
            .collect();
        Raster::from_vec(w, h, channels, data).expect("size")
    }

    #[cfg(feature = "avif")]
    #[test]
    fn every_channel_count_makes_an_avif_file() {
        for channels in 1..=4 {
            let r = gradient(33, 17, channels);
            let file = encode(
                &r,
                &Options::new(Some(50), Codec::Auto),
                Embedded::default(),
            )
            .expect("encode");
            let b = boxes(&file);
            assert_eq!(b[0].0, "ftyp", "{channels}");
            assert!(contains(b[0].1, b"avif"), "{channels}");
            assert!(b.iter().any(|(k, _)| k == "mdat"), "{channels}");
            // ispe: width and height, big-endian, after version and flags.
            assert!(contains(
                &file,
                &[b'i', b's', b'p', b'e', 0, 0, 0, 0, 0, 0, 0, 33]
            ));
        }
    }

    #[cfg(feature = "avif")]
    #[test]
    fn quality_and_lossless_change_the_size() {
        let r = gradient(96, 64, 3);
        let size = |q| {
            encode(&r, &Options::new(q, Codec::Auto), Embedded::default())
                .expect("encode")
                .len()
        };
        assert!(size(Some(20)) < size(Some(90)));
        assert!(size(Some(90)) < size(None));
    }

    #[cfg(feature = "avif")]
    #[test]
    fn the_icc_profile_and_xmp_are_embedded() {
        let icc = b"not really a profile but carried as it is".to_vec();
        let xmp = "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"></x:xmpmeta>";
        let r = gradient(16, 16, 3);
        let extra = Embedded {
            icc: Some(&icc),
            xmp: Some(xmp),
        };
        let file = encode(&r, &Options::new(Some(50), Codec::Auto), extra).expect("encode");
        assert!(contains(&file, b"colrprof"));
        assert!(contains(&file, &icc));
        assert!(contains(&file, b"application/rdf+xml"));
        assert!(contains(&file, xmp.as_bytes()));
        let plain = encode(
            &r,
            &Options::new(Some(50), Codec::Auto),
            Embedded::default(),
        )
        .expect("encode");
        assert!(!contains(&plain, b"colrprof"));
    }

    #[cfg(feature = "avif")]
    #[test]
    fn sixteen_bit_samples_make_deeper_streams() {
        let data = (0..32 * 32 * 3).map(|i| (i * 37 % 65536) as u16).collect();
        let p = Pixels::from_vec(32, 32, 3, data).expect("size");
        let opts = Options::new(Some(60), Codec::Auto);
        for (depth, bits) in [(Depth::Eight, 8u8), (Depth::Ten, 10), (Depth::Twelve, 12)] {
            let file = encode_16(&p, depth, &opts, Embedded::default()).expect("encode");
            // pixi: version/flags, 3 channels, their bit depth.
            assert!(contains(
                &file,
                &[b'p', b'i', b'x', b'i', 0, 0, 0, 0, 3, bits, bits, bits]
            ));
        }
    }

    #[cfg(feature = "avif")]
    #[test]
    fn every_encoder_libavif_has_encodes() {
        let r = gradient(128, 64, 3);
        for codec in [Codec::Aom, Codec::Rav1e, Codec::Svt] {
            if can_encode(codec) {
                let file = encode(&r, &Options::new(Some(50), codec), Embedded::default());
                assert!(file.is_ok(), "{codec:?}: {file:?}");
            }
        }
        assert!(versions().contains("[enc"));
    }
}
