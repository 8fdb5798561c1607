//! WebP through libwebp (the `webp` crate): decoding WebP-compressed TIFF tiles and
//! encoding answers. Grey images are widened to RGB, as WebP has no grey mode.

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

/// Inserts an ICC profile into a WebP file as libwebp's mux does: an `ICCP` chunk right
/// after the `VP8X` header, which a simple (VP8 or VP8L only) file gains, with the ICC
/// flag set and the alpha flag when `alpha`. Bytes that are not a WebP file the encoder
/// wrote are returned unchanged.
pub fn insert_icc(webp: &[u8], icc: &[u8], alpha: bool) -> Vec<u8> {
    const ICC_FLAG: u8 = 0x20;
    const ALPHA_FLAG: u8 = 0x10;
    let (Some(b"RIFF"), Some(b"WEBP"), Some(chunks)) =
        (webp.first_chunk::<4>(), webp.get(8..12), webp.get(12..))
    else {
        return webp.to_vec();
    };
    let Ok(icc_len) = u32::try_from(icc.len()) else {
        return webp.to_vec();
    };
    let mut out = Vec::with_capacity(webp.len() + icc.len() + 40);
    out.extend_from_slice(b"RIFF\0\0\0\0WEBP");
    let rest = match chunks.split_first_chunk::<18>() {
        Some((vp8x, rest)) if vp8x.starts_with(b"VP8X") => {
            out.extend_from_slice(vp8x);
            out[20] |= ICC_FLAG;
            rest
        }
        _ => {
            let Some((w, h)) = canvas_size(webp) else {
                return webp.to_vec();
            };
            out.extend_from_slice(b"VP8X\x0a\0\0\0");
            out.extend_from_slice(&[ICC_FLAG | if alpha { ALPHA_FLAG } else { 0 }, 0, 0, 0]);
            out.extend_from_slice(&w.saturating_sub(1).to_le_bytes()[..3]);
            out.extend_from_slice(&h.saturating_sub(1).to_le_bytes()[..3]);
            chunks
        }
    };
    out.extend_from_slice(b"ICCP");
    out.extend_from_slice(&icc_len.to_le_bytes());
    out.extend_from_slice(icc);
    if !icc.len().is_multiple_of(2) {
        out.push(0);
    }
    out.extend_from_slice(rest);
    let riff_size = (out.len() - 8) as u32;
    out[4..8].copy_from_slice(&riff_size.to_le_bytes());
    out
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
    fn icc_goes_after_a_vp8x_header() {
        let profile: Vec<u8> = (0..301u32).map(|i| i as u8).collect();
        let r = Raster::filled(20, 10, 3, 90);
        for (raster, quality) in [
            (r.clone(), None),
            (r, Some(50.0)),
            (Raster::filled(5, 3, 4, 7), None),
        ] {
            let plain = encode(&raster, quality).expect("encode");
            let with = insert_icc(&plain, &profile, raster.channels == 4);
            assert_eq!(&with[12..16], b"VP8X");
            assert_eq!(with[20] & 0x20, 0x20, "ICC flag");
            assert_eq!(with[20] & 0x10 != 0, raster.channels == 4, "alpha flag");
            assert_eq!(&with[30..34], b"ICCP");
            assert_eq!(&with[38..38 + 301], &profile[..]);
            let size = u32::from_le_bytes([with[4], with[5], with[6], with[7]]) as usize;
            assert_eq!(size + 8, with.len());
            let back = decode(&with, raster.width, raster.height, raster.channels).expect("decode");
            assert_eq!((back.width, back.height), (raster.width, raster.height));
            // Once more: a file that has a VP8X header keeps it and gains the chunk.
            let twice = insert_icc(&with, &profile, false);
            assert_eq!(&twice[12..16], b"VP8X");
            assert_eq!(&twice[30..34], b"ICCP");
        }
        assert_eq!(insert_icc(b"RIFF", &profile, false), b"RIFF");
    }

    #[test]
    fn grey_is_widened() {
        let r = Raster::filled(4, 4, 1, 100);
        let w = encode(&r, None).expect("encode");
        assert_eq!(decode(&w, 4, 4, 1).expect("decode").data, vec![100; 16]);
    }
}
