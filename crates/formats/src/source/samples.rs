//! Turning decompressed TIFF bytes of wide samples (12/14/16/32/64-bit integers and floats,
//! signed 8-bit) into floats: byte order, the horizontal predictor on whole samples
//! (predictor 2) and the floating-point predictor (predictor 3, byte planes most
//! significant first); and unpacking samples of 1, 2, 4, 12 or 14 bits, packed most
//! significant bit first with each row starting on a byte.
//!
//! Written for this project from TIFF 6.0 (section 2, BitsPerSample and the padding of
//! rows) and Adobe Photoshop TIFF Technical Note 3.

use crate::error::{SourceError, SourceResult};
use iipsrv_core::info::SampleFormat;

/// How a tile's bytes are laid out.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Bits per sample: 8, 12, 14, 16, 32 or 64.
    pub bits: u16,
    /// Integer (signed or not) or float.
    pub format: SampleFormat,
    /// Big-endian file ("MM").
    pub big_endian: bool,
    /// TIFF Predictor tag: 1 none, 2 horizontal, 3 floating point.
    pub predictor: u16,
    /// Samples in one row of the tile (width × channels).
    pub row_samples: usize,
    /// Samples per pixel.
    pub channels: usize,
}

/// Converts `bytes` (a whole number of rows, already decompressed) to float samples.
pub fn to_floats(mut bytes: Vec<u8>, l: &Layout) -> SourceResult<Vec<f32>> {
    if !l.bits.is_multiple_of(8) {
        return packed_floats(&bytes, l);
    }
    let size = (l.bits / 8) as usize;
    if l.row_samples == 0 || size == 0 || !bytes.len().is_multiple_of(l.row_samples * size) {
        return Err(SourceError::corrupt("tile data is not whole rows"));
    }
    let big = if l.predictor == 3 {
        if l.format != SampleFormat::Float {
            return Err(SourceError::corrupt(
                "floating-point predictor on integer samples",
            ));
        }
        unpredict_float(&mut bytes, l.row_samples, l.channels, size);
        true
    } else {
        l.big_endian
    };
    let mut words = words(&bytes, size, big);
    if l.predictor == 2 {
        // On the stored words, as libtiff does (float words too).
        unpredict_words(&mut words, l);
    }
    Ok(words
        .into_iter()
        .map(|w| value(w, size, l.format))
        .collect())
}

/// Bytes of one stored row of `row_samples` samples of `bits` bits: rows start on a byte.
pub fn row_bytes(row_samples: usize, bits: u16) -> usize {
    (row_samples * bits as usize).div_ceil(8)
}

/// The values of samples of `bits` bits (1 to 16), packed most significant bit first in
/// rows of `row_samples` samples, each row padded to a whole byte.
pub fn unpack(bytes: &[u8], bits: u16, row_samples: usize) -> SourceResult<Vec<u16>> {
    let stride = row_bytes(row_samples, bits);
    if stride == 0 || bits == 0 || bits > 16 || !bytes.len().is_multiple_of(stride) {
        return Err(SourceError::corrupt("tile data is not whole rows"));
    }
    let mut out = Vec::with_capacity(bytes.len() / stride * row_samples);
    for row in bytes.chunks_exact(stride) {
        unpack_row(row, bits, row_samples, &mut out);
    }
    Ok(out)
}

/// Appends the `n` samples of one packed row to `out`.
fn unpack_row(row: &[u8], bits: u16, n: usize, out: &mut Vec<u16>) {
    let mask = (1u32 << bits) - 1;
    // at most bits + 7 bits wait in `acc`; older ones shift out of the word
    let (mut acc, mut have) = (0u32, 0u16);
    let mut bytes = row.iter();
    for _ in 0..n {
        while have < bits {
            acc = (acc << 8) | u32::from(bytes.next().copied().unwrap_or(0));
            have += 8;
        }
        have -= bits;
        out.push(((acc >> have) & mask) as u16);
    }
}

/// Samples of 1, 2 or 4 bits widened to 8 bits over the full range (1-bit 0 and 255,
/// 2-bit v × 85, 4-bit v × 17), as libtiff-based readers show them.
pub fn widen_to_u8(bytes: &[u8], bits: u16, row_samples: usize) -> SourceResult<Vec<u8>> {
    if !matches!(bits, 1 | 2 | 4) {
        return Err(SourceError::unsupported(format!(
            "{bits}-bit samples as 8-bit"
        )));
    }
    let scale = 255 / ((1u16 << bits) - 1);
    let values = unpack(bytes, bits, row_samples)?;
    Ok(values.into_iter().map(|v| (v * scale) as u8).collect())
}

