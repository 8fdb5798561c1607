//! Our reader for tiled (and striped) pyramidal TIFF as libvips, libtiff and other tools
//! write it: classic TIFF and BigTIFF, either byte order; the pyramid as a chain of IFDs
//! or as SubIFDs of the first; compression none, LZW, deflate, PackBits, JPEG (with shared
//! JPEGTables, YCbCr), zstd and WebP; horizontal predictor; samples of 1, 2, 4, 8, 12,
//! 14, 16, 32 and 64 bits (1, 2 and 4-bit ones widened to 8 bits as they are read);
//! CCITT fax compression (modified Huffman, Group 3, Group 4) of bilevel images.
//!
//! The directories are parsed once at open ([`TiffImage::open`]); tiles are then read with
//! positioned reads from the shared [`ByteSource`]. Every count, size and offset from the
//! file is checked against [`Limits`] before anything is allocated, so a corrupt or hostile
//! file gives an error, never a panic or an out-of-memory.
//!
//! Spec: TIFF 6.0, Adobe TIFF Technical Notes (JPEG in TIFF, SubIFDs), BigTIFF.

use super::samples;
use super::slide::{self, ndpi, ome, Associated};
use super::ImageSource;
use crate::bytes::ByteSource;
use crate::codec::fax::{self, Fax};
use crate::codec::{jpeg, lossless, openjpeg, webp};
use crate::error::{SourceError, SourceResult};
use iipsrv_core::info::{ColourSpace, ImageInfo, Level, Metadata, Page, SampleFormat};
use iipsrv_core::raster::{FloatRaster, Raster};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Bounds on what a file may ask of us; checked before allocating.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Most IFDs followed in a chain (also stops loops).
    pub max_ifds: usize,
    /// Most entries in one IFD.
    pub max_entries: u64,
    /// Most bytes one tag's values may occupy.
    pub max_tag_bytes: u64,
    /// Most bytes one decoded tile (or strip) may take.
    pub max_tile_bytes: u64,
    /// Most bytes one stored (compressed) tile may take.
    pub max_stored_tile_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_ifds: 1024,
            max_entries: 4096,
            max_tag_bytes: 256 << 20,
            max_tile_bytes: 256 << 20,
            max_stored_tile_bytes: 256 << 20,
        }
    }
}

mod tag {
    pub(crate) const NEW_SUBFILE_TYPE: u16 = 254;
    pub(crate) const IMAGE_WIDTH: u16 = 256;
    pub(crate) const IMAGE_LENGTH: u16 = 257;
    pub(crate) const BITS_PER_SAMPLE: u16 = 258;
    pub(crate) const COMPRESSION: u16 = 259;
    pub(crate) const PHOTOMETRIC: u16 = 262;
    pub(crate) const FILL_ORDER: u16 = 266;
    pub(crate) const DOCUMENT_NAME: u16 = 269;
    pub(crate) const IMAGE_DESCRIPTION: u16 = 270;
    pub(crate) const MAKE: u16 = 271;
    pub(crate) const MODEL: u16 = 272;
    pub(crate) const STRIP_OFFSETS: u16 = 273;
    pub(crate) const SAMPLES_PER_PIXEL: u16 = 277;
    pub(crate) const ROWS_PER_STRIP: u16 = 278;
    pub(crate) const T4_OPTIONS: u16 = 292;
    pub(crate) const STRIP_BYTE_COUNTS: u16 = 279;
    pub(crate) const X_RESOLUTION: u16 = 282;
    pub(crate) const Y_RESOLUTION: u16 = 283;
    pub(crate) const PLANAR_CONFIG: u16 = 284;
    pub(crate) const RESOLUTION_UNIT: u16 = 296;
    pub(crate) const SOFTWARE: u16 = 305;
    pub(crate) const DATE_TIME: u16 = 306;
    pub(crate) const XML_PACKET: u16 = 700;
    pub(crate) const ARTIST: u16 = 315;
    pub(crate) const PREDICTOR: u16 = 317;
    pub(crate) const TILE_WIDTH: u16 = 322;
    pub(crate) const TILE_LENGTH: u16 = 323;
    pub(crate) const TILE_OFFSETS: u16 = 324;
    pub(crate) const TILE_BYTE_COUNTS: u16 = 325;
    pub(crate) const SUB_IFDS: u16 = 330;
    pub(crate) const SAMPLE_FORMAT: u16 = 339;
    pub(crate) const S_MIN_SAMPLE_VALUE: u16 = 340;
    pub(crate) const S_MAX_SAMPLE_VALUE: u16 = 341;
    pub(crate) const JPEG_TABLES: u16 = 347;
    pub const COPYRIGHT: u16 = 33432;
    pub const ICC_PROFILE: u16 = 34675;
    pub const STONITS: u16 = 37439;

    /// The tags whose values we load; others are skipped without reading.
    pub(crate) const KNOWN: [u16; 37] = [
        DOCUMENT_NAME,
        STONITS,
        NEW_SUBFILE_TYPE,
        IMAGE_WIDTH,
        IMAGE_LENGTH,
        BITS_PER_SAMPLE,
        COMPRESSION,
        PHOTOMETRIC,
        FILL_ORDER,
        IMAGE_DESCRIPTION,
        MAKE,
        MODEL,
        STRIP_OFFSETS,
        SAMPLES_PER_PIXEL,
        ROWS_PER_STRIP,
        T4_OPTIONS,
        STRIP_BYTE_COUNTS,
        X_RESOLUTION,
        Y_RESOLUTION,
        PLANAR_CONFIG,
        RESOLUTION_UNIT,
        SOFTWARE,
        DATE_TIME,
        XML_PACKET,
        ARTIST,
        PREDICTOR,
        TILE_WIDTH,
        TILE_LENGTH,
        TILE_OFFSETS,
        TILE_BYTE_COUNTS,
        SUB_IFDS,
        SAMPLE_FORMAT,
        S_MIN_SAMPLE_VALUE,
        S_MAX_SAMPLE_VALUE,
        JPEG_TABLES,
        COPYRIGHT,
        ICC_PROFILE,
    ];
}

/// Compression codes.
mod compression {
    pub const NONE: u16 = 1;
    pub(crate) const CCITT_RLE: u16 = 2;
    pub(crate) const CCITT_G3: u16 = 3;
    pub(crate) const CCITT_G4: u16 = 4;
    pub(crate) const CCITT_RLEW: u16 = 32771;
    pub(crate) const PACKBITS: u16 = 32773;
    pub const LZW: u16 = 5;
    pub(crate) const OLD_JPEG: u16 = 6;
    pub const JPEG: u16 = 7;
    pub(crate) const DEFLATE: u16 = 8;
    pub(crate) const ADOBE_DEFLATE: u16 = 32946;
    pub(crate) const ZSTD: u16 = 50000;
    pub(crate) const ZSTD_OLD: u16 = 34926;
    pub(crate) const WEBP: u16 = 50001;
    pub(crate) const WEBP_OLD: u16 = 34927;
    /// JPEG2000 codestreams of YCbCr samples (Aperio).
    pub(crate) const JP2K_YCBCR: u16 = 33003;
    /// JPEG2000 codestreams of RGB samples (Aperio).
    pub(crate) const JP2K_RGB: u16 = 33005;

    /// Every code we decode.
    pub(crate) const DECODED: [u16; 15] = [
        NONE,
        PACKBITS,
        CCITT_RLE,
        CCITT_G3,
        CCITT_G4,
        LZW,
        JPEG,
        DEFLATE,
        ADOBE_DEFLATE,
        ZSTD,
        ZSTD_OLD,
        WEBP,
        WEBP_OLD,
        JP2K_YCBCR,
        JP2K_RGB,
    ];
}

