//! Where each codestream tile's tile-parts lie, read once per open image, so that a request
//! gives OpenJPEG only the main header and the tile-parts of the tiles it needs (a stream
//! spliced from them, [`Spliced`]) instead of letting it walk the tile-part headers of every
//! tile in the file: on a 20000 × 15000 file of 1200 tiles that walk was most of a 512-px
//! region's time.
//!
//! The index is built from the SOT markers (ISO/IEC 15444-1, A.4.2): each gives its tile's
//! number and its tile-part's length, so the walk reads 12 bytes per tile-part. Anything
//! unexpected (a marker other than SOT or EOC where a tile-part should start, a tile-part
//! running past the codestream, Psot 0, PPM packet headers in the main header, too many
//! tile-parts) gives no index, and the image is decoded from the whole file as before.

use crate::bytes::ByteSource;
use crate::error::SourceResult;

/// Most bytes of main header kept.
const MAIN_HEADER_LIMIT: usize = 1 << 20;
/// Most tile-parts indexed (16 bytes each).
const MAX_TILE_PARTS: usize = 1 << 20;
/// SOT, TLM, PPM and EOC markers.
const SOT: u16 = 0xff90;
const TLM: u16 = 0xff55;
const PPM: u16 = 0xff60;
const EOC: [u8; 2] = [0xff, 0xd9];

/// The tile-parts of a codestream.
#[derive(Debug)]
pub(crate) struct TileIndex {
    /// The main header (SOC to the first SOT) without TLM markers, whose tile-part lengths
    /// would not match a spliced stream (OpenJPEG seeks with them).
    main: Vec<u8>,
    /// Tile-parts in file order: tile number, file offset, length (SOT to the next SOT).
    parts: Vec<(u16, u64, u64)>,
}

/// The big-endian u16 at `at` of `b`.
fn be16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_be_bytes([s[0], s[1]]))
}

/// The big-endian u32 at `at` of `b`.
fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

impl TileIndex {
    /// Indexes the codestream in bytes `[start, end)` of `bytes`, with `tiles` codestream
    /// tiles; `None` when it is not laid out as expected (see the module comment).
    pub(crate) fn read(bytes: &dyn ByteSource, start: u64, end: u64, tiles: u32) -> Option<Self> {
        let end = end.min(bytes.len());
        let (main, first_sot) = Self::main_header(bytes, start, end)?;
        let parts = Self::tile_parts(bytes, first_sot, end, tiles).ok()??;
        Some(TileIndex { main, parts })
    }

    /// The main header without TLM markers, and the offset of the first SOT.
    fn main_header(bytes: &dyn ByteSource, start: u64, end: u64) -> Option<(Vec<u8>, u64)> {
        let n = end.saturating_sub(start).min(MAIN_HEADER_LIMIT as u64) as usize;
        let b = bytes.read_at(start, n).ok()?;
        let mut main = b.get(..2)?.to_vec();
        let mut pos = 2;
        loop {
            let marker = be16(&b, pos)?;
            if marker == SOT {
                return Some((main, start + pos as u64));
            }
            let len = be16(&b, pos + 2)? as usize;
            let segment = b.get(pos..pos + 2 + len)?;
            match marker {
                PPM => return None,
                TLM => {}
                _ => main.extend_from_slice(segment),
            }
            pos += 2 + len;
        }
    }

    /// The tile-parts from the first SOT at `at` to EOC or `end`; `Ok(None)` when they are
    /// not laid out as expected.
    fn tile_parts(
        bytes: &dyn ByteSource,
        mut at: u64,
        end: u64,
        tiles: u32,
    ) -> SourceResult<Option<Vec<(u16, u64, u64)>>> {
        let mut parts = Vec::new();
        while at + 2 <= end {
            let head = bytes.read_at(at, (end - at).min(12) as usize)?;
            if head.starts_with(&EOC) {
                break;
            }
            let (Some(SOT), Some(10), Some(tile), Some(len)) = (
                be16(&head, 0),
                be16(&head, 2),
                be16(&head, 4),
                be32(&head, 6),
            ) else {
                return Ok(None);
            };
            let len = len as u64;
            if len < 14 || at + len > end || tile as u32 >= tiles || parts.len() >= MAX_TILE_PARTS {
                return Ok(None);
            }
            parts.push((tile, at, len));
            at += len;
        }
        Ok(Some(parts))
    }

    /// A codestream of the main header, the tile-parts of tiles for which `wanted` says
    /// yes, and EOC, read from `bytes` as OpenJPEG asks.
    pub(crate) fn splice<'a>(
        &'a self,
        bytes: &'a dyn ByteSource,
        wanted: impl Fn(u16) -> bool,
    ) -> Spliced<'a> {
        let mut at = self.main.len() as u64;
        let mut parts = Vec::new();
        for &(tile, offset, len) in &self.parts {
            if wanted(tile) {
                parts.push((at, offset, len));
                at += len;
            }
        }
        Spliced {
            bytes,
            main: &self.main,
            parts,
            len: at + EOC.len() as u64,
        }
    }
}

