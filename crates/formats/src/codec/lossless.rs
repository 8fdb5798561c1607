//! The lossless TIFF compressions — deflate, LZW, zstd, PackBits — and the horizontal
//! predictor.
//! Every decoder is bounded by the size the container promised, so a "zip bomb" tile
//! costs at most that much memory.

use crate::error::SourceError;
use crate::error::SourceResult;
use std::io::{Read, Write};

fn corrupt(what: &str, e: impl std::fmt::Display) -> SourceError {
    SourceError::corrupt(format!("bad {what} tile: {e}"))
}

/// Inflates zlib data into at most `expected` bytes; shorter output is padded with zeros
/// (libtiff does the same for short tiles).
pub fn inflate(data: &[u8], expected: usize) -> SourceResult<Vec<u8>> {
    let mut out = Vec::with_capacity(expected);
    flate2::read::ZlibDecoder::new(data)
        .take(expected as u64)
        .read_to_end(&mut out)
        .map_err(|e| corrupt("deflate", e))?;
    out.resize(expected, 0);
    Ok(out)
}

/// Decodes TIFF-flavoured LZW (MSB first, early code-size switch) into at most `expected`
/// bytes.
pub fn unlzw(data: &[u8], expected: usize) -> SourceResult<Vec<u8>> {
    let mut out = vec![0u8; expected];
    let mut decoder = weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
    let (mut consumed_in, mut written) = (0, 0);
    while written < expected && consumed_in < data.len() {
        let r = decoder.decode_bytes(&data[consumed_in..], &mut out[written..]);
        consumed_in += r.consumed_in;
        written += r.consumed_out;
        match r.status {
            Ok(weezl::LzwStatus::Ok) if r.consumed_in + r.consumed_out > 0 => {}
            Ok(_) => break,
            Err(e) => return Err(corrupt("LZW", e)),
        }
    }
    Ok(out)
}

/// Decompresses a zstd frame into at most `expected` bytes.
pub fn unzstd(data: &[u8], expected: usize) -> SourceResult<Vec<u8>> {
    let mut out = zstd::bulk::decompress(data, expected).map_err(|e| corrupt("zstd", e))?;
    out.resize(expected, 0);
    Ok(out)
}

/// Decodes PackBits (TIFF compression 32773, TIFF 6.0 section 9) into `expected` bytes: a
/// count byte n then n + 1 literal bytes (n ≥ 0), or one byte repeated 1 - n times
/// (n < 0; -128 is nothing); output past `expected` is dropped, short output padded with
/// zeros.
pub fn unpackbits(data: &[u8], expected: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(expected);
    let mut i = 0;
    while i < data.len() && out.len() < expected {
        let n = data[i] as i8;
        i += 1;
        match n {
            -128 => {}
            n if n < 0 => {
                let Some(&b) = data.get(i) else { break };
                let run = (1 - n as isize) as usize;
                out.resize((out.len() + run).min(expected), b);
                i += 1;
            }
            n => {
                let end = (i + n as usize + 1).min(data.len());
                out.extend_from_slice(&data[i..end]);
                i = end;
            }
        }
    }
    out.resize(expected, 0);
    out
}

/// Undoes TIFF predictor 2 (horizontal differencing) in place for 8-bit samples.
pub(crate) fn unpredict_horizontal_u8(data: &mut [u8], row_samples: usize, channels: usize) {
    if row_samples == 0 {
        return;
    }
    for row in data.chunks_exact_mut(row_samples) {
        for i in channels..row.len() {
            row[i] = row[i].wrapping_add(row[i - channels]);
        }
    }
}

/// Compresses with zlib at `level` 0-9 (6 is zlib's and libtiff's default, for files that
/// are written once and kept).
pub fn deflate_level(data: &[u8], level: u32) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(level));
    // Writing into a Vec cannot fail.
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

/// Compresses with TIFF LZW (compression 5).
pub fn lzw(data: &[u8]) -> Vec<u8> {
    weezl::encode::Encoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8)
        .encode(data)
        .unwrap_or_default()
}

/// Compresses with zstd (TIFF compression 50000) at `level` 1-19 (3 is zstd's default).
pub fn zstd_level(data: &[u8], level: i32) -> Vec<u8> {
    zstd::bulk::compress(data, level).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..4096u32).map(|i| (i * 7 % 253) as u8).collect()
    }

    #[test]
    fn round_trips() {
        let d = sample();
        assert_eq!(inflate(&deflate_level(&d, 1), d.len()).expect("inflate"), d);
        assert_eq!(unlzw(&lzw(&d), d.len()).expect("lzw"), d);
        assert_eq!(unzstd(&zstd_level(&d, 3), d.len()).expect("zstd"), d);
    }

    #[test]
    fn output_is_bounded() {
        let big = vec![0u8; 1 << 20];
        assert_eq!(
            inflate(&deflate_level(&big, 9), 100)
                .expect("inflate")
                .len(),
            100
        );
        assert_eq!(unlzw(&lzw(&big), 100).expect("lzw").len(), 100);
        assert!(unzstd(&zstd_level(&big, 19), 100).is_err());
    }

    #[test]
    fn garbage_is_an_error_or_bounded() {
        assert!(inflate(&[1, 2, 3, 4], 10).is_err());
        assert!(unzstd(&[1, 2, 3, 4], 10).is_err());
        let _ = unlzw(&[0xFF; 64], 10);
    }

    #[test]
    fn packbits_as_the_spec_example() {
        // TIFF 6.0, section 9: the packed form of the example's unpacked bytes
        let packed = [
            0xfe, 0xaa, 0x02, 0x80, 0x00, 0x2a, 0xfd, 0xaa, 0x03, 0x80, 0x00, 0x2a, 0x22, 0xf7,
            0xaa,
        ];
        let unpacked = [
            0xaa, 0xaa, 0xaa, 0x80, 0x00, 0x2a, 0xaa, 0xaa, 0xaa, 0xaa, 0x80, 0x00, 0x2a, 0x22,
            0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa,
        ];
        assert_eq!(unpackbits(&packed, unpacked.len()), unpacked);
        assert_eq!(unpackbits(&packed, 5), unpacked[..5]);
        // cut short: a literal run, then a repeat without its byte
        assert_eq!(unpackbits(&[0x7f, 1, 0x81], 4), [1, 0x81, 0, 0]);
        assert_eq!(unpackbits(&[0x81], 2), [0, 0]);
    }

    #[test]
    fn predictor_accumulates() {
        let mut d = vec![10, 20, 1, 1, 1, 1];
        unpredict_horizontal_u8(&mut d, 6, 2);
        assert_eq!(d, vec![10, 20, 11, 21, 12, 22]);
    }
}