fn corrupt(msg: impl Into<String>) -> SourceError {
    SourceError::corrupt(msg)
}

fn corrupt_at(msg: impl Into<String>, offset: u64) -> SourceError {
    SourceError::corrupt_at(msg, offset)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    fn u16(self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        match self {
            Endian::Little => u16::from_le_bytes(a),
            Endian::Big => u16::from_be_bytes(a),
        }
    }

    fn u32(self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        match self {
            Endian::Little => u32::from_le_bytes(a),
            Endian::Big => u32::from_be_bytes(a),
        }
    }

    fn u64(self, b: &[u8]) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[..8]);
        match self {
            Endian::Little => u64::from_le_bytes(a),
            Endian::Big => u64::from_be_bytes(a),
        }
    }
}

/// One tag's raw values.
#[derive(Debug, Clone)]
struct Value {
    kind: u16,
    count: u64,
    data: Vec<u8>,
    /// Offset of the tag's directory entry in the file (for errors).
    entry: u64,
}

fn type_size(kind: u16) -> Option<u64> {
    match kind {
        1 | 2 | 6 | 7 => Some(1),
        3 | 8 => Some(2),
        4 | 9 | 11 | 13 => Some(4),
        5 | 10 | 12 | 16 | 17 | 18 => Some(8),
        _ => None,
    }
}

/// One parsed image file directory: the known tags' values.
#[derive(Debug, Clone)]
struct Ifd {
    endian: Endian,
    tags: HashMap<u16, Value>,
    /// Offset of the directory in the file (for errors).
    offset: u64,
}

impl Ifd {
    fn uints(&self, t: u16) -> SourceResult<Option<Vec<u64>>> {
        let Some(v) = self.tags.get(&t) else {
            return Ok(None);
        };
        let e = self.endian;
        let d = &v.data;
        let out: Vec<u64> = match v.kind {
            1 | 7 => d.iter().map(|&b| b as u64).collect(),
            3 => d.chunks_exact(2).map(|c| e.u16(c) as u64).collect(),
            4 | 13 => d.chunks_exact(4).map(|c| e.u32(c) as u64).collect(),
            16 | 18 => d.chunks_exact(8).map(|c| e.u64(c)).collect(),
            k => {
                return Err(corrupt_at(
                    format!("tag {t} has type {k}, expected an integer"),
                    v.entry,
                ))
            }
        };
        Ok(Some(out))
    }

    fn uint(&self, t: u16) -> SourceResult<Option<u64>> {
        Ok(self.uints(t)?.and_then(|v| v.first().copied()))
    }

    fn floats(&self, t: u16) -> Option<Vec<f64>> {
        let v = self.tags.get(&t)?;
        let e = self.endian;
        let d = &v.data;
        let out = match v.kind {
            5 => d
                .chunks_exact(8)
                .map(|c| e.u32(c) as f64 / (e.u32(&c[4..]).max(1)) as f64)
                .collect(),
            8 => d.chunks_exact(2).map(|c| e.u16(c) as i16 as f64).collect(),
            9 => d.chunks_exact(4).map(|c| e.u32(c) as i32 as f64).collect(),
            10 => d
                .chunks_exact(8)
                .map(|c| e.u32(c) as i32 as f64 / (e.u32(&c[4..]) as i32).max(1) as f64)
                .collect(),
            11 => d
                .chunks_exact(4)
                .map(|c| f32::from_bits(e.u32(c)) as f64)
                .collect(),
            12 => d
                .chunks_exact(8)
                .map(|c| f64::from_bits(e.u64(c)))
                .collect(),
            _ => self.uints(t).ok()??.into_iter().map(|x| x as f64).collect(),
        };
        Some(out)
    }

    fn ascii(&self, t: u16) -> Option<String> {
        let v = self.tags.get(&t)?;
        let s = String::from_utf8_lossy(&v.data);
        let s = s.trim_end_matches('\0').trim();
        (!s.is_empty()).then(|| s.to_string())
    }

    fn bytes(&self, t: u16) -> Option<&[u8]> {
        self.tags.get(&t).map(|v| v.data.as_slice())
    }

    fn has(&self, t: u16) -> bool {
        self.tags.get(&t).is_some_and(|v| v.count > 0)
    }

    /// What the slide readers see of this directory.
    fn summary(&self) -> slide::Directory {
        slide::Directory {
            description: self.ascii(tag::IMAGE_DESCRIPTION),
            tiled: self.has(tag::TILE_WIDTH),
            xmp: self.bytes(tag::XML_PACKET).and_then(xmp_packet),
            ndpi: self.ndpi_summary(),
        }
    }

    /// NDPI's tags, when this is a directory of an NDPI file.
    fn ndpi_summary(&self) -> Option<ndpi::Summary> {
        if !self.has(ndpi::tag::FORMAT) {
            return None;
        }
        let float = |t| self.floats(t).and_then(|v| v.first().copied());
        let int = |t| float(t).filter(|v| v.is_finite()).map(|v| v as i64);
        let res = |t| float(t).filter(|r| *r > 0.0);
        let unit = self.uint(tag::RESOLUTION_UNIT).ok().flatten();
        let pixels_per_cm = match (res(tag::X_RESOLUTION), res(tag::Y_RESOLUTION), unit) {
            (Some(x), Some(y), Some(3)) => Some((x, y)),
            _ => None,
        };
        Some(ndpi::Summary {
            lens: float(ndpi::tag::SOURCE_LENS).unwrap_or(0.0),
            offset: (int(ndpi::tag::X_OFFSET), int(ndpi::tag::Y_OFFSET)),
            z: int(ndpi::tag::Z_OFFSET).unwrap_or(0),
            pixels_per_cm,
        })
    }
}

/// The error for a page the file does not have (an associated image: not found).
fn no_page(page: usize) -> SourceError {
    match Associated::of_page(page) {
        Some(_) => SourceError::NoSuchPage { page },
        None => SourceError::limit(format!("no page {page} in this image")),
    }
}

/// How the directories are laid out.
#[derive(Debug, Clone, Copy)]
struct Header {
    endian: Endian,
    big: bool,
    first_ifd: u64,
}

/// Everything needed to read one level's tiles.
#[derive(Debug, Clone)]
struct LevelData {
    geometry: Level,
    offsets: Vec<u64>,
    counts: Vec<u64>,
    compression: u16,
    predictor: u16,
    photometric: u16,
    samples: u16,
    /// Bits per sample as stored.
    bits: u16,
    /// Packed samples stored least significant bit first (FillOrder 2).
    lsb_first: bool,
    /// T4Options of Group 3 fax data.
    t4_options: u32,
    striped: bool,
    jpeg_tables: Option<Vec<u8>>,
    /// An NDPI level: one JPEG read as tiles of its restart intervals (no tile table).
    restarts: Option<ndpi::Strip>,
}

/// An open TIFF: parsed directories plus the byte source its tiles are read from.
pub struct TiffImage {
    bytes: Arc<dyn ByteSource>,
    pages: Vec<Page>,
    big_endian: bool,
    info: ImageInfo,
    levels: Vec<LevelData>,
    limits: Limits,
    /// The 8-bit value of samples of tiles not stored ([`slide::Layout::background`]).
    background: u8,
}

struct DirReader<'a> {
    bytes: &'a dyn ByteSource,
    header: Header,
    limits: Limits,
}