/// A codestream made of the main header, some tile-parts of the file and EOC.
pub(crate) struct Spliced<'a> {
    bytes: &'a dyn ByteSource,
    main: &'a [u8],
    /// Tile-parts: offset in the spliced stream, offset in the file, length.
    parts: Vec<(u64, u64, u64)>,
    len: u64,
}

impl Spliced<'_> {
    /// Appends to `out` up to `want` bytes from spliced offset `at` (within one segment).
    fn read_segment(&self, at: u64, want: u64, out: &mut Vec<u8>) -> SourceResult<u64> {
        let main = self.main.len() as u64;
        if at < main {
            let n = want.min(main - at);
            out.extend_from_slice(&self.main[at as usize..(at + n) as usize]);
            return Ok(n);
        }
        let i = self.parts.partition_point(|p| p.0 <= at);
        match i.checked_sub(1).map(|i| self.parts[i]) {
            Some((start, offset, len)) if at < start + len => {
                let n = want.min(start + len - at);
                out.extend(self.bytes.read_at(offset + (at - start), n as usize)?);
                Ok(n)
            }
            _ => {
                let from = (at - (self.len - EOC.len() as u64)) as usize;
                let n = want.min((EOC.len() - from) as u64);
                out.extend_from_slice(&EOC[from..from + n as usize]);
                Ok(n)
            }
        }
    }
}

impl ByteSource for Spliced<'_> {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, len: usize) -> SourceResult<Vec<u8>> {
        if offset.saturating_add(len as u64) > self.len {
            return Err(crate::error::SourceError::corrupt(
                "JPEG2000: read past the spliced codestream",
            ));
        }
        let mut out = Vec::with_capacity(len);
        let mut at = offset;
        while (out.len()) < len {
            at += self.read_segment(at, (len - out.len()) as u64, &mut out)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::MemBytes;

    /// SOC, a SIZ-like segment, a TLM, then tile-parts of tiles 0, 1, 0 and EOC.
    fn stream() -> Vec<u8> {
        let mut b = vec![0xff, 0x4f, 0xff, 0x51, 0, 4, 1, 2];
        b.extend([0xff, 0x55, 0, 4, 9, 9]);
        for (tile, fill) in [(0u16, 0xa0u8), (1, 0xb0), (0, 0xc0)] {
            b.extend([0xff, 0x90, 0, 10]);
            b.extend(tile.to_be_bytes());
            b.extend(16u32.to_be_bytes());
            b.extend([0, 0, 0xff, 0x93, fill, fill]);
        }
        b.extend(EOC);
        b
    }

    #[test]
    fn splices_the_wanted_tiles_without_tlm() {
        let file = MemBytes(stream());
        let index = TileIndex::read(&file, 0, file.0.len() as u64, 2).expect("index");
        assert_eq!(index.main, [0xff, 0x4f, 0xff, 0x51, 0, 4, 1, 2]);
        assert_eq!(index.parts.len(), 3);
        let only0 = index.splice(&file, |t| t == 0);
        let all = only0.read_at(0, only0.len() as usize).expect("read");
        let mut expected = index.main.clone();
        expected.extend(&file.0[14..30]);
        expected.extend(&file.0[46..62]);
        expected.extend(EOC);
        assert_eq!(all, expected);
        // Reads across segment boundaries give the same bytes.
        for at in 0..all.len() {
            let n = (all.len() - at).min(7);
            assert_eq!(only0.read_at(at as u64, n).expect("part"), all[at..at + n]);
        }
        assert!(only0.read_at(1, all.len()).is_err());
    }

    #[test]
    fn unexpected_layouts_give_no_index() {
        let good = stream();
        let len = good.len() as u64;
        assert!(
            TileIndex::read(&MemBytes(good.clone()), 0, len, 1).is_none(),
            "tile 1 of 1"
        );
        let mut long = good.clone();
        long[14 + 9] = 200;
        assert!(
            TileIndex::read(&MemBytes(long), 0, len, 2).is_none(),
            "Psot too long"
        );
        let mut ppm = good.clone();
        ppm[9] = 0x60;
        assert!(TileIndex::read(&MemBytes(ppm), 0, len, 2).is_none(), "PPM");
        for cut in [3, 12, 20, 40] {
            let short = MemBytes(good[..cut].to_vec());
            assert!(
                TileIndex::read(&short, 0, cut as u64, 2).is_none(),
                "cut {cut}"
            );
        }
    }
}
