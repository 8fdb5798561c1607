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
    fn grey_is_widened() {
        let r = Raster::filled(4, 4, 1, 100);
        let w = encode(&r, None).expect("encode");
        assert_eq!(decode(&w, 4, 4, 1).expect("decode").data, vec![100; 16]);
    }
}