impl DirReader<'_> {
    fn read_header(bytes: &dyn ByteSource) -> SourceResult<Header> {
        if bytes.len() < 8 {
            return Err(corrupt("not a TIFF file: too short"));
        }
        let head = bytes.read_at(0, bytes.len().min(16) as usize)?;
        let endian = match &head[..2] {
            b"II" => Endian::Little,
            b"MM" => Endian::Big,
            _ => return Err(corrupt_at("not a TIFF file: bad byte-order mark", 0)),
        };
        match endian.u16(&head[2..]) {
            42 => Ok(Header {
                endian,
                big: false,
                first_ifd: endian.u32(&head[4..]) as u64,
            }),
            43 if head.len() >= 16 => {
                if endian.u16(&head[4..]) != 8 {
                    return Err(corrupt_at("BigTIFF with an offset size other than 8", 4));
                }
                Ok(Header {
                    endian,
                    big: true,
                    first_ifd: endian.u64(&head[8..]),
                })
            }
            v => Err(corrupt_at(format!("not a TIFF file: version {v}"), 2)),
        }
    }

    /// Reads the IFD at `offset`; returns it and the offset of the next one (0 = none).
    fn read_ifd(&self, offset: u64) -> SourceResult<(Ifd, u64)> {
        let e = self.header.endian;
        let (count_len, entry_len, field_len) = if self.header.big {
            (8, 20, 8)
        } else {
            (2, 12, 4)
        };
        let count_bytes = self.bytes.read_at(offset, count_len)?;
        let count = if self.header.big {
            e.u64(&count_bytes)
        } else {
            e.u16(&count_bytes) as u64
        };
        if count == 0 || count > self.limits.max_entries {
            return Err(corrupt_at(
                format!("IFD at {offset} has {count} entries"),
                offset,
            ));
        }
        let table_len = count as usize * entry_len + field_len;
        let table = self.bytes.read_at(offset + count_len as u64, table_len)?;
        let mut tags = HashMap::new();
        let entries = table[..count as usize * entry_len].chunks_exact(entry_len);
        for (i, entry) in entries.enumerate() {
            let t = e.u16(entry);
            if !tag::KNOWN.contains(&t) && !ndpi::tag::ALL.contains(&t) {
                continue;
            }
            let kind = e.u16(&entry[2..]);
            let n = if self.header.big {
                e.u64(&entry[4..])
            } else {
                e.u32(&entry[4..]) as u64
            };
            let field = &entry[entry_len - field_len..];
            let at = offset + count_len as u64 + (i * entry_len) as u64;
            let xmp = t == tag::XML_PACKET;
            if xmp && n > crate::codec::MAX_XMP_READ as u64 {
                continue;
            }
            // Descriptive metadata never keeps an image from opening: a damaged XMP packet
            // is skipped.
            match self.read_value(t, kind, n, field, at) {
                Ok(Some(value)) => _ = tags.insert(t, value),
                Ok(None) => {}
                Err(_) if xmp => {}
                Err(e) => return Err(e),
            }
        }
        let tail = &table[count as usize * entry_len..];
        let next = if self.header.big {
            e.u64(tail)
        } else {
            e.u32(tail) as u64
        };
        Ok((
            Ifd {
                endian: e,
                tags,
                offset,
            },
            next,
        ))
    }

    /// The values of tag `t` whose directory entry is at `entry` in the file.
    fn read_value(
        &self,
        t: u16,
        kind: u16,
        count: u64,
        field: &[u8],
        entry: u64,
    ) -> SourceResult<Option<Value>> {
        let Some(size) = type_size(kind) else {
            return Ok(None);
        };
        let len = count
            .checked_mul(size)
            .filter(|&l| l <= self.limits.max_tag_bytes)
            .ok_or_else(|| corrupt_at(format!("tag {t} is too large ({count} values)"), entry))?;
        let data = if len <= field.len() as u64 {
            field[..len as usize].to_vec()
        } else {
            let off = if self.header.big {
                self.header.endian.u64(field)
            } else {
                self.header.endian.u32(field) as u64
            };
            self.bytes.read_at(off, len as usize)?
        };
        Ok(Some(Value {
            kind,
            count,
            data,
            entry,
        }))
    }

    /// Follows a chain of IFDs from `first`, stopping at loops and at the limit.
    fn chain(&self, first: u64) -> SourceResult<Vec<Ifd>> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut next = first;
        while next != 0 && out.len() < self.limits.max_ifds && seen.insert(next) {
            let (ifd, n) = self.read_ifd(next)?;
            out.push(ifd);
            next = n;
        }
        if out.is_empty() {
            let message = "TIFF has no image directory";
            if first != 0 {
                return Err(corrupt(message)); // max_ifds is 0
            }
            // the header's pointer to the first directory is 0
            let pointer = if self.header.big { 8 } else { 4 };
            return Err(corrupt_at(message, pointer));
        }
        Ok(out)
    }
}

impl TiffImage {
    /// Parses the directories of a TIFF with default [`Limits`].
    pub fn open(bytes: Arc<dyn ByteSource>) -> SourceResult<TiffImage> {
        Self::open_with_limits(bytes, Limits::default())
    }

    /// Parses the directories of a TIFF: finds the pyramid levels, their tile tables, the
    /// sample layout, ICC profile and metadata.
    pub(crate) fn open_with_limits(
        bytes: Arc<dyn ByteSource>,
        limits: Limits,
    ) -> SourceResult<TiffImage> {
        Self::open_page_with_limits(bytes, 0, limits)
    }

    /// Opens page `page` of a multi-page stack (page 0 of any other TIFF).
    pub fn open_page(bytes: Arc<dyn ByteSource>, page: usize) -> SourceResult<TiffImage> {
        Self::open_page_with_limits(bytes, page, Limits::default())
    }

    /// How level 0 is stored: its compression's name and whether it is in strips rather
    /// than tiles (for `iipsrv check`).
    pub fn storage(&self) -> (String, bool) {
        let l = &self.levels[0];
        let name = match l.compression {
            compression::NONE => "none".to_string(),
            compression::LZW => "LZW".to_string(),
            compression::CCITT_RLE => "CCITT modified Huffman".to_string(),
            compression::CCITT_G3 => "CCITT Group 3".to_string(),
            compression::CCITT_G4 => "CCITT Group 4".to_string(),
            compression::PACKBITS => "PackBits".to_string(),
            compression::OLD_JPEG => "old-style JPEG".to_string(),
            compression::JPEG => "JPEG".to_string(),
            compression::DEFLATE | compression::ADOBE_DEFLATE => "deflate".to_string(),
            compression::ZSTD | compression::ZSTD_OLD => "zstd".to_string(),
            compression::WEBP | compression::WEBP_OLD => "WebP".to_string(),
            compression::JP2K_YCBCR | compression::JP2K_RGB => "JPEG2000".to_string(),
            c => format!("compression {c}"),
        };
        (name, l.striped)
    }

    /// The pages of a stack (two or more top-level IFDs marked as pages); empty for a
    /// plain image or pyramid.
    pub fn pages(&self) -> &[Page] {
        &self.pages
    }

