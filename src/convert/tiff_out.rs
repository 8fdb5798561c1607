//! The output file of `iipsrv convert`: a little-endian classic TIFF or BigTIFF written in
//! one pass. Tile data is appended as it is made, for every level at once; the directories
//! (one per level, largest first, with the tile offsets now known) go at the end, and the
//! header is patched to point at the first. Nothing but the offset tables stays in memory.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

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
        match &self.value {
            Value::Short(v) => (
                3,
                v.len() as u64,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
            Value::Long(v) => (
                4,
                v.len() as u64,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
            Value::Offsets(v) if big => (
                16,
                v.len() as u64,
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            ),
            Value::Offsets(v) => (
                4,
                v.len() as u64,
                v.iter().flat_map(|&x| (x as u32).to_le_bytes()).collect(),
            ),
            Value::Bytes(v) => (7, v.len() as u64, v.clone()),
            Value::Ascii(s) => {
                let mut b = s.as_bytes().to_vec();
                b.push(0);
                (2, b.len() as u64, b)
            }
        }
    }
}

/// The TIFF being written.
pub struct TiffSink {
    file: BufWriter<File>,
    pos: u64,
    big: bool,
}

impl TiffSink {
    /// Creates `path` and writes the header (classic TIFF, or BigTIFF when `big`).
    pub fn create(path: &Path, big: bool) -> std::io::Result<TiffSink> {
        let mut file = BufWriter::with_capacity(1 << 20, File::create(path)?);
        let header: &[u8] = if big {
            &[b'I', b'I', 43, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        } else {
            &[b'I', b'I', 42, 0, 0, 0, 0, 0]
        };
        file.write_all(header)?;
        Ok(TiffSink {
            file,
            pos: header.len() as u64,
            big,
        })
    }

    /// Appends one block (at an even offset) and returns its offset. A classic TIFF that
    /// would pass 4 GB is an error that names `--bigtiff`.
    pub fn append(&mut self, data: &[u8]) -> Result<u64, String> {
        if self.pos % 2 == 1 {
            self.write(&[0])?;
        }
        let at = self.pos;
        if !self.big && at + data.len() as u64 > u32::MAX as u64 {
            return Err("the output passes 4 GB: use --bigtiff".into());
        }
        self.write(data)?;
        Ok(at)
    }

    fn write(&mut self, data: &[u8]) -> Result<(), String> {
        self.file
            .write_all(data)
            .map_err(|e| format!("cannot write the output: {e}"))?;
        self.pos += data.len() as u64;
        Ok(())
    }

    /// Writes the directories, chained in the order given, and points the header at the
    /// first; flushes the file.
    pub fn finish(mut self, mut ifds: Vec<Vec<Entry>>) -> Result<(), String> {
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
        let first = first.ok_or("no levels to write")?;
        let (field, bytes) = if self.big {
            (8, first.to_le_bytes().to_vec())
        } else {
            (4, (first as u32).to_le_bytes().to_vec())
        };
        let io = |e: std::io::Error| format!("cannot write the output: {e}");
        self.file.flush().map_err(io)?;
        let inner = self.file.get_mut();
        inner.seek(SeekFrom::Start(field)).map_err(io)?;
        inner.write_all(&bytes).map_err(io)?;
        inner.sync_all().map_err(io)
    }

    /// One directory placed at `at`: entry count, entries, next-directory offset, then the
    /// values that do not fit in an entry.
    fn directory(&self, entries: &[Entry], at: u64, next: u64) -> Vec<u8> {
        let (count_len, entry_len, inline) = if self.big { (8, 20, 8) } else { (2, 12, 4) };
        let offset_len = inline;
        let mut extra_at = at + count_len + entry_len * entries.len() as u64 + offset_len;
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
            put(&mut head, count, if self.big { 8 } else { 4 });
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
        put(&mut head, next, offset_len);
        head.extend_from_slice(&extra);
        head
    }
}
