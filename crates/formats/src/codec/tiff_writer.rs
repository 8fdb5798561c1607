//! The TIFF writer: little-endian classic TIFF or BigTIFF written in one pass
//! ([`TiffSink`], which `iipsrv convert` streams pyramids through), and [`write()`], which
//! puts 8-bit grey/RGB rasters (optionally with alpha), one IFD per pyramid level, tiled or
//! as one strip, compressed with none, LZW, deflate, zstd, JPEG or WebP, into one TIFF in
//! memory: TIFF answers, the demo image and test images.
//!
//! Written here rather than taken from the `tiff` crate because that encoder cannot write
//! JPEG-compressed tiles nor a pyramid of reduced-resolution IFDs.

use super::{jpeg, lossless, webp};
use crate::error::{EncodeError, EncodeFormat};
use iipsrv_core::raster::Raster;
use iipsrv_core::view::Rect;
use std::io::{Cursor, Seek, SeekFrom, Write};

/// Compression of the written pixel data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Compression {
    /// Uncompressed (1).
    None,
    /// LZW (5).
    Lzw,
    /// Deflate (8) at zlib level 1-9 (clamped).
    Deflate(u8),
    /// zstd (50000) at level 1-19 (clamped).
    Zstd(u8),
    /// JPEG (7) at the given quality; YCbCr 4:2:0 for colour.
    Jpeg(u8),
    /// WebP (50001) at the given quality, or lossless for `None`.
    Webp(Option<f32>),
}

impl Compression {
    /// The TIFF Compression tag value.
    pub fn code(self) -> u16 {
        match self {
            Compression::None => 1,
            Compression::Lzw => 5,
            Compression::Deflate(_) => 8,
            Compression::Zstd(_) => 50000,
            Compression::Jpeg(_) => 7,
            Compression::Webp(_) => 50001,
        }
    }

    fn compress(self, block: &Raster) -> Result<Vec<u8>, EncodeError> {
        Ok(match self {
            Compression::None => block.data.clone(),
            Compression::Lzw => lossless::lzw(&block.data),
            Compression::Deflate(l) => lossless::deflate_level(&block.data, l.clamp(1, 9).into()),
            Compression::Zstd(l) => lossless::zstd_level(&block.data, l.clamp(1, 19).into()),
            Compression::Jpeg(q) => jpeg::encode(block, q)?,
            Compression::Webp(q) => webp::encode(block, q)?,
        })
    }
}

/// A field value, typed as TIFF stores it.
#[derive(Debug, Clone)]
pub enum Value {
    /// SHORT (3).
    Short(Vec<u16>),
    /// LONG (4).
    Long(Vec<u32>),
    /// File offsets or byte counts: LONG in classic TIFF, LONG8 (16) in BigTIFF.
    Offsets(Vec<u64>),
    /// UNDEFINED (7) bytes.
    Bytes(Vec<u8>),
    /// ASCII (2), NUL added.
    Ascii(String),
}

/// One directory entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Tag number.
    pub tag: u16,
    /// Value.
    pub value: Value,
}

impl Entry {
    /// An entry (builder style).
    pub fn new(tag: u16, value: Value) -> Entry {
        Entry { tag, value }
    }

    /// Field type code, count and value bytes (little endian).
    fn encode(&self, big: bool) -> (u16, u64, Vec<u8>) {
        fn le<const N: usize, T: Copy>(v: &[T], bytes: impl Fn(T) -> [u8; N]) -> Vec<u8> {
            v.iter().flat_map(|&x| bytes(x)).collect()
        }
        let n = |len: usize| len as u64;
        match &self.value {
            Value::Short(v) => (3, n(v.len()), le(v, u16::to_le_bytes)),
            Value::Long(v) => (4, n(v.len()), le(v, u32::to_le_bytes)),
            Value::Offsets(v) if big => (16, n(v.len()), le(v, u64::to_le_bytes)),
            Value::Offsets(v) => (4, n(v.len()), le(v, |x| (x as u32).to_le_bytes())),
            Value::Bytes(v) => (7, n(v.len()), v.clone()),
            Value::Ascii(s) => {
                let mut b = s.as_bytes().to_vec();
                b.push(0);
                (2, n(b.len()), b)
            }
        }
    }
}

/// A TIFF being written to `W` (a file, or memory) in one pass: blocks of pixel data are
/// appended as they are made, the directories (with the block offsets now known) go at
/// the end, and the header is patched to point at the first. Nothing but the offset
/// tables has to stay in memory, so `iipsrv convert` streams pyramids of any size through
/// it; TIFF answers use it on a `Vec`.
pub struct TiffSink<W: Write + Seek> {
    out: W,
    pos: u64,
    big: bool,
}