    fn open_page_with_limits(
        bytes: Arc<dyn ByteSource>,
        page: usize,
        limits: Limits,
    ) -> SourceResult<TiffImage> {
        let header = DirReader::read_header(bytes.as_ref())?;
        let reader = DirReader {
            bytes: bytes.as_ref(),
            header,
            limits,
        };
        let chain = reader
            .chain(header.first_ifd)
            .map_err(|e| large_ndpi(&header, bytes.len()).unwrap_or(e))?;
        let summaries: Vec<slide::Directory> = chain.iter().map(Ifd::summary).collect();
        if summaries[0].ndpi.is_some() {
            large_ndpi(&header, bytes.len()).map_or(Ok(()), Err)?;
        }
        if let Some(layout) = slide::layout(&summaries) {
            return Self::open_slide(bytes, header, &chain, &layout, page, limits);
        }
        let ome = summaries[0].description.as_deref().and_then(ome::planes);
        let marked: Vec<usize> = (0..chain.len())
            .filter(|&i| match (&ome, chain[i].uint(tag::NEW_SUBFILE_TYPE)) {
                // an OME-TIFF's planes are its full-resolution directories
                (Some(_), Ok(t)) => t.unwrap_or(0) & 1 == 0,
                (None, Ok(Some(t))) => t & 2 != 0,
                _ => false,
            })
            .collect();
        let stack = marked.len() >= 2 && (ome.is_some() || !reduced_pages(&chain, &marked));
        let at = match (stack, page) {
            (false, 0) => 0,
            (true, p) if p < marked.len() => marked[p],
            _ => return Err(no_page(page)),
        };
        let first = &chain[at];
        let mut candidates: Vec<Ifd> = Vec::new();
        match first.uints(tag::SUB_IFDS)? {
            Some(subs) if !subs.is_empty() => {
                for off in subs.into_iter().take(limits.max_ifds) {
                    candidates.push(reader.read_ifd(off)?.0);
                }
            }
            _ if !stack => candidates.extend(chain.iter().skip(1).cloned()),
            _ => {}
        }
        let mut image = Self::assemble(bytes, header, first, &candidates, limits)?;
        if let Some(planes) = &ome {
            planes.describe(&mut image.info.metadata);
        }
        if stack {
            image.pages = marked
                .iter()
                .enumerate()
                .map(|(n, &i)| Page {
                    name: match &ome {
                        Some(planes) => Some(planes.name(n)),
                        None => chain[i].ascii(tag::DOCUMENT_NAME),
                    },
                    scale: chain[i]
                        .floats(tag::STONITS)
                        .and_then(|v| v.first().copied()),
                })
                .collect();
        }
        Ok(image)
    }

    /// Opens a microscope slide as its `layout` says: page 0 is the pyramid of its level
    /// directories, with the physical size and properties of its description; the pages
    /// of [`Associated`] images are those single directories.
    fn open_slide(
        bytes: Arc<dyn ByteSource>,
        header: Header,
        chain: &[Ifd],
        layout: &slide::Layout,
        page: usize,
        limits: Limits,
    ) -> SourceResult<TiffImage> {
        if let Some(why) = &layout.unsupported {
            return Err(SourceError::unsupported(why.clone()));
        }
        if let Some(kind) = Associated::of_page(page) {
            if let Some(jpeg) = layout.embedded(kind) {
                return Self::embedded_jpeg(jpeg.to_vec(), limits);
            }
            let at = layout.associated(kind).ok_or_else(|| no_page(page))?;
            return Self::assemble(bytes, header, &chain[at], &[], limits);
        }
        if page != 0 {
            return Err(no_page(page));
        }
        let levels: Vec<Ifd> = layout.levels[1..]
            .iter()
            .map(|&i| chain[i].clone())
            .collect();
        let mut image = Self::assemble(bytes, header, &chain[layout.levels[0]], &levels, limits)?;
        layout.describe(&mut image.info.metadata);
        image.background = layout.background;
        Ok(image)
    }

    /// An image kept as a whole JPEG outside the file's directories (Philips' label and
    /// macro, base64 in its description): one level of one strip, the JPEG itself, read
    /// from memory like any JPEG tile (and passed through whole).
    fn embedded_jpeg(jpeg: Vec<u8>, limits: Limits) -> SourceResult<TiffImage> {
        let (width, height, ch) = jpeg::dimensions(&jpeg)?;
        if width == 0 || height == 0 {
            return Err(corrupt("an embedded JPEG of no pixels"));
        }
        let pixels = width as u64 * height as u64 * ch as u64;
        if pixels > limits.max_tile_bytes {
            return Err(SourceError::over_limit(
                format!("an embedded JPEG of {width}x{height} pixels"),
                pixels,
                limits.max_tile_bytes,
            ));
        }
        let geometry = Level {
            width,
            height,
            tile_width: width,
            tile_height: height,
            scale_x: 1.0,
            scale_y: 1.0,
        };
        let level = LevelData {
            geometry: geometry.clone(),
            offsets: vec![0],
            counts: vec![jpeg.len() as u64],
            compression: compression::JPEG,
            predictor: 1,
            photometric: if ch == 1 { 1 } else { 6 },
            samples: ch.into(),
            bits: 8,
            lsb_first: false,
            t4_options: 0,
            striped: true,
            jpeg_tables: None,
            restarts: None,
        };
        let mut info = iipsrv_core::info::plain_info(width, height, ch);
        info.levels = vec![geometry];
        Ok(TiffImage {
            bytes: Arc::new(crate::bytes::MemBytes(jpeg)),
            pages: Vec::new(),
            big_endian: false,
            info,
            levels: vec![level],
            limits,
            background: 0,
        })
    }

    /// The image whose full resolution is `first` and whose reduced levels are those of
    /// `candidates` that are reduced levels of it (others are passed over).
    fn assemble(
        bytes: Arc<dyn ByteSource>,
        header: Header,
        first: &Ifd,
        candidates: &[Ifd],
        limits: Limits,
    ) -> SourceResult<TiffImage> {
        let base = read_level(bytes.as_ref(), first, None, &limits)?;
        let mut levels = vec![base];
        for ifd in candidates {
            if let Ok(l) = read_level(bytes.as_ref(), ifd, Some(&levels[0]), &limits) {
                levels.push(l);
            }
        }
        levels.sort_by_key(|l| std::cmp::Reverse(l.geometry.width));
        levels.dedup_by(|a, b| a.geometry.width == b.geometry.width);
        let mut info = describe(first, &levels)?;
        set_scales(&mut levels, info.width, info.height);
        info.levels = levels.iter().map(|l| l.geometry.clone()).collect();
        Ok(TiffImage {
            bytes,
            pages: Vec::new(),
            big_endian: header.endian == Endian::Big,
            info,
            levels,
            limits,
            background: 0,
        })
    }

    fn level(&self, level: usize) -> SourceResult<&LevelData> {
        self.levels
            .get(level)
            .ok_or_else(|| corrupt(format!("no pyramid level {level}")))
    }

    /// Index, stored rows and expected decoded size of a tile; checks it exists.
    fn locate(&self, l: &LevelData, tx: u32, ty: u32) -> SourceResult<(usize, u32)> {
        let g = &l.geometry;
        if tx >= g.tiles_across() || ty >= g.tiles_down() {
            return Err(corrupt(format!("tile {tx},{ty} is outside the level")));
        }
        let idx = ty as usize * g.tiles_across() as usize + tx as usize;
        let rows = if l.striped {
            g.tile_height.min(g.height - ty * g.tile_height)
        } else {
            g.tile_height
        };
        Ok((idx, rows))
    }

    /// Where tile `idx` of a level is stored (offset, length); `None` for a tile not
    /// stored (length 0), an error past the stored-tile limit.
    fn tile_range(&self, l: &LevelData, idx: usize) -> SourceResult<Option<(u64, usize)>> {
        // A level read by its restart table (NDPI) has no tile table.
        let (Some(&off), Some(&len)) = (l.offsets.get(idx), l.counts.get(idx)) else {
            return Err(SourceError::unsupported(
                "this level is one JPEG read by its restart markers, as 8-bit samples only",
            ));
        };
        if len == 0 {
            return Ok(None);
        }
        if len > self.limits.max_stored_tile_bytes {
            return Err(SourceError::over_limit(
                format!("stored tile of {len} bytes"),
                len,
                self.limits.max_stored_tile_bytes,
            ));
        }
        Ok(Some((off, len as usize)))
    }