/// Packed integer samples (12 or 14 bits) as floats; signed ones sign-extended.
fn packed_floats(bytes: &[u8], l: &Layout) -> SourceResult<Vec<f32>> {
    if l.predictor != 1 || l.format == SampleFormat::Float {
        return Err(SourceError::unsupported(format!(
            "{}-bit samples with predictor {} or as floats",
            l.bits, l.predictor
        )));
    }
    let half = 1i32 << (l.bits - 1);
    let signed = l.format == SampleFormat::Signed;
    let values = unpack(bytes, l.bits, l.row_samples)?;
    Ok(values
        .into_iter()
        .map(|v| match i32::from(v) {
            v if signed && v >= half => (v - 2 * half) as f32,
            v => v as f32,
        })
        .collect())
}

/// Every sample's stored bits, in the given byte order.
fn words(bytes: &[u8], size: usize, big: bool) -> Vec<u64> {
    let fold = |acc: u64, b: &u8| (acc << 8) | *b as u64;
    bytes
        .chunks_exact(size)
        .map(|c| {
            if big {
                c.iter().fold(0, fold)
            } else {
                c.iter().rev().fold(0, fold)
            }
        })
        .collect()
}

/// One sample's value from its stored bits.
fn value(w: u64, size: usize, format: SampleFormat) -> f32 {
    match (format, size) {
        (SampleFormat::Float, 4) => f32::from_bits(w as u32),
        (SampleFormat::Float, 8) => f64::from_bits(w) as f32,
        (SampleFormat::Float, 2) => half_to_f32(w as u16),
        (SampleFormat::Signed, 1) => w as u8 as i8 as f32,
        (SampleFormat::Signed, 2) => w as u16 as i16 as f32,
        (SampleFormat::Signed, 4) => w as u32 as i32 as f32,
        (SampleFormat::Signed, _) => w as i64 as f32,
        _ => w as f32,
    }
}

/// Predictor 2: each word is the sum of the differences so far along its row, for each
/// channel, wrapping at the sample width.
fn unpredict_words(data: &mut [u64], l: &Layout) {
    let mask = if l.bits >= 64 {
        u64::MAX
    } else {
        (1u64 << l.bits) - 1
    };
    for row in data.chunks_exact_mut(l.row_samples) {
        for i in l.channels..row.len() {
            row[i] = row[i].wrapping_add(row[i - l.channels]) & mask;
        }
    }
}