impl<W: Write + Seek> TiffSink<W> {
    /// Writes the header to `out` (classic TIFF, or BigTIFF when `big`).
    pub fn new(mut out: W, big: bool) -> std::io::Result<TiffSink<W>> {
        let header: &[u8] = if big {
            &[b'I', b'I', 43, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        } else {
            &[b'I', b'I', 42, 0, 0, 0, 0, 0]
        };
        out.write_all(header)?;
        Ok(TiffSink {
            out,
            pos: header.len() as u64,
            big,
        })
    }

    /// Appends one block (at an even offset) and returns its offset. A classic TIFF that
    /// would pass 4 GB is an error that names `--bigtiff`.
    pub fn append(&mut self, data: &[u8]) -> Result<u64, EncodeError> {
        if self.pos % 2 == 1 {
            self.write(&[0])?;
        }
        let at = self.pos;
        let (size, max) = (at + data.len() as u64, u32::MAX as u64);
        if !self.big && size > max {
            return Err(EncodeError::TiffTooLarge { size, max });
        }
        self.write(data)?;
        Ok(at)
    }

    fn write(&mut self, data: &[u8]) -> Result<(), EncodeError> {
        self.out.write_all(data).map_err(write_failed)?;
        self.pos += data.len() as u64;
        Ok(())
    }

    /// Writes the directories, chained in the order given, points the header at the first
    /// and flushes; gives the writer back.
    pub fn finish(mut self, mut ifds: Vec<Vec<Entry>>) -> Result<W, EncodeError> {
        let mut first = None;
        let count = ifds.len();
        for (i, entries) in ifds.iter_mut().enumerate() {
            entries.sort_by_key(|e| e.tag);
            if self.pos % 2 == 1 {
                self.write(&[0])?;
            }
            let at = self.pos;
            let len = self.directory(entries, at, 0).len() as u64;
            let next = if i + 1 < count { at + len + len % 2 } else { 0 };
            let bytes = self.directory(entries, at, next);
            self.append(&bytes)?;
            first.get_or_insert(at);
        }
        let first = first.ok_or(EncodeError::NoLevels)?;
        let (field, bytes) = if self.big {
            (8, first.to_le_bytes().to_vec())
        } else {
            (4, (first as u32).to_le_bytes().to_vec())
        };
        self.out
            .seek(SeekFrom::Start(field))
            .map_err(write_failed)?;
        self.out.write_all(&bytes).map_err(write_failed)?;
        self.out.flush().map_err(write_failed)?;
        Ok(self.out)
    }

    /// One directory placed at `at`: entry count, entries, next-directory offset, then the
    /// values that do not fit in an entry.
    fn directory(&self, entries: &[Entry], at: u64, next: u64) -> Vec<u8> {
        let (count_len, entry_len, inline) = if self.big { (8, 20, 8) } else { (2, 12, 4) };
        let mut extra_at = at + count_len + entry_len * entries.len() as u64 + inline;
        let mut head = Vec::new();
        let mut extra = Vec::new();
        let put = |out: &mut Vec<u8>, v: u64, width: u64| {
            out.extend_from_slice(&v.to_le_bytes()[..width as usize]);
        };
        put(&mut head, entries.len() as u64, count_len);
        for e in entries {
            let (kind, count, mut bytes) = e.encode(self.big);
            head.extend_from_slice(&e.tag.to_le_bytes());
            head.extend_from_slice(&kind.to_le_bytes());
            put(&mut head, count, inline);
            if bytes.len() as u64 <= inline {
                bytes.resize(inline as usize, 0);
                head.extend_from_slice(&bytes);
            } else {
                put(&mut head, extra_at, inline);
                if bytes.len() % 2 == 1 {
                    bytes.push(0);
                }
                extra_at += bytes.len() as u64;
                extra.extend_from_slice(&bytes);
            }
        }
        put(&mut head, next, inline);
        head.extend_from_slice(&extra);
        head
    }
}

/// [`EncodeError::Io`] for a failed write of the output.
fn write_failed(error: std::io::Error) -> EncodeError {
    EncodeError::Io {
        op: "cannot write the output",
        error,
    }
}

/// Writes `levels` (largest first) as one classic TIFF in memory. `tile` = Some(size)
/// writes square tiles of that size (a multiple of 16), None one strip per level. The ICC
/// profile and the XMP packet (XMLPacket) go on level 0.
pub fn write(
    levels: &[Raster],
    tile: Option<u32>,
    compression: Compression,
    extra: super::Embedded,
) -> Result<Vec<u8>, EncodeError> {
    let mut sink = TiffSink::new(Cursor::new(Vec::new()), false).map_err(write_failed)?;
    let mut ifds = Vec::with_capacity(levels.len());
    for (i, level) in levels.iter().enumerate() {
        if level.channels == 0 || level.channels > 4 {
            return Err(EncodeError::Channels {
                format: EncodeFormat::Tiff,
                channels: level.channels,
            });
        }
        let (tw, th) = tile.map_or((level.width, level.height), |t| (t, t));
        let mut offsets = Vec::new();
        let mut counts = Vec::new();
        for b in split_blocks(level, tw, th) {
            let data = compression.compress(&b)?;
            offsets.push(sink.append(&data)?);
            counts.push(data.len() as u64);
        }
        let blocks = Blocks {
            tile: tile.map(|_| (tw, th)),
            offsets,
            counts,
        };
        ifds.push(level_entries(level, i, blocks, compression, extra));
    }
    Ok(sink.finish(ifds)?.into_inner())
}

/// Cuts a level into tiles (edge tiles padded to the full tile size by repeating nothing:
/// zeros) or returns it whole for one strip.
fn split_blocks(level: &Raster, tw: u32, th: u32) -> Vec<Raster> {
    if tw == level.width && th == level.height {
        return vec![level.clone()];
    }
    let mut blocks = Vec::new();
    for ty in 0..level.height.div_ceil(th) {
        for tx in 0..level.width.div_ceil(tw) {
            let (x, y) = (tx * tw, ty * th);
            let w = tw.min(level.width - x);
            let h = th.min(level.height - y);
            let mut b = Raster::filled(tw, th, level.channels, 0);
            b.blit(level, Rect { x, y, w, h }, 0, 0);
            blocks.push(b);
        }
    }
    blocks
}

/// Where a level's pixel data went: tile size (None: one strip), offsets and byte counts.
struct Blocks {
    tile: Option<(u32, u32)>,
    offsets: Vec<u64>,
    counts: Vec<u64>,
}

/// The directory of level `index`.
fn level_entries(
    level: &Raster,
    index: usize,
    blocks: Blocks,
    compression: Compression,
    extra: super::Embedded,
) -> Vec<Entry> {
    let ch = level.channels as u16;
    let colour = ch >= 3;
    let jpeg_colour = colour && matches!(compression, Compression::Jpeg(_));
    let photometric = match (colour, jpeg_colour) {
        (_, true) => 6,
        (true, false) => 2,
        (false, _) => 1,
    };
    let long = |v: u32| Value::Long(vec![v]);
    let short = |v: u16| Value::Short(vec![v]);
    let mut e = vec![
        Entry::new(254, long(u32::from(index > 0))),
        Entry::new(256, long(level.width)),
        Entry::new(257, long(level.height)),
        Entry::new(258, Value::Short(vec![8; ch as usize])),
        Entry::new(259, short(compression.code())),
        Entry::new(262, short(photometric)),
        Entry::new(277, short(ch)),
        Entry::new(284, short(1)),
    ];
    match blocks.tile {
        None => e.extend([
            Entry::new(273, Value::Offsets(blocks.offsets)),
            Entry::new(278, long(level.height)),
            Entry::new(279, Value::Offsets(blocks.counts)),
        ]),
        Some((tw, th)) => e.extend([
            Entry::new(322, long(tw)),
            Entry::new(323, long(th)),
            Entry::new(324, Value::Offsets(blocks.offsets)),
            Entry::new(325, Value::Offsets(blocks.counts)),
        ]),
    }
    if ch == 2 || ch == 4 {
        e.push(Entry::new(338, short(2)));
    }
    if jpeg_colour {
        e.push(Entry::new(530, Value::Short(vec![2, 2])));
    }
    if index == 0 {
        e.extend(embedded_entries(extra));
    }
    e
}

/// The entries of the first directory that carry `extra`: XMLPacket (700) and the ICC
/// profile (34675).
pub fn embedded_entries(extra: super::Embedded) -> impl Iterator<Item = Entry> {
    let bytes = |tag, b: &[u8]| Entry::new(tag, Value::Bytes(b.to_vec()));
    let xmp = extra.xmp.map(|x| bytes(700, x.as_bytes()));
    xmp.into_iter().chain(extra.icc.map(|p| bytes(34675, p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that refuses every write, as a full disk does.
    struct Full;

    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "No space left",
            ))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Seek for Full {
        fn seek(&mut self, _: SeekFrom) -> std::io::Result<u64> {
            Ok(0)
        }
    }

    #[test]
    fn refusals_are_typed_with_their_messages() {
        let five = Raster::filled(2, 2, 5, 0);
        match write(&[five], None, Compression::None, Default::default()) {
            Err(e @ EncodeError::Channels { channels: 5, .. }) => {
                assert_eq!(e.to_string(), "cannot write 5 channels")
            }
            other => panic!("{other:?}"),
        }
        match write(&[], None, Compression::None, Default::default()) {
            Err(e @ EncodeError::NoLevels) => assert_eq!(e.to_string(), "no levels to write"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_failed_write_is_io_with_the_systems_error() {
        let mut sink = TiffSink {
            out: Full,
            pos: 8,
            big: false,
        };
        match sink.append(&[1, 2, 3]) {
            Err(e @ EncodeError::Io { .. }) => {
                assert_eq!(e.to_string(), "cannot write the output: No space left")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_classic_tiff_past_4_gb_names_bigtiff() {
        let mut sink = TiffSink {
            out: Cursor::new(Vec::new()),
            pos: u32::MAX as u64 - 1,
            big: false,
        };
        match sink.append(&[1, 2, 3, 4]) {
            Err(e @ EncodeError::TiffTooLarge { size, max }) => {
                assert_eq!((size, max), (u32::MAX as u64 + 3, u32::MAX as u64));
                assert_eq!(e.to_string(), "the output passes 4 GB: use --bigtiff");
            }
            other => panic!("{other:?}"),
        }
    }
}