    fn stored_tile(&self, l: &LevelData, idx: usize) -> SourceResult<Option<Vec<u8>>> {
        match self.tile_range(l, idx)? {
            Some((off, len)) => self.bytes.read_at(off, len).map(Some),
            None => Ok(None),
        }
    }

    /// The float samples of a stored tile (or strip) of `rows` rows of level `l`.
    fn decode_float(&self, l: &LevelData, stored: Vec<u8>, rows: u32) -> SourceResult<FloatRaster> {
        let g = &l.geometry;
        let bits = l.bits;
        let ch = l.samples as usize;
        let row_samples = g.tile_width as usize * ch;
        let expected = samples::row_bytes(row_samples, bits) * rows as usize;
        let bytes = decompress(l, stored, expected)?;
        let layout = samples::Layout {
            bits,
            format: self.info.sample_format,
            big_endian: self.big_endian,
            predictor: l.predictor,
            row_samples,
            channels: ch,
        };
        let mut data = samples::to_floats(bytes, &layout)?;
        if self.info.colour == ColourSpace::CieLab {
            lab_units(&mut data, ch, bits, l.photometric);
        }
        FloatRaster::from_vec(g.tile_width, rows, ch as u8, data)
            .ok_or_else(|| corrupt("tile size mismatch"))
    }
}

/// Whether the directories marked as pages are the levels of one pyramid rather than a
/// stack: ImageMagick's `ptif:` writes each level as a full directory marked as a page,
/// each half the size of the one before (rounded either way), none with SubIFDs. The pages
/// of a real stack have their own sizes (or their own SubIFD pyramids).
fn reduced_pages(chain: &[Ifd], marked: &[usize]) -> bool {
    let size = |i: usize| {
        let get = |t| chain[i].uint(t).ok().flatten();
        Some((get(tag::IMAGE_WIDTH)?, get(tag::IMAGE_LENGTH)?))
    };
    let halved = |a: u64, b: u64| b > 0 && b.abs_diff(a.div_ceil(2)) <= 1;
    let half = |w: &[usize]| match (size(w[0]), size(w[1])) {
        (Some((aw, ah)), Some((bw, bh))) => halved(aw, bw) && halved(ah, bh),
        _ => false,
    };
    marked.iter().all(|&i| !chain[i].has(tag::SUB_IFDS)) && marked.windows(2).all(half)
}

/// The refusal of a classic TIFF of 4 GB or more as an NDPI whose offsets past 4 GB we do
/// not read (none for other files).
fn large_ndpi(header: &Header, len: u64) -> Option<SourceError> {
    (!header.big && len > u32::MAX as u64).then(|| {
        SourceError::unsupported(
            "classic TIFF (or Hamamatsu NDPI) file of 4 GB or more: its offsets past 4 GB are not read",
        )
    })
}

/// An NDPI level's strip: the JPEG of a `size` level (width, height, samples) stored in
/// `compression`, read through its restart table `starts`.
fn ndpi_strip(
    bytes: &dyn ByteSource,
    ifd: &Ifd,
    starts: Vec<u64>,
    (size, compression): ((u32, u32, u8), u16),
    limits: &Limits,
) -> SourceResult<ndpi::Strip> {
    if compression != compression::JPEG {
        return Err(SourceError::unsupported(format!(
            "NDPI level in TIFF compression {compression}"
        )));
    }
    let strip = |t| ifd.uint(t).ok().flatten().unwrap_or(0);
    let place = (strip(tag::STRIP_OFFSETS), strip(tag::STRIP_BYTE_COUNTS));
    let bounds = ndpi::Bounds {
        tile_bytes: limits.max_tile_bytes,
        stored_bytes: limits.max_stored_tile_bytes,
    };
    ndpi::Strip::open(bytes, place, starts, size, bounds).map_err(|e| e.or_at(ifd.offset))
}

/// The width and height of a level, checked: not 0, and within half of u32's range.
fn level_size(ifd: &Ifd) -> SourceResult<(u64, u64)> {
    let width = required(ifd, tag::IMAGE_WIDTH, "ImageWidth")?;
    let height = required(ifd, tag::IMAGE_LENGTH, "ImageLength")?;
    if width == 0 || height == 0 || width > u32::MAX as u64 / 2 || height > u32::MAX as u64 / 2 {
        return Err(corrupt_at(
            format!("image size {width}x{height}"),
            ifd.offset,
        ));
    }
    Ok((width, height))
}

/// Reads one IFD's level geometry and tile table (an NDPI level's restart table, when the
/// IFD has McuStarts); `base` is level 0 when this is a candidate reduced level, which must
/// match its sample layout and be smaller.
fn read_level(
    bytes: &dyn ByteSource,
    ifd: &Ifd,
    base: Option<&LevelData>,
    limits: &Limits,
) -> SourceResult<LevelData> {
    let (width, height) = level_size(ifd)?;
    let (samples, bits) = sample_layout(ifd, base, width)?;
    let (compression, predictor, lsb_first) = coding(ifd, samples, bits)?;
    let size = (width as u32, height as u32, samples as u8);
    let restarts = match ifd.uints(ndpi::tag::MCU_STARTS)? {
        Some(starts) if ifd.has(ndpi::tag::FORMAT) => {
            Some(ndpi_strip(bytes, ifd, starts, (size, compression), limits)?)
        }
        _ => None,
    };
    let (geometry, offsets, counts, striped) = match &restarts {
        Some(strip) => (strip.geometry(), Vec::new(), Vec::new(), false),
        None => stored_tiles(ifd, (width, height), samples, limits)?,
    };
    Ok(LevelData {
        geometry,
        offsets,
        counts,
        compression,
        predictor,
        photometric: ifd.uint(tag::PHOTOMETRIC)?.unwrap_or(1) as u16,
        samples: samples as u16,
        bits,
        lsb_first,
        t4_options: ifd.uint(tag::T4_OPTIONS)?.unwrap_or(0) as u32,
        striped,
        jpeg_tables: ifd.bytes(tag::JPEG_TABLES).map(<[u8]>::to_vec),
        restarts,
    })
}

/// The geometry, tile offsets and byte counts of a level of `width`×`height` stored in
/// tiles or strips (whether strips).
fn stored_tiles(
    ifd: &Ifd,
    (width, height): (u64, u64),
    samples: u64,
    limits: &Limits,
) -> SourceResult<(Level, Vec<u64>, Vec<u64>, bool)> {
    let tiles = TileShape::of(ifd, (width, height), samples, limits)?;
    let geometry = Level {
        width: width as u32,
        height: height as u32,
        tile_width: tiles.width as u32,
        tile_height: tiles.height as u32,
        scale_x: 1.0,
        scale_y: 1.0,
    };
    let (offsets, counts) = tile_table(ifd, &geometry, tiles.striped)?;
    Ok((geometry, offsets, counts, tiles.striped))
}

/// The value of a tag a level cannot do without.
fn required(ifd: &Ifd, t: u16, what: &str) -> SourceResult<u64> {
    ifd.uint(t)?
        .ok_or_else(|| corrupt_at(format!("missing required tag {what}"), ifd.offset))
}

