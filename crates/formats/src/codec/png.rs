//! PNG output (the `png` crate; PNG_QUALITY maps to the deflate effort: 1 fast … 9 best)
//! and PNG input for plain image files (expanded to 8-bit grey, grey + alpha, RGB, RGBA).

use super::{Decoded, Embedded};
use crate::error::SourceResult;
use crate::error::{EncodeError, EncodeFormat, SourceError};
use iipsrv_core::raster::Raster;

/// The iTXt keyword under which PNG files carry XMP.
const XMP_KEYWORD: &str = "XML:com.adobe.xmp";

/// Decodes a whole PNG to 8-bit samples (palettes expanded, 16-bit reduced), with its ICC
/// profile and XMP packet when it has them, refusing images of more than `max_pixels`
/// before allocating them.
pub fn decode(bytes: &[u8], max_pixels: u64) -> SourceResult<Decoded> {
    let bad = |e: png::DecodingError| SourceError::corrupt(format!("bad PNG: {e}"));
    let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().map_err(bad)?;
    let (w, h) = (reader.info().width, reader.info().height);
    let pixels = w as u64 * h as u64;
    if pixels > max_pixels {
        return Err(SourceError::over_limit(
            format!("a {w}x{h} PNG is too large to serve; convert it to a tiled pyramidal TIFF"),
            pixels,
            max_pixels,
        ));
    }
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| SourceError::limit("PNG too large"))?;
    let mut buf = vec![0; size];
    let frame = reader.next_frame(&mut buf).map_err(bad)?;
    buf.truncate(frame.buffer_size());
    let channels = frame.color_type.samples() as u8;
    let info = reader.info();

    Ok(Decoded {
        raster: Raster::from_vec(frame.width, frame.height, channels, buf)
            .ok_or_else(|| SourceError::corrupt("PNG frame size"))?,
        icc: info.icc_profile.as_ref().map(|p| p.to_vec()),
        xmp: xmp_packet(info),
    })
}

/// The XMP packet of a PNG: its `XML:com.adobe.xmp` text chunk — iTXt as the XMP
/// specification says, or zTXt/tEXt as libvips writes it — inflated within MAX_XMP_READ
/// when compressed: a small chunk may claim gigabytes.
pub fn xmp_packet(info: &png::Info) -> Option<String> {
    let limit = super::MAX_XMP_READ;
    if let Some(t) = info.utf8_text.iter().find(|t| t.keyword == XMP_KEYWORD) {
        let mut t = t.clone();
        t.decompress_text_with_limit(limit).ok()?;
        return t.get_text().ok();
    }
    let zipped = &info.compressed_latin1_text;
    if let Some(t) = zipped.iter().find(|t| t.keyword == XMP_KEYWORD) {
        let mut t = t.clone();
        t.decompress_text_with_limit(limit).ok()?;
        return t.get_text().ok();
    }
    let plain = &info.uncompressed_latin1_text;
    let text = plain.iter().find(|t| t.keyword == XMP_KEYWORD)?;
    (text.text.len() <= limit).then(|| text.text.clone())
}

/// Encodes 1-4 channel 8-bit pixels as PNG, with the profile as its iCCP chunk and the
/// XMP packet as an iTXt chunk; `level` 0-9 picks the compression effort.
pub fn encode(raster: &Raster, level: u8, extra: Embedded) -> Result<Vec<u8>, EncodeError> {
    let failed = |e: png::EncodingError| EncodeError::library(EncodeFormat::Png, e);
    let mut out = Vec::new();
    let mut info = png::Info::with_size(raster.width, raster.height);
    info.icc_profile = extra.icc.map(std::borrow::Cow::Borrowed);
    if let Some(xmp) = extra.xmp {
        info.utf8_text
            .push(png::text_metadata::ITXtChunk::new(XMP_KEYWORD, xmp));
    }
    let mut enc = png::Encoder::with_info(&mut out, info).map_err(failed)?;
    enc.set_color(match raster.channels {
        1 => png::ColorType::Grayscale,
        2 => png::ColorType::GrayscaleAlpha,
        3 => png::ColorType::Rgb,
        _ => png::ColorType::Rgba,
    });
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(match level {
        0..=2 => png::Compression::Fast,
        3..=6 => png::Compression::Balanced,
        _ => png::Compression::High,
    });
    let mut writer = enc.write_header().map_err(failed)?;
    writer.write_image_data(&raster.data).map_err(failed)?;
    writer.finish().map_err(failed)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png_signature() {
        let r = Raster::filled(3, 2, 3, 9);
        let p = encode(&r, 1, Embedded::default()).expect("encode");
        assert_eq!(&p[..8], b"\x89PNG\r\n\x1a\n");
    }

    #[test]
    fn icc_profile_and_xmp_round_trip() {
        let r = Raster::filled(3, 2, 3, 9);
        let profile: Vec<u8> = (0..3000u32).map(|i| (i % 7) as u8).collect();
        let extra = Embedded {
            icc: Some(&profile),
            xmp: Some("<x:xmpmeta xmlns:x='adobe:ns:meta/'/>"),
        };
        let back = decode(&encode(&r, 1, extra).expect("encode"), 100).expect("decode");
        assert_eq!((&back.raster, back.icc.as_deref()), (&r, extra.icc));
        assert_eq!(back.xmp.as_deref(), extra.xmp);
        let plain = encode(&r, 1, Embedded::default()).expect("encode");
        let back = decode(&plain, 100).expect("decode");
        assert_eq!((back.icc, back.xmp), (None, None));
    }
}
