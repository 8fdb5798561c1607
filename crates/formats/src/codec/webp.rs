//! WebP through libwebp (the `webp` crate): decoding WebP-compressed TIFF tiles and
//! encoding answers. Grey images are widened to RGB, as WebP has no grey mode.

use super::Embedded;
use crate::error::SourceResult;
use crate::error::{EncodeError, EncodeFormat, SourceError};
use iipsrv_core::raster::Raster;

/// Decodes a WebP tile into `channels` (1, 3 or 4) channels of `width`×`height`.
pub fn decode(data: &[u8], width: u32, height: u32, channels: u8) -> SourceResult<Raster> {
    let img = webp::Decoder::new(data)
        .decode()
        .ok_or_else(|| SourceError::corrupt("bad WebP tile"))?;
    if img.width() != width || img.height() != height {
        return Err(SourceError::corrupt(format!(
            "WebP tile is {}x{}, expected {width}x{height}",
            img.width(),
            img.height()
        )));
    }
    let src_ch = if img.is_alpha() { 4 } else { 3 };
    let px: &[u8] = &img;
    let data: Vec<u8> = match (src_ch, channels) {
        (a, b) if a == b as usize => px.to_vec(),
        (4, 3) => px
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        (3, 4) => px
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        (_, 1) => px.chunks_exact(src_ch).map(|p| p[1]).collect(),
        _ => {
            return Err(SourceError::unsupported(format!(
                "WebP tiles with {channels} channels"
            )))
        }
    };
    Raster::from_vec(width, height, channels, data)
        .ok_or_else(|| SourceError::corrupt("WebP tile size mismatch"))
}

/// Encodes as WebP: lossy at `quality` (0-100), or lossless when `quality` is `None`.
pub fn encode(raster: &Raster, quality: Option<f32>) -> Result<Vec<u8>, EncodeError> {
    let widened;
    let src = match raster.channels {
        1 | 2 => {
            widened = widen_grey(raster);
            &widened
        }
        _ => raster,
    };
    let enc = if src.channels == 4 {
        webp::Encoder::from_rgba(&src.data, src.width, src.height)
    } else {
        webp::Encoder::from_rgb(&src.data, src.width, src.height)
    };
    let mem = match quality {
        Some(q) => enc.encode_simple(false, q.clamp(0.0, 100.0)),
        None => enc.encode_simple(true, 75.0),
    }
    .map_err(|e| EncodeError::library(EncodeFormat::Webp, format!("{e:?}")))?;
    Ok(mem.to_vec())
}

/// A WebP file with the profile and the XMP packet added as libwebp's mux adds them: an
/// `ICCP` chunk right after the `VP8X` header (which a simple VP8/VP8L file gains, with the
/// alpha flag when `alpha`) and an `XMP ` chunk at the end, their flags set. Bytes that are
/// not a WebP file the encoder wrote are returned unchanged.
pub fn with_embedded(webp: Vec<u8>, extra: Embedded, alpha: bool) -> Vec<u8> {
    const ICC_FLAG: u8 = 0x20;
    const ALPHA_FLAG: u8 = 0x10;
    const XMP_FLAG: u8 = 0x04;
    if extra == Embedded::default() {
        return webp;
    }
    let (Some(b"RIFF"), Some(b"WEBP"), Some(chunks)) =
        (webp.first_chunk::<4>(), webp.get(8..12), webp.get(12..))
    else {
        return webp;
    };
    let mut out = Vec::with_capacity(webp.len() + 64);
    out.extend_from_slice(b"RIFF\0\0\0\0WEBP");
    let rest = match chunks.split_first_chunk::<18>() {
        Some((vp8x, rest)) if vp8x.starts_with(b"VP8X") => {
            out.extend_from_slice(vp8x);
            rest
        }
        _ => {
            let Some((w, h)) = canvas_size(&webp) else {
                return webp;
            };
            out.extend_from_slice(b"VP8X\x0a\0\0\0");
            out.extend_from_slice(&[if alpha { ALPHA_FLAG } else { 0 }, 0, 0, 0]);
            out.extend_from_slice(&w.saturating_sub(1).to_le_bytes()[..3]);
            out.extend_from_slice(&h.saturating_sub(1).to_le_bytes()[..3]);
            chunks
        }
    };
    if let Some(icc) = extra.icc {
        out[20] |= ICC_FLAG;
        push_chunk(&mut out, b"ICCP", icc);
    }
    out.extend_from_slice(rest);
    if let Some(xmp) = extra.xmp {
        out[20] |= XMP_FLAG;
        push_chunk(&mut out, b"XMP ", xmp.as_bytes());
    }
    let riff_size = (out.len() - 8) as u32;
    out[4..8].copy_from_slice(&riff_size.to_le_bytes());
    out
}