/// The samples per pixel and bits per sample of a level, checked: a layout we read
/// (interleaved, 1-64 samples of 1, 2, 4, 8, 12, 14, 16, 32 or 64 bits) and, for a
/// reduced level, the layout of level 0 at a smaller width.
fn sample_layout(ifd: &Ifd, base: Option<&LevelData>, width: u64) -> SourceResult<(u64, u16)> {
    let samples = ifd.uint(tag::SAMPLES_PER_PIXEL)?.unwrap_or(1);
    let bits = ifd.uint(tag::BITS_PER_SAMPLE)?.unwrap_or(1);
    // One depth for every sample: rows of mixed depths are not read.
    let depths = ifd.uints(tag::BITS_PER_SAMPLE)?.unwrap_or_default();
    if depths.iter().any(|&d| d != bits) {
        return Err(SourceError::unsupported("samples of different bit depths"));
    }
    if samples == 0 || samples > 64 || !matches!(bits, 1 | 2 | 4 | 8 | 12 | 14 | 16 | 32 | 64) {
        return Err(SourceError::unsupported(format!(
            "{samples} samples of {bits} bits per pixel"
        )));
    }
    let bits = bits as u16;
    check_packed_format(ifd, bits)?;
    let subfile = ifd.uint(tag::NEW_SUBFILE_TYPE)?.unwrap_or(0);
    if let Some(b) = base {
        let g = &b.geometry;
        let same = samples == b.samples as u64 && bits == b.bits;
        if subfile & 4 != 0 || !same || width >= g.width as u64 {
            return Err(corrupt_at("not a reduced level of this image", ifd.offset));
        }
    }
    if ifd.uint(tag::PLANAR_CONFIG)?.unwrap_or(1) == 2 && samples > 1 {
        return Err(SourceError::unsupported(
            "separate colour planes (PlanarConfig 2)",
        ));
    }
    Ok((samples, bits))
}

/// Samples of 1, 2 or 4 bits must be unsigned integers (they are widened to 8 bits), and
/// 12 or 14-bit ones integers.
fn check_packed_format(ifd: &Ifd, bits: u16) -> SourceResult<()> {
    let format = ifd.uint(tag::SAMPLE_FORMAT)?.unwrap_or(1);
    let refused = match bits {
        1 | 2 | 4 => format != 1,
        12 | 14 => format == 3,
        _ => false,
    };
    if refused {
        return Err(SourceError::unsupported(format!(
            "{bits}-bit samples of SampleFormat {format}"
        )));
    }
    Ok(())
}

/// The compression, predictor and bit order of a level, checked against its samples:
/// compressions we do not decode, CCITT fax but on one 1-bit sample, JPEG and WebP but on
/// 8-bit samples, the horizontal predictor on packed samples (libtiff refuses it too) and
/// packed samples least significant bit first (FillOrder 2) but uncompressed or fax are
/// unsupported.
fn coding(ifd: &Ifd, samples: u64, bits: u16) -> SourceResult<(u16, u16, bool)> {
    let c = ifd.uint(tag::COMPRESSION)?.unwrap_or(1) as u16;
    let predictor = ifd.uint(tag::PREDICTOR)?.unwrap_or(1) as u16;
    let lsb_first = ifd.uint(tag::FILL_ORDER)? == Some(2) && !bits.is_multiple_of(8);
    let refusal = match c {
        compression::CCITT_RLE | compression::CCITT_G3 | compression::CCITT_G4
            if (samples, bits) != (1, 1) =>
        {
            Some(format!(
                "CCITT fax compression of {samples} samples of {bits} bits"
            ))
        }
        compression::CCITT_RLEW => Some(format!(
            "CCITT fax compression with word-aligned rows (TIFF compression {c}); \
             convert the file with `tiffcp -c lzw` (bilevel stays 1-bit)"
        )),
        compression::OLD_JPEG => Some("old-style JPEG (compression 6)".to_string()),
        compression::JPEG
        | compression::WEBP
        | compression::WEBP_OLD
        | compression::JP2K_YCBCR
        | compression::JP2K_RGB
            if bits != 8 =>
        {
            Some(format!("TIFF compression {c} on {bits}-bit samples"))
        }
        _ if !compression::DECODED.contains(&c) => Some(format!("TIFF compression {c}")),
        _ if predictor == 2 && !matches!(bits, 8 | 16 | 32 | 64) => {
            Some(format!("the horizontal predictor on {bits}-bit samples"))
        }
        _ if lsb_first && !matches!(c, compression::NONE) && fax_kind(c, 0).is_none() => {
            Some(format!(
                "{bits}-bit samples least significant bit first (FillOrder 2) with compression {c}"
            ))
        }
        _ => None,
    };
    match refusal {
        Some(feature) => Err(SourceError::unsupported(feature)),
        None => Ok((c, predictor, lsb_first)),
    }
}

/// The size of a level's tiles (its strips, full width, when it has no tiles).
struct TileShape {
    width: u64,
    height: u64,
    striped: bool,
}

impl TileShape {
    /// The tiles or strips of an IFD of a `width` × `height` level, within the limit on
    /// decoded tile bytes.
    fn of(
        ifd: &Ifd,
        (width, height): (u64, u64),
        samples: u64,
        limits: &Limits,
    ) -> SourceResult<TileShape> {
        let striped = !ifd.has(tag::TILE_WIDTH);
        let (tw, th) = if striped {
            let rps = ifd
                .uint(tag::ROWS_PER_STRIP)?
                .unwrap_or(height)
                .clamp(1, height);
            (width, rps)
        } else {
            let tw = required(ifd, tag::TILE_WIDTH, "TileWidth")?;
            let th = required(ifd, tag::TILE_LENGTH, "TileLength")?;
            (tw, th)
        };
        if tw == 0 || th == 0 || tw > 1 << 20 || th > 1 << 20 {
            return Err(corrupt_at(format!("tile size {tw}x{th}"), ifd.offset));
        }
        let bits = ifd.uint(tag::BITS_PER_SAMPLE)?.unwrap_or(1);
        let tile_bytes = tw * th * samples * bits.div_ceil(8);
        if tile_bytes > limits.max_tile_bytes {
            return Err(SourceError::over_limit(
                format!(
                    "a {} of {tw}x{th} pixels is too large to decode; convert to a tiled pyramid",
                    if striped { "strip" } else { "tile" }
                ),
                tile_bytes,
                limits.max_tile_bytes,
            ));
        }
        Ok(TileShape {
            width: tw,
            height: th,
            striped,
        })
    }
}

/// The offsets and byte counts of a level's tiles (or strips), at least one per tile.
fn tile_table(ifd: &Ifd, geometry: &Level, striped: bool) -> SourceResult<(Vec<u64>, Vec<u64>)> {
    let (offsets_tag, counts_tag) = if striped {
        (tag::STRIP_OFFSETS, tag::STRIP_BYTE_COUNTS)
    } else {
        (tag::TILE_OFFSETS, tag::TILE_BYTE_COUNTS)
    };
    let expected = geometry.tiles_across() as usize * geometry.tiles_down() as usize;
    let offsets = ifd.uints(offsets_tag)?.unwrap_or_default();
    let counts = ifd.uints(counts_tag)?.unwrap_or_default();
    if offsets.len() < expected || counts.len() < expected {
        return Err(corrupt_at(
            format!(
                "tile table has {} entries, the image needs {expected}",
                offsets.len().min(counts.len())
            ),
            ifd.offset,
        ));
    }
    Ok((offsets, counts))
}