/// IEEE half precision to single.
fn half_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let frac = (h & 0x3ff) as f32;
    match exp {
        0 => sign * frac * 2f32.powi(-24),
        31 if frac == 0.0 => sign * f32::INFINITY,
        31 => f32::NAN,
        e => sign * (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}

/// Predictor 3: undo the byte differencing along each row, then gather each sample's bytes
/// from the row's byte planes (most significant plane first) into big-endian order.
fn unpredict_float(bytes: &mut [u8], row_samples: usize, channels: usize, size: usize) {
    let row_bytes = row_samples * size;
    let mut planes = vec![0u8; row_bytes];
    for row in bytes.chunks_exact_mut(row_bytes) {
        for i in channels..row.len() {
            row[i] = row[i].wrapping_add(row[i - channels]);
        }
        planes.copy_from_slice(row);
        for s in 0..row_samples {
            for b in 0..size {
                row[s * size + b] = planes[b * row_samples + s];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(bits: u16, format: SampleFormat, predictor: u16, row: usize) -> Layout {
        Layout {
            bits,
            format,
            big_endian: false,
            predictor,
            row_samples: row,
            channels: 1,
        }
    }

    #[test]
    fn sixteen_bit_little_endian_with_predictor() {
        let diffs: [u16; 3] = [1000, 65535, 2];
        let bytes = diffs.iter().flat_map(|v| v.to_le_bytes()).collect();
        let l = layout(16, SampleFormat::Unsigned, 2, 3);
        assert_eq!(to_floats(bytes, &l).ok(), Some(vec![1000.0, 999.0, 1001.0]));
    }

    #[test]
    fn signed_and_big_endian() {
        let mut l = layout(16, SampleFormat::Signed, 1, 2);
        l.big_endian = true;
        let bytes = [(-5i16).to_be_bytes(), 300i16.to_be_bytes()].concat();
        assert_eq!(to_floats(bytes, &l).ok(), Some(vec![-5.0, 300.0]));
    }

    #[test]
    fn float_predictor_round_trip() {
        let values = [1200.5f32, -3.25, 0.0, 8848.0];
        // Encode as libtiff does: big-endian byte planes, then byte differencing.
        let be: Vec<[u8; 4]> = values.iter().map(|v| v.to_be_bytes()).collect();
        let mut planes: Vec<u8> = (0..4).flat_map(|b| be.iter().map(move |s| s[b])).collect();
        for i in (1..planes.len()).rev() {
            planes[i] = planes[i].wrapping_sub(planes[i - 1]);
        }
        let l = layout(32, SampleFormat::Float, 3, 4);
        assert_eq!(to_floats(planes, &l).ok(), Some(values.to_vec()));
    }

    #[test]
    fn horizontal_predictor_on_float_words() {
        // libtiff differences the 32-bit words of floats like integers.
        let values = [1.5f32, 1000.25, -2.0];
        let mut prev = 0u32;
        let mut bytes = Vec::new();
        for v in values {
            bytes.extend(v.to_bits().wrapping_sub(prev).to_le_bytes());
            prev = v.to_bits();
        }
        let l = layout(32, SampleFormat::Float, 2, 3);
        assert_eq!(to_floats(bytes, &l).ok(), Some(values.to_vec()));
    }

    #[test]
    fn half_floats() {
        assert_eq!(half_to_f32(0x3c00), 1.0);
        assert_eq!(half_to_f32(0xc000), -2.0);
    }

    #[test]
    fn sub_byte_rows_are_padded_and_widened() {
        // 3 samples of 4 bits per row: 0xF, 0x1, 0x8 then 4 bits of padding
        let bytes = vec![0xf1, 0x80, 0x01, 0x20];
        assert_eq!(
            widen_to_u8(&bytes, 4, 3).ok(),
            Some(vec![255, 17, 136, 0, 17, 34])
        );
        // 1-bit: 10 samples per row take 2 bytes
        let bytes = vec![0b1010_0000, 0b0100_0000];
        let want = [255, 0, 255, 0, 0, 0, 0, 0, 0, 255];
        assert_eq!(widen_to_u8(&bytes, 1, 10).ok(), Some(want.to_vec()));
        // 2-bit
        assert_eq!(
            widen_to_u8(&[0b0001_1011], 2, 4).ok(),
            Some(vec![0, 85, 170, 255])
        );
        assert!(widen_to_u8(&[0; 3], 4, 3).is_err());
    }

    #[test]
    fn twelve_and_fourteen_bit_samples_unpack_big_endian() {
        // 12-bit 0xABC, 0x123, 0xFFF: 4.5 bytes, padded to 5
        let l = layout(12, SampleFormat::Unsigned, 1, 3);
        let bytes = vec![0xab, 0xc1, 0x23, 0xff, 0xf0];
        assert_eq!(to_floats(bytes, &l).ok(), Some(vec![2748.0, 291.0, 4095.0]));
        // 14-bit 16383 then 1: 28 bits, padded to 4 bytes
        let l = layout(14, SampleFormat::Unsigned, 1, 2);
        let bytes = vec![0xff, 0xfc, 0x00, 0x10];
        assert_eq!(to_floats(bytes, &l).ok(), Some(vec![16383.0, 1.0]));
        // signed 12-bit -1 and 5
        let l = layout(12, SampleFormat::Signed, 1, 2);
        let bytes = vec![0xff, 0xf0, 0x05];
        assert_eq!(to_floats(bytes, &l).ok(), Some(vec![-1.0, 5.0]));
        // the horizontal predictor is not defined for packed samples
        let l = layout(12, SampleFormat::Unsigned, 2, 2);
        assert!(to_floats(vec![0; 3], &l).is_err());
    }

    #[test]
    fn partial_rows_are_corrupt() {
        let l = layout(16, SampleFormat::Unsigned, 1, 3);
        assert!(to_floats(vec![0; 5], &l).is_err());
    }
}