/// Appends a RIFF chunk, padded to an even length.
fn push_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(kind);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    if !data.len().is_multiple_of(2) {
        out.push(0);
    }
}

/// Width and height of a WebP file, from libwebp's reading of its headers.
fn canvas_size(webp: &[u8]) -> Option<(u32, u32)> {
    let features = webp::BitstreamFeatures::new(webp)?;
    Some((features.width(), features.height()))
}

fn widen_grey(src: &Raster) -> Raster {
    let alpha = src.channels == 2;
    let data = src
        .data
        .chunks_exact(src.channels as usize)
        .flat_map(|p| {
            let mut v = vec![p[0], p[0], p[0]];
            if alpha {
                v.push(p[1]);
            }
            v
        })
        .collect();
    Raster {
        width: src.width,
        height: src.height,
        channels: if alpha { 4 } else { 3 },
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_lossless() {
        let data: Vec<u8> = (0..16 * 8 * 3).map(|i| (i % 200) as u8).collect();
        let r = Raster::from_vec(16, 8, 3, data).expect("size");
        let w = encode(&r, None).expect("encode");
        assert_eq!(decode(&w, 16, 8, 3).expect("decode"), r);
        assert!(decode(&w, 8, 8, 3).is_err());
        assert!(decode(b"RIFF....WEBP", 8, 8, 3).is_err());
    }

    #[test]
    fn icc_goes_after_a_vp8x_header_and_xmp_last() {
        let profile: Vec<u8> = (0..301u32).map(|i| i as u8).collect();
        let extra = Embedded {
            icc: Some(&profile),
            xmp: Some("<x/>!"),
        };
        let r = Raster::filled(20, 10, 3, 90);
        let alpha = Raster::filled(5, 3, 4, 7);
        for (raster, quality) in [(&r, None), (&r, Some(50.0)), (&alpha, None)] {
            let plain = encode(raster, quality).expect("encode");
            let with = with_embedded(plain, extra, raster.channels == 4);
            assert_eq!(&with[12..16], b"VP8X");
            assert_eq!(with[20] & 0x24, 0x24, "ICC and XMP flags");
            assert_eq!(with[20] & 0x10 != 0, raster.channels == 4, "alpha flag");
            assert_eq!(&with[30..34], b"ICCP");
            assert_eq!(&with[38..38 + 301], &profile[..]);
            assert_eq!(&with[with.len() - 14..], b"XMP \x05\0\0\0<x/>!\0");
            let size = u32::from_le_bytes([with[4], with[5], with[6], with[7]]) as usize;
            assert_eq!(size + 8, with.len());
            let back = decode(&with, raster.width, raster.height, raster.channels).expect("decode");
            assert_eq!((back.width, back.height), (raster.width, raster.height));
        }
        assert_eq!(with_embedded(b"RIFF".to_vec(), extra, false), b"RIFF");
    }

    #[test]
    fn grey_is_widened() {
        let r = Raster::filled(4, 4, 1, 100);
        let w = encode(&r, None).expect("encode");
        assert_eq!(decode(&w, 4, 4, 1).expect("decode").data, vec![100; 16]);
    }
}