/// Builds the image description from the first IFD.
fn describe(ifd: &Ifd, levels: &[LevelData]) -> SourceResult<ImageInfo> {
    let l0 = &levels[0];
    let bits = l0.bits;
    let sample_format = match ifd.uint(tag::SAMPLE_FORMAT)?.unwrap_or(1) {
        2 => SampleFormat::Signed,
        3 => SampleFormat::Float,
        _ => SampleFormat::Unsigned,
    };
    let colour = match l0.photometric {
        // A palette's samples are indices into ColorMap, a mask's are not colours: served
        // as grey they would be silently wrong.
        3 => return Err(SourceError::unsupported(
            "palette TIFF (ColorMap): convert it to RGB first (vips copy in.tif out.tif[tile,pyramid])",
        )),
        4 => return Err(SourceError::unsupported("transparency-mask TIFF")),
        0 | 1 => ColourSpace::Grey,
        2 | 6 => ColourSpace::Rgb,
        8..=10 => ColourSpace::CieLab,
        _ => ColourSpace::Other,
    };
    // samples of 1, 2 and 4 bits are widened to 8 bits as they are read
    let read_bits = bits.max(8);
    let min_max = sample_ranges(ifd, sample_format, bits, l0.samples);
    let unit = ifd.uint(tag::RESOLUTION_UNIT)?.unwrap_or(2);
    let res = |t| {
        ifd.floats(t)
            .and_then(|v| v.first().copied())
            .filter(|r| *r > 0.0)
    };
    let pixels_per_cm = match (res(tag::X_RESOLUTION), res(tag::Y_RESOLUTION), unit) {
        (Some(x), Some(y), 2) => Some((x / 2.54, y / 2.54)),
        (Some(x), Some(y), 3) => Some((x, y)),
        _ => None,
    };
    Ok(ImageInfo {
        width: l0.geometry.width,
        height: l0.geometry.height,
        levels: Vec::new(),
        channels: l0.samples.min(255) as u8,
        bits_per_sample: read_bits,
        stored_bits: bits,
        sample_format,
        colour,
        min_max,
        icc: ifd.bytes(tag::ICC_PROFILE).map(|b| Arc::new(b.to_vec())),
        metadata: Metadata {
            description: ifd.ascii(tag::IMAGE_DESCRIPTION),
            artist: ifd.ascii(tag::ARTIST),
            copyright: ifd.ascii(tag::COPYRIGHT),
            date: ifd.ascii(tag::DATE_TIME),
            software: ifd.ascii(tag::SOFTWARE),
            make: ifd.ascii(tag::MAKE),
            model: ifd.ascii(tag::MODEL),
            pixels_per_cm,
            xmp: ifd.bytes(tag::XML_PACKET).and_then(xmp_packet),
            ..Metadata::default()
        },
    })
}

/// An XMP packet from its stored bytes: UTF-8 text, trailing NULs and padding dropped;
/// none when empty or not text.
fn xmp_packet(b: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(b)
        .ok()?
        .trim_end_matches(['\0', ' ', '\n']);
    (!text.is_empty()).then(|| text.to_string())
}

/// Each channel's (min, max) in the units of the samples read: SMin/SMaxSampleValue (one
/// for all channels or one each), else the type's range; for samples of 1, 2 or 4 bits,
/// widened to 8 bits as they are read, the tags' values are widened alike.
fn sample_ranges(ifd: &Ifd, format: SampleFormat, bits: u16, samples: u16) -> Vec<(f64, f64)> {
    let type_range = match (format, bits.max(8)) {
        (SampleFormat::Float, _) => (0.0, 1.0),
        (SampleFormat::Signed, b) => (-(2f64.powi(b as i32 - 1)), 2f64.powi(b as i32 - 1) - 1.0),
        (SampleFormat::Unsigned, b) => (0.0, 2f64.powi(b as i32) - 1.0),
    };
    let widen = 255.0 / (2f64.powi(bits.min(8) as i32) - 1.0);
    let tag_values = |t| {
        let v = ifd.floats(t).unwrap_or_default();
        v.into_iter().map(|x| x * widen).collect::<Vec<_>>()
    };
    let (mins, maxs) = (
        tag_values(tag::S_MIN_SAMPLE_VALUE),
        tag_values(tag::S_MAX_SAMPLE_VALUE),
    );
    (0..samples as usize)
        .map(|c| {
            let pick = |v: &[f64], d: f64| v.get(c).or(v.first()).copied().unwrap_or(d);
            (pick(&mins, type_range.0), pick(&maxs, type_range.1))
        })
        .collect()
}

/// Full-resolution pixels per level pixel: the nearest power of two when the level is a
/// halving of the full image (libvips floors, others round up), the plain ratio otherwise.
fn set_scales(levels: &mut [LevelData], width: u32, height: u32) {
    let snap = |full: u32, part: u32| {
        let ratio = full as f64 / part as f64;
        let pow = 2f64.powi(ratio.log2().round() as i32);
        let fits =
            (full as f64 / pow).floor() as u32 == part || (full as f64 / pow).ceil() as u32 == part;
        if fits {
            pow
        } else {
            ratio
        }
    };
    for l in levels {
        l.geometry.scale_x = snap(width, l.geometry.width);
        l.geometry.scale_y = snap(height, l.geometry.height);
    }
}

/// A tile's bytes of level `l` after lossless decompression (none, LZW, deflate, zstd,
/// PackBits, CCITT fax), `expected` bytes long, bits most significant first.
fn decompress(l: &LevelData, stored: Vec<u8>, expected: usize) -> SourceResult<Vec<u8>> {
    match l.compression {
        compression::NONE => {
            let mut d = stored;
            d.resize(expected, 0);
            if l.lsb_first {
                d.iter_mut().for_each(|b| *b = b.reverse_bits());
            }
            Ok(d)
        }
        compression::CCITT_RLE | compression::CCITT_G3 | compression::CCITT_G4 => {
            fax_rows(l, stored, expected)
        }
        compression::LZW => lossless::unlzw(&stored, expected),
        compression::PACKBITS => Ok(lossless::unpackbits(&stored, expected)),
        compression::DEFLATE | compression::ADOBE_DEFLATE => lossless::inflate(&stored, expected),
        compression::ZSTD | compression::ZSTD_OLD => lossless::unzstd(&stored, expected),
        compression::OLD_JPEG => Err(SourceError::unsupported("old-style JPEG (compression 6)")),
        c => Err(SourceError::unsupported(format!(
            "TIFF compression {c} for these samples"
        ))),
    }
}

/// The packed 1-bit rows (`expected` bytes) of a fax tile of level `l`, whose one 1-bit
/// sample per pixel was checked at open.
fn fax_rows(l: &LevelData, mut stored: Vec<u8>, expected: usize) -> SourceResult<Vec<u8>> {
    let Some(kind) = fax_kind(l.compression, l.t4_options) else {
        return Err(SourceError::unsupported("not fax data"));
    };
    if l.lsb_first {
        stored.iter_mut().for_each(|b| *b = b.reverse_bits());
    }
    let width = l.geometry.tile_width;
    let rows = expected / samples::row_bytes(width as usize, 1);
    fax::decode(&stored, kind, width, rows as u32)
}

/// The kind of fax data of compression `c` with Group 3 `t4_options`; None for others.
fn fax_kind(c: u16, t4_options: u32) -> Option<Fax> {
    match c {
        compression::CCITT_RLE => Some(Fax::Huffman),
        compression::CCITT_G3 => Some(Fax::Group3(t4_options)),
        compression::CCITT_G4 => Some(Fax::Group4),
        _ => None,
    }
}

