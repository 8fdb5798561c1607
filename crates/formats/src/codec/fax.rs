//! CCITT fax tiles and strips of bilevel TIFFs (compression 2, modified Huffman; 3, Group 3
//! one- or two-dimensional; 4, Group 4), decoded by `hayro-ccitt` into rows of 1-bit
//! samples packed as an uncompressed TIFF stores them (a black run's bits set, each row
//! padded to a byte), so the TIFF reader goes on as for uncompressed bilevel data.
//!
//! Spec: TIFF 6.0 sections 10 and 11 (T4Options), ITU-T T.4 and T.6.

use crate::error::{SourceError, SourceResult};
use hayro_ccitt::{DecodeSettings, Decoder, DecoderContext, EncodingMode};

/// How a TIFF stores its fax data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fax {
    /// Compression 2: modified Huffman rows, each starting on a byte, no end-of-line codes.
    Huffman,
    /// Compression 3 with its T4Options: bit 0 two-dimensional coding, bit 2 fill bits
    /// before each end-of-line code (rows then start on a byte).
    Group3(u32),
    /// Compression 4.
    Group4,
}

/// The rows of a `width` × `rows` fax tile (or strip) as packed 1-bit samples; rows the
/// data does not reach are left 0. Corrupt data is an error.
pub fn decode(data: &[u8], fax: Fax, width: u32, rows: u32) -> SourceResult<Vec<u8>> {
    let stride = (width as usize).div_ceil(8);
    let mut sink = PackedRows {
        out: vec![0; stride * rows as usize],
        stride,
        width,
        done: 0,
    };
    let mut context = DecoderContext::new(settings(fax, width, rows));
    hayro_ccitt::decode(data, &mut sink, &mut context)
        .map_err(|e| SourceError::corrupt(format!("bad CCITT fax tile: {e}")))?;
    Ok(sink.out)
}

/// The decoder's settings for one tile or strip.
fn settings(fax: Fax, width: u32, rows: u32) -> DecodeSettings {
    let (encoding, end_of_line, rows_are_byte_aligned) = match fax {
        Fax::Huffman => (EncodingMode::Group3_1D, false, true),
        Fax::Group3(options) if options & 1 != 0 => {
            (EncodingMode::Group3_2D, true, options & 4 != 0)
        }
        Fax::Group3(options) => (EncodingMode::Group3_1D, true, options & 4 != 0),
        Fax::Group4 => (EncodingMode::Group4, false, false),
    };
    DecodeSettings {
        columns: width,
        rows,
        end_of_block: true,
        end_of_line,
        rows_are_byte_aligned,
        encoding,
        strict: false,
    }
}

/// The decoded rows, packed most significant bit first.
struct PackedRows {
    out: Vec<u8>,
    stride: usize,
    width: u32,
    done: usize,
}

impl Decoder for PackedRows {
    fn push_row(&mut self, changes: &[u32]) {
        let start = self.done * self.stride;
        let Some(row) = self.out.get_mut(start..start + self.stride) else {
            return; // more rows than the tile has
        };
        for run in changes.chunks(2) {
            let end = run.get(1).copied().unwrap_or(self.width).min(self.width);
            for x in run[0].min(end)..end {
                row[x as usize / 8] |= 0x80 >> (x % 8);
            }
        }
        self.done += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_become_set_bits() {
        let mut sink = PackedRows {
            out: vec![0; 4],
            stride: 2,
            width: 12,
            done: 0,
        };
        sink.push_row(&[1, 3, 10]);
        sink.push_row(&[]);
        sink.push_row(&[0]);
        assert_eq!(sink.out, [0b0110_0000, 0b0011_0000, 0, 0]);
    }

    #[test]
    fn garbage_is_an_error_or_blank_rows_never_a_panic() {
        for fax in [Fax::Huffman, Fax::Group3(0), Fax::Group3(5), Fax::Group4] {
            for data in [&[][..], &[0xff; 7], &[0x00, 0x01, 0x55, 0xaa, 0x13]] {
                if let Ok(rows) = decode(data, fax, 37, 5) {
                    assert_eq!(rows.len(), 5 * 5);
                }
            }
        }
    }
}
