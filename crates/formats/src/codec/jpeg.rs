//! JPEG through libjpeg-turbo (`turbojpeg`): decoding TIFF JPEG tiles, encoding answers,
//! and the byte surgery that turns a TIFF tile into a standalone JPEG stream.
//!
//! A TIFF JPEG tile is usually an abbreviated stream: its quantisation and Huffman tables
//! live once in the JPEGTables tag. [`complete_stream`] joins them into one valid stream;
//! the result is both what we decode and what passthrough sends.

use crate::error::SourceResult;
use crate::error::{EncodeError, EncodeFormat, SourceError};
use iipsrv_core::raster::Raster;
use std::cell::RefCell;
use turbojpeg::{Compressor, Decompressor, Image, PixelFormat, Subsamp};

const SOI: [u8; 2] = [0xFF, 0xD8];
const EOI: [u8; 2] = [0xFF, 0xD9];

/// APP14 "Adobe" segment with transform 0: tells decoders the 3 components are RGB, not
/// YCbCr (TIFF photometric RGB with JPEG compression stores them that way).
const ADOBE_RGB: [u8; 16] = [
    0xFF, 0xEE, 0x00, 0x0E, b'A', b'd', b'o', b'b', b'e', 0x00, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00,
];

thread_local! {
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
    static COMPRESSOR: RefCell<Option<Compressor>> = const { RefCell::new(None) };
}

/// Builds a standalone JPEG stream from a TIFF tile and the file's JPEGTables.
/// `rgb_components` inserts an Adobe marker so that RGB-stored data is not taken for YCbCr.
pub(crate) fn complete_stream(tables: Option<&[u8]>, tile: &[u8], rgb_components: bool) -> Vec<u8> {
    let body = tile.strip_prefix(&SOI[..]).unwrap_or(tile);
    let mut out = Vec::with_capacity(tile.len() + tables.map_or(0, <[u8]>::len) + 16);
    out.extend_from_slice(&SOI);
    if rgb_components {
        out.extend_from_slice(&ADOBE_RGB);
    }
    if let Some(t) = tables {
        let t = t.strip_prefix(&SOI[..]).unwrap_or(t);
        out.extend_from_slice(t.strip_suffix(&EOI[..]).unwrap_or(t));
    }
    out.extend_from_slice(body);
    out
}

/// The namespace that opens the APP1 segment of an XMP packet.
const XMP_NAMESPACE: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";

/// Largest XMP packet one APP1 segment holds (65,535 less the length field and the
/// namespace). Larger packets would need Extended XMP, which we do not write.
const MAX_XMP: usize = 65_535 - 2 - XMP_NAMESPACE.len();

/// The XMP packet of a JPEG file: the text of its APP1 segment in the XMP namespace.
pub fn xmp_packet(jpeg: &[u8]) -> Option<String> {
    segments(jpeg)
        .filter(|(marker, _)| *marker == 0xE1)
        .find_map(|(_, body)| body.strip_prefix(XMP_NAMESPACE))
        .and_then(|packet| String::from_utf8(packet.to_vec()).ok())
}

/// Inserts an XMP packet as an APP1 segment right after the SOI marker; a packet larger
/// than one segment is left out.
pub fn insert_xmp(jpeg: &[u8], xmp: &str) -> Vec<u8> {
    let Some(body) = jpeg.strip_prefix(&SOI[..]) else {
        return jpeg.to_vec();
    };
    if xmp.len() > MAX_XMP {
        return jpeg.to_vec();
    }
    let seg_len = (2 + XMP_NAMESPACE.len() + xmp.len()) as u16;
    let mut out = Vec::with_capacity(jpeg.len() + xmp.len() + 40);
    out.extend_from_slice(&SOI);
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&seg_len.to_be_bytes());
    out.extend_from_slice(XMP_NAMESPACE);
    out.extend_from_slice(xmp.as_bytes());
    out.extend_from_slice(body);
    out
}

/// A JPEG stream with the profile and the XMP packet inserted after its SOI marker.
pub fn with_embedded(jpeg: Vec<u8>, extra: super::Embedded) -> Vec<u8> {
    let jpeg = match extra.xmp {
        Some(x) => insert_xmp(&jpeg, x),
        None => jpeg,
    };
    match extra.icc {
        Some(p) => insert_icc(&jpeg, p),
        None => jpeg,
    }
}