/// CIELAB samples as stored to L* (0-100) and signed a*, b*: photometric 8 keeps a*/b* as
/// signed integers, ICCLab (9) as unsigned with an offset of half the range; 16-bit a*/b*
/// are in 1/256 units.
fn lab_units(data: &mut [f32], channels: usize, bits: u16, photometric: u16) {
    let full = 2f32.powi(bits as i32);
    let ab_scale = if bits == 16 { 1.0 / 256.0 } else { 1.0 };
    for p in data.chunks_exact_mut(channels) {
        p[0] = p[0] * 100.0 / (full - 1.0);
        for v in p.iter_mut().take(3).skip(1) {
            let signed = if photometric == 9 {
                *v - full / 2.0
            } else if *v >= full / 2.0 {
                *v - full
            } else {
                *v
            };
            *v = signed * ab_scale;
        }
    }
}

/// The 8-bit pixels of a stored tile (or strip) of `rows` rows of level `l`.
fn decode_u8(l: &LevelData, stored: Vec<u8>, rows: u32) -> SourceResult<Raster> {
    let g = &l.geometry;
    let ch = l.samples as u8;
    match l.compression {
        compression::JPEG => {
            let rgb = l.photometric == 2 && ch == 3;
            let stream = jpeg::complete_stream(l.jpeg_tables.as_deref(), &stored, rgb);
            return jpeg::decode(&stream, g.tile_width, rows, ch);
        }
        compression::WEBP | compression::WEBP_OLD => {
            return webp::decode(&stored, g.tile_width, rows, ch);
        }
        compression::JP2K_YCBCR | compression::JP2K_RGB => return jp2k_tile(l, stored, rows),
        _ => {}
    }
    let row_samples = g.tile_width as usize * ch as usize;
    let expected = samples::row_bytes(row_samples, l.bits) * rows as usize;
    let mut data = decompress(l, stored, expected)?;
    if l.bits < 8 {
        data = samples::widen_to_u8(&data, l.bits, row_samples)?;
    } else if l.predictor == 2 {
        lossless::unpredict_horizontal_u8(&mut data, row_samples, ch as usize);
    }
    if l.photometric == 0 {
        data.iter_mut().for_each(|v| *v = 255 - *v);
    }
    Raster::from_vec(g.tile_width, rows, ch, data).ok_or_else(|| corrupt("tile size mismatch"))
}

/// The 8-bit pixels of a JPEG2000 tile (a raw codestream) of `rows` rows of level `l`:
/// its components interleaved, YCbCr turned to RGB for compression 33003.
fn jp2k_tile(l: &LevelData, stored: Vec<u8>, rows: u32) -> SourceResult<Raster> {
    let (width, ch) = (l.geometry.tile_width, l.samples as usize);
    let bounds = openjpeg::Bounds {
        width,
        height: l.geometry.tile_height,
        components: ch as u32,
    };
    let comps = openjpeg::decode_codestream(stored, bounds)?;
    let fits = |c: &openjpeg::Component| c.width == width && c.height >= rows;
    if comps.len() != ch || !comps.iter().all(fits) {
        return Err(corrupt(format!(
            "JPEG2000 tile of {} components, not {ch} of {width}x{rows} pixels",
            comps.len()
        )));
    }
    let n = width as usize * rows as usize;
    let mut data = vec![0u8; n * ch];
    for (c, comp) in comps.iter().enumerate() {
        for (px, &v) in data.chunks_exact_mut(ch).zip(&comp.data[..n]) {
            px[c] = v.clamp(0, 255) as u8;
        }
    }
    if l.compression == compression::JP2K_YCBCR && ch == 3 {
        data.chunks_exact_mut(3).for_each(ycbcr_to_rgb);
    }
    Raster::from_vec(width, rows, ch as u8, data).ok_or_else(|| corrupt("tile size mismatch"))
}

/// One pixel of full-range YCbCr (JPEG's, as Aperio stores it) to RGB, in place.
fn ycbcr_to_rgb(p: &mut [u8]) {
    let (y, cb, cr) = (p[0] as f32, p[1] as f32 - 128.0, p[2] as f32 - 128.0);
    let to_u8 = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    p[0] = to_u8(y + 1.402 * cr);
    p[1] = to_u8(y - 0.344_136 * cb - 0.714_136 * cr);
    p[2] = to_u8(y + 1.772 * cb);
}

impl ImageSource for TiffImage {
    fn info(&self) -> &ImageInfo {
        &self.info
    }

    fn worth_caching(&self) -> bool {
        !self.info.needs_float() && self.levels[0].compression != compression::NONE
    }

    fn read_tile(&self, level: usize, tx: u32, ty: u32) -> SourceResult<Raster> {
        let l = self.level(level)?;
        let (idx, rows) = self.locate(l, tx, ty)?;
        let g = &l.geometry;
        if self.info.needs_float() {
            return Err(SourceError::unsupported(
                "not an 8-bit RGB or grey image (read as floats)",
            ));
        }
        if let Some(strip) = &l.restarts {
            return strip.tile(self.bytes.as_ref(), tx, ty);
        }
        let ch = l.samples as u8;
        let Some(stored) = self.stored_tile(l, idx)? else {
            return Ok(Raster::filled(g.tile_width, rows, ch, self.background));
        };
        // a codec's error is placed at the tile it decoded
        decode_u8(l, stored, rows).map_err(|e| e.or_at(l.offsets.get(idx).copied().unwrap_or(0)))
    }

    fn read_tile_float(&self, level: usize, tx: u32, ty: u32) -> SourceResult<FloatRaster> {
        if !self.info.needs_float() {
            return self.read_tile(level, tx, ty).map(|r| r.to_float());
        }
        let l = self.level(level)?;
        let (idx, rows) = self.locate(l, tx, ty)?;
        let g = &l.geometry;
        let ch = l.samples as usize;
        let Some(stored) = self.stored_tile(l, idx)? else {
            let top = self.info.min_max.first().map_or(255.0, |m| m.1 as f32);
            let value = top * f32::from(self.background) / 255.0;
            return Ok(FloatRaster::filled(g.tile_width, rows, ch as u8, value));
        };
        self.decode_float(l, stored, rows)
            .map_err(|e| e.or_at(l.offsets.get(idx).copied().unwrap_or(0)))
    }

    fn prefetch_tiles(&self, level: usize, tiles: &[(u32, u32)]) -> SourceResult<()> {
        if !self.bytes.is_remote() {
            return Ok(());
        }
        let l = self.level(level)?;
        let mut ranges = Vec::with_capacity(tiles.len());
        for &(tx, ty) in tiles {
            let (idx, _) = self.locate(l, tx, ty)?;
            match &l.restarts {
                Some(strip) => ranges.extend(strip.ranges(tx, ty)?),
                None => ranges.extend(self.tile_range(l, idx)?),
            }
        }
        self.bytes.prefetch(&ranges)
    }

    fn is_remote(&self) -> bool {
        self.bytes.is_remote()
    }

    fn jpeg_tile(&self, level: usize, tx: u32, ty: u32) -> SourceResult<Option<Vec<u8>>> {
        let l = self.level(level)?;
        let passable = l.compression == compression::JPEG
            && l.restarts.is_none()
            && l.bits == 8
            && matches!((l.samples, l.photometric), (1, 1) | (3, 2) | (3, 6));
        if !passable {
            return Ok(None);
        }
        let (idx, _) = self.locate(l, tx, ty)?;
        let Some(stored) = self.stored_tile(l, idx)? else {
            return Ok(None);
        };
        let rgb = l.photometric == 2;
        Ok(Some(jpeg::complete_stream(
            l.jpeg_tables.as_deref(),
            &stored,
            rgb,
        )))
    }
}
