//! PNG output (the `png` crate). PNG_QUALITY maps to the deflate effort: 1 fast … 9 best.

use crate::raster::Raster;

/// Encodes 1-4 channel 8-bit pixels as PNG; `level` 0-9 picks the compression effort.
pub fn encode(raster: &Raster, level: u8) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, raster.width, raster.height);
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
    let mut writer = enc.write_header().map_err(|e| e.to_string())?;
    writer
        .write_image_data(&raster.data)
        .map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png_signature() {
        let r = Raster::filled(3, 2, 3, 9);
        let p = encode(&r, 1).expect("encode");
        assert_eq!(&p[..8], b"\x89PNG\r\n\x1a\n");
    }
}