/// Inserts an ICC profile as APP2 `ICC_PROFILE` segments right after the SOI marker.
pub fn insert_icc(jpeg: &[u8], icc: &[u8]) -> Vec<u8> {
    const CHUNK: usize = 65_519;
    let Some(body) = jpeg.strip_prefix(&SOI[..]) else {
        return jpeg.to_vec();
    };
    let chunks: Vec<&[u8]> = icc.chunks(CHUNK).collect();
    if chunks.is_empty() || chunks.len() > 255 {
        return jpeg.to_vec();
    }
    let mut out = Vec::with_capacity(jpeg.len() + icc.len() + 18 * chunks.len());
    out.extend_from_slice(&SOI);
    for (i, chunk) in chunks.iter().enumerate() {
        let seg_len = (2 + 12 + 2 + chunk.len()) as u16;
        out.extend_from_slice(&[0xFF, 0xE2]);
        out.extend_from_slice(&seg_len.to_be_bytes());
        out.extend_from_slice(b"ICC_PROFILE\0");
        out.push(i as u8 + 1);
        out.push(chunks.len() as u8);
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(body);
    out
}

/// The ICC profile a JPEG file carries in its APP2 `ICC_PROFILE` segments, joined in
/// their sequence order; `None` when it has none, or when the segments are inconsistent
/// (a missing or repeated part), as a decoder would ignore them then.
pub fn icc_profile(jpeg: &[u8]) -> Option<Vec<u8>> {
    let mut parts: Vec<(u8, u8, &[u8])> = segments(jpeg)
        .filter(|(marker, _)| *marker == 0xE2)
        .filter_map(|(_, body)| match body.strip_prefix(b"ICC_PROFILE\0")? {
            [seq, count, data @ ..] => Some((*seq, *count, data)),
            _ => None,
        })
        .collect();
    parts.sort_by_key(|p| p.0);
    let count = parts.first()?.1 as usize;
    let in_order = parts
        .iter()
        .zip(1..)
        .all(|(p, k)| p.0 == k && p.1 as usize == count);
    (in_order && parts.len() == count).then(|| parts.iter().flat_map(|p| p.2).copied().collect())
}

/// The marker segments of a JPEG stream before its first scan, as (marker, body) pairs;
/// ends early at anything that is not a well-formed segment.
fn segments(jpeg: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut at = if jpeg.starts_with(&SOI) {
        2
    } else {
        jpeg.len()
    };
    std::iter::from_fn(move || loop {
        let (&[0xFF, marker], rest) = jpeg.get(at..)?.split_first_chunk::<2>()? else {
            return None;
        };
        match marker {
            0xFF => at += 1,
            0x01 | 0xD0..=0xD7 => at += 2,
            0xD9 | 0xDA => return None,
            _ => {
                let len = u16::from_be_bytes(*rest.first_chunk::<2>()?) as usize;
                let body = rest.get(2..len)?;
                at += 2 + len;
                return Some((marker, body));
            }
        }
    })
}

/// Runs `f` with this thread's decompressor (made on first use).
fn with_decompressor<T>(f: impl FnOnce(&mut Decompressor) -> SourceResult<T>) -> SourceResult<T> {
    let make = || {
        Decompressor::new()
            .map_err(|e| SourceError::decoder(format!("cannot start JPEG decoder: {e}")))
    };
    with_reused(&DECOMPRESSOR, make, f)
}

/// Runs `f` with this thread's codec in `slot`, made by `make` on first use. A codec that
/// failed is dropped, never reused: libjpeg-turbo's state after an error is undefined, and
/// a decompressor reused after a corrupt tile went on failing valid tiles of other images.
fn with_reused<C, T, E>(
    slot: &'static std::thread::LocalKey<RefCell<Option<C>>>,
    make: impl FnOnce() -> Result<C, E>,
    f: impl FnOnce(&mut C) -> Result<T, E>,
) -> Result<T, E> {
    slot.with(|cell| {
        let mut slot = cell.borrow_mut();
        let codec = match &mut *slot {
            Some(c) => c,
            empty => empty.insert(make()?),
        };
        let result = f(codec);
        if result.is_err() {
            *slot = None;
        }
        result
    })
}

/// Width, height and channel count (1 grey, else 3) of a JPEG stream.
pub fn dimensions(jpeg: &[u8]) -> SourceResult<(u32, u32, u8)> {
    let h =
        turbojpeg::read_header(jpeg).map_err(|e| SourceError::corrupt(format!("bad JPEG: {e}")))?;
    let ch = if h.colorspace == turbojpeg::Colorspace::Gray {
        1
    } else {
        3
    };
    Ok((h.width as u32, h.height as u32, ch))
}

/// Decodes a complete JPEG stream into `channels` (1 or 3) channels, checking that its size
/// is the `width`×`height` the container promised before allocating.
pub fn decode(jpeg: &[u8], width: u32, height: u32, channels: u8) -> SourceResult<Raster> {
    let corrupt = |e: turbojpeg::Error| SourceError::corrupt(format!("bad JPEG tile: {e}"));
    with_decompressor(|d| {
        let header = d.read_header(jpeg).map_err(corrupt)?;
        if header.width != width as usize || header.height != height as usize {
            return Err(SourceError::corrupt(format!(
                "JPEG tile is {}x{}, expected {width}x{height}",
                header.width, header.height
            )));
        }
        let format = if channels == 1 {
            PixelFormat::GRAY
        } else {
            PixelFormat::RGB
        };
        let ch = format.size();
        let mut pixels = vec![0u8; header.width * header.height * ch];
        let image = Image {
            pixels: pixels.as_mut_slice(),
            width: header.width,
            pitch: header.width * ch,
            height: header.height,
            format,
        };
        d.decompress(jpeg, image).map_err(corrupt)?;
        Ok(Raster {
            width,
            height,
            channels: ch as u8,
            data: pixels,
        })
    })
}

/// Encodes 1- or 3-channel pixels (an alpha channel is dropped) as baseline JPEG at
/// `quality` (1-100), 4:2:0 for colour as the original does.
pub fn encode(raster: &Raster, quality: u8) -> Result<Vec<u8>, EncodeError> {
    let failed = |e: turbojpeg::Error| EncodeError::library(EncodeFormat::Jpeg, e);
    let owned;
    let src = match raster.channels {
        2 | 4 => {
            owned = drop_alpha(raster);
            &owned
        }
        _ => raster,
    };
    let (format, subsamp) = if src.channels == 1 {
        (PixelFormat::GRAY, Subsamp::Gray)
    } else {
        (PixelFormat::RGB, Subsamp::Sub2x2)
    };
    let make = || Compressor::new().map_err(failed);
    with_reused(&COMPRESSOR, make, |c| {
        c.set_quality(quality.clamp(1, 100) as i32)
            .map_err(failed)?;
        c.set_subsamp(subsamp).map_err(failed)?;
        let image = Image {
            pixels: src.data.as_slice(),
            width: src.width as usize,
            pitch: src.stride(),
            height: src.height as usize,
            format,
        };
        c.compress_to_vec(image).map_err(failed)
    })
}

fn drop_alpha(src: &Raster) -> Raster {
    let ch = src.channels as usize;
    let data = src
        .data
        .chunks_exact(ch)
        .flat_map(|p| p[..ch - 1].iter().copied())
        .collect();
    Raster {
        width: src.width,
        height: src.height,
        channels: src.channels - 1,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Raster {
        let data = (0..32 * 16 * 3).map(|i| (i % 251) as u8).collect();
        Raster::from_vec(32, 16, 3, data).expect("size")
    }

    #[test]
    fn encode_decode_round_trip() {
        let jpg = encode(&sample(), 95).expect("encode");
        let back = decode(&jpg, 32, 16, 3).expect("decode");
        assert_eq!((back.width, back.height, back.channels), (32, 16, 3));
        assert!(
            decode(&jpg, 16, 16, 3).is_err(),
            "size mismatch must be refused"
        );
    }

    #[test]
    fn split_tables_join_into_a_valid_stream() {
        let jpg = encode(&sample(), 90).expect("encode");
        // Make an abbreviated pair: "tables" = the whole stream's head up to SOS is not
        // trivial to cut, so use the full stream as tile and a table-only SOI/EOI pair.
        let tables = [0xFF, 0xD8, 0xFF, 0xD9];
        let joined = complete_stream(Some(&tables), &jpg, false);
        assert_eq!(joined, jpg);
        assert!(decode(&joined, 32, 16, 3).is_ok());
    }

    #[test]
    fn icc_is_inserted_after_soi() {
        let jpg = encode(&sample(), 90).expect("encode");
        let with = insert_icc(&jpg, &[1, 2, 3]);
        assert_eq!(&with[..4], &[0xFF, 0xD8, 0xFF, 0xE2]);
        assert_eq!(&with[6..18], b"ICC_PROFILE\0");
        assert!(decode(&with, 32, 16, 3).is_ok());
    }

    #[test]
    fn icc_profile_is_read_back_whole_and_in_order() {
        let jpg = encode(&sample(), 90).expect("encode");
        assert_eq!(icc_profile(&jpg), None);
        let profile: Vec<u8> = (0..150_000u32).map(|i| (i % 253) as u8).collect();
        let with = insert_icc(&jpg, &profile);
        assert_eq!(icc_profile(&with).as_deref(), Some(&profile[..]));
        // A segment lost: the rest is not a profile.
        let cut = with.len() - jpg.len() + 2;
        let mut broken = with[..2].to_vec();
        broken.extend_from_slice(&with[2 + 65_535 + 2..cut]);
        broken.extend_from_slice(&jpg[2..]);
        assert_eq!(icc_profile(&broken), None);
        assert_eq!(icc_profile(&with[..40]), None);
        assert_eq!(icc_profile(b"not a jpeg"), None);
    }

    #[test]
    fn xmp_is_read_back_and_oversized_packets_left_out() {
        let jpg = encode(&sample(), 90).expect("encode");
        assert_eq!(xmp_packet(&jpg), None);
        let packet = "<x:xmpmeta xmlns:x='adobe:ns:meta/'>é</x:xmpmeta>";
        let both = with_embedded(
            jpg.clone(),
            crate::codec::Embedded {
                icc: Some(&[1, 2, 3]),
                xmp: Some(packet),
            },
        );
        assert_eq!(xmp_packet(&both).as_deref(), Some(packet));
        assert_eq!(icc_profile(&both), Some(vec![1, 2, 3]));
        assert!(decode(&both, 32, 16, 3).is_ok());
        let huge = "x".repeat(MAX_XMP + 1);
        assert_eq!(insert_xmp(&jpg, &huge), jpg);
        assert_eq!(
            xmp_packet(&insert_xmp(&jpg, &huge[1..])).map(|x| x.len()),
            Some(MAX_XMP)
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decode(&[0xFF, 0xD8, 1, 2, 3], 8, 8, 3).is_err());
    }
}
