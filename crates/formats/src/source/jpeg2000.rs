//! JPEG2000 images (`.jp2` files and raw `.j2k`/`.jph` codestreams, HTJ2K included): the
//! header is read by our own parser (boxes, SIZ, COD, colour and resolution), bounded
//! before anything is allocated; pixels come from OpenJPEG ([`crate::codec::openjpeg`]),
//! decoding only the resolution (reduce) and area (decode area) of one tile.
//!
//! Levels are the codestream's resolutions at the sizes the codestream defines (rounded
//! up: `ceil((x0 + w) / 2^r) - ceil(x0 / 2^r)`), down to the first that fits in one tile,
//! as the newest original lists them (a 4000 × 3000 file with 6 resolutions has 5 levels,
//! the smallest 250 × 188); tiles are 256 × 256 at every level, as the original serves
//! JPEG2000. Quality layers: half of those in the file by default (MAX_LAYERS, LYR).
//!
//! Spec: ISO/IEC 15444-1 (boxes, markers) and 15444-15 (HTJ2K).

use super::ImageSource;
use crate::bytes::ByteSource;
use crate::codec::openjpeg::{self, Container, DecodeRequest};
use crate::error::{SourceError, SourceResult};
use iipsrv_core::info::{ColourSpace, ImageInfo, Level, Metadata, SampleFormat};
use iipsrv_core::raster::{FloatRaster, Pixels, Raster};
use rayon::prelude::*;
use std::sync::{Arc, OnceLock};

mod index;
use index::TileIndex;

/// Tile size served at every level.
const TILE: u32 = 256;
/// Most bytes of box headers and main header read while parsing.
const HEADER_LIMIT: usize = 1 << 20;
/// Most pixels decoded in one OpenJPEG pass of a region.
const BAND_PIXELS: u64 = 4 << 20;
/// The smallest side of a block of [`ImageSource::region_grid`]: codestream tiles of a
/// reduced level are grouped until a block is this wide, so one OpenJPEG pass does enough.
const BLOCK_MIN: u32 = 256;
/// The largest side of such a block: images in larger codestream tiles (or in one tile)
/// keep decoding exactly the box asked.
const BLOCK_MAX: u32 = 2048;
/// Most bytes one HTJ2K decode of whole codestream tiles may take (OpenJPEG's 4 bytes per
/// sample and our copy's 4).
const HTJ2K_DECODE_BYTES: u64 = 256 << 20;
/// Left, top, right, bottom.
type Area = (u32, u32, u32, u32);
/// Most components accepted.
const MAX_COMPONENTS: usize = 64;
/// Most samples (width × height × components) in one codestream tile. OpenJPEG sets up
/// its code-block structures for a whole tile at every resolution, about 0.25 byte per
/// sample whatever part is decoded (measured: 130 MB for an untiled 16000 × 12000 RGB
/// file), so a 600-byte header declaring a 16 million × 80 tile cost 1 GB per request.
/// 2^31 samples (an untiled 26000 × 26000 RGB scan, about 550 MB) is the bound.
const MAX_TILE_SAMPLES: u64 = 1 << 31;

/// What the header says.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Container kind.
    pub container: Container,
    /// Image area origin on the reference grid (XOsiz, YOsiz).
    pub origin: (u32, u32),
    /// Image width and height.
    pub size: (u32, u32),
    /// Per component: precision in bits and signedness.
    pub components: Vec<(u8, bool)>,
    /// Resolutions (decomposition levels + 1).
    pub resolutions: u8,
    /// Quality layers.
    pub layers: u16,
    /// Enumerated colour space of the `colr` box (16 sRGB, 17 grey, 18 sYCC, 14 CIELab).
    pub enumerated_cs: Option<u32>,
    /// ICC profile of the `colr` box.
    pub icc: Option<Vec<u8>>,
    /// Capture (or display) resolution, pixels per metre, horizontal and vertical.
    pub pixels_per_metre: Option<(f64, f64)>,
    /// High-throughput (Part 15) codestream.
    pub htj2k: bool,
    /// The codestream's tile grid on the reference grid: origin (XTOsiz, YTOsiz) and tile
    /// size (XTsiz, YTsiz).
    pub tiling: (u32, u32, u32, u32),
    /// Where the codestream lies in the file: first byte and end.
    pub codestream: (u64, u64),
    /// The JP2 header has a palette, component mapping or channel definitions, which
    /// OpenJPEG applies only when it decodes the JP2 container.
    pub channel_boxes: bool,
}

fn corrupt(what: impl Into<String>) -> SourceError {
    SourceError::corrupt(format!("JPEG2000: {}", what.into()))
}

/// [`corrupt`] at byte `offset` of the file.
fn corrupt_at(what: impl Into<String>, offset: u64) -> SourceError {
    SourceError::corrupt_at(format!("JPEG2000: {}", what.into()), offset)
}

/// The big-endian u16 at `at` of `b`, which was read from byte `base` of the file.
fn be16(b: &[u8], base: u64, at: usize) -> SourceResult<u16> {
    b.get(at..at + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or_else(|| corrupt_at("header cut short", base + at as u64))
}

/// The big-endian u32 at `at` of `b`, which was read from byte `base` of the file.
fn be32(b: &[u8], base: u64, at: usize) -> SourceResult<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| corrupt_at("header cut short", base + at as u64))
}

/// Whether the first bytes are a JP2 signature box or a codestream's SOC + SIZ.
pub(crate) fn sniff(head: &[u8]) -> Option<Container> {
    if head.starts_with(&[0, 0, 0, 12, b'j', b'P', b' ', b' ']) {
        Some(Container::Jp2)
    } else if head.starts_with(&[0xff, 0x4f, 0xff, 0x51]) {
        Some(Container::Codestream)
    } else {
        None
    }
}

/// One box: type, offset of the box, content offset and content length.
struct BoxRef {
    kind: [u8; 4],
    at: u64,
    start: u64,
    len: u64,
}

/// The boxes in `[from, to)`; a zero length means "to the end".
fn boxes(bytes: &dyn ByteSource, from: u64, to: u64) -> SourceResult<Vec<BoxRef>> {
    let mut out = Vec::new();
    let mut at = from;
    while at + 8 <= to && out.len() < 4096 {
        let h = bytes.read_at(at, 8)?;
        let lbox = be32(&h, at, 0)? as u64;
        let kind = [h[4], h[5], h[6], h[7]];
        let (header, total) = match lbox {
            0 => (8, to - at),
            1 => {
                let x = bytes.read_at(at + 8, 8)?;
                let big = (be32(&x, at + 8, 0)? as u64) << 32 | be32(&x, at + 8, 4)? as u64;
                (16, big)
            }
            n => (8, n),
        };
        if total < header || at + total > to {
            return Err(corrupt_at("a box runs past its parent", at));
        }
        out.push(BoxRef {
            kind,
            at,
            start: at + header,
            len: total - header,
        });
        at += total;
    }
    Ok(out)
}

/// The components OpenJPEG outputs for a file with a palette (`pclr` content, read from
/// byte `at`) and a component mapping (`cmap`): it applies the palette then, so each
/// mapped channel has the precision of its palette column, or of the codestream component
/// it takes as it is. (Without a `cmap` OpenJPEG leaves the indices, and so do we.)
fn palette_components(
    pclr: &[u8],
    cmap: &[u8],
    coded: &[(u8, bool)],
    at: u64,
) -> SourceResult<Vec<(u8, bool)>> {
    let bad = || corrupt_at("palette (pclr/cmap) does not match the codestream", at);
    let columns = *pclr.get(2).ok_or_else(bad)? as usize;
    let depths = pclr.get(3..3 + columns).ok_or_else(bad)?;
    if cmap.is_empty() || !cmap.len().is_multiple_of(4) || cmap.len() / 4 > MAX_COMPONENTS {
        return Err(bad());
    }
    let precision = |b: u8| ((b & 0x7f) + 1, b & 0x80 != 0);
    let out: Vec<(u8, bool)> = cmap
        .chunks_exact(4)
        .map(|m| {
            let direct = coded
                .get(u16::from_be_bytes([m[0], m[1]]) as usize)
                .ok_or_else(bad)?;
            match m[2] {
                0 => Ok(*direct),
                1 => depths
                    .get(m[3] as usize)
                    .map(|&b| precision(b))
                    .ok_or_else(bad),
                _ => Err(bad()),
            }
        })
        .collect::<SourceResult<_>>()?;
    if out.iter().any(|c| *c != out[0]) {
        return Err(SourceError::unsupported(
            "JPEG2000 palette with channels of different precisions",
        ));
    }
    Ok(out)
}

/// The start of the codestream tile (of size `t` on a grid from `t0`) that holds
/// reference-grid coordinate `v`.
fn tile_floor(v: u64, t0: u32, t: u32) -> u64 {
    t0 as u64 + v.saturating_sub(t0 as u64) / t as u64 * t as u64
}

/// Reads a box's whole content, bounded.
fn content(bytes: &dyn ByteSource, b: &BoxRef) -> SourceResult<Vec<u8>> {
    if b.len > HEADER_LIMIT as u64 {
        return Err(corrupt_at("a header box is too large", b.at));
    }
    bytes.read_at(b.start, b.len as usize)
}

impl Header {
    /// `area` (left, top, right, bottom on the reference grid) widened to the whole
    /// codestream tiles it touches, within the image.
    fn whole_tiles(&self, (x0, y0, x1, y1): (u32, u32, u32, u32)) -> (u32, u32, u32, u32) {
        let (tx, ty, tw, th) = self.tiling;
        let down = |v: u32, t0: u32, t: u32| tile_floor(v as u64, t0, t) as u32;
        let up = |v: u32, t0: u32, t: u32| {
            let v = v.saturating_sub(t0) as u64;
            (t0 as u64 + v.div_ceil(t as u64) * t as u64).min(u32::MAX as u64) as u32
        };
        let (ox, oy) = self.origin;
        let (w, h) = self.size;
        (
            down(x0, tx, tw).max(ox),
            down(y0, ty, th).max(oy),
            up(x1, tx, tw).min(ox + w),
            up(y1, ty, th).min(oy + h),
        )
    }

    /// The codestream tiles across and down.
    fn tile_grid(&self) -> (u64, u64) {
        let (tx, ty, tw, th) = self.tiling;
        let count = |o: u32, n: u32, t0: u32, t: u32| {
            (o as u64 + n as u64)
                .saturating_sub(t0 as u64)
                .div_ceil(t as u64)
        };
        (
            count(self.origin.0, self.size.0, tx, tw),
            count(self.origin.1, self.size.1, ty, th),
        )
    }

    /// Whether codestream tile `tile` (numbered row by row) touches `area` (left, top,
    /// right, bottom on the reference grid).
    fn tile_touches(&self, tile: u16, (x0, y0, x1, y1): Area) -> bool {
        let (tx, ty, tw, th) = self.tiling;
        let across = self.tile_grid().0.max(1);
        let (col, row) = (tile as u64 % across, tile as u64 / across);
        let (left, top) = (tx as u64 + col * tw as u64, ty as u64 + row * th as u64);
        let overlaps = |a: u64, t: u32, lo: u32, hi: u32| a < hi as u64 && a + t as u64 > lo as u64;
        overlaps(left, tw, x0, x1) && overlaps(top, th, y0, y1)
    }

    /// Parses the header of a JP2 file or a raw codestream.
    pub fn read(bytes: &dyn ByteSource) -> SourceResult<Header> {
        let head = bytes.read_at(0, bytes.len().min(12) as usize)?;
        match sniff(&head) {
            Some(Container::Codestream) => Self::codestream(bytes, 0, Container::Codestream),
            Some(Container::Jp2) => Self::jp2(bytes),
            None => Err(corrupt_at("not a JPEG2000 file", 0)),
        }
    }

    fn jp2(bytes: &dyn ByteSource) -> SourceResult<Header> {
        let top = boxes(bytes, 0, bytes.len())?;
        let code = top
            .iter()
            .find(|b| &b.kind == b"jp2c")
            .ok_or_else(|| corrupt("no codestream box"))?;
        let mut h = Self::codestream(bytes, code.start, Container::Jp2)?;
        h.codestream = (code.start, code.start + code.len);
        let (mut pclr, mut cmap) = (None, None);
        if let Some(jp2h) = top.iter().find(|b| &b.kind == b"jp2h") {
            for b in boxes(bytes, jp2h.start, jp2h.start + jp2h.len)? {
                match &b.kind {
                    b"colr" => h.colour(&content(bytes, &b)?, b.start),
                    b"res " => h.resolution(bytes, &b)?,
                    b"pclr" => pclr = Some((content(bytes, &b)?, b.start)),
                    b"cmap" => cmap = Some(content(bytes, &b)?),
                    b"cdef" => h.channel_boxes = true,
                    _ => {}
                }
            }
        }
        h.channel_boxes |= pclr.is_some() || cmap.is_some();
        if let (Some((pclr, at)), Some(cmap)) = (pclr, cmap) {
            h.components = palette_components(&pclr, &cmap, &h.components, at)?;
        }
        Ok(h)
    }

    /// The `colr` box (content `c`, read from byte `base`): an enumerated space or an ICC
    /// profile (first one wins).
    fn colour(&mut self, c: &[u8], base: u64) {
        if self.enumerated_cs.is_some() || self.icc.is_some() || c.len() < 3 {
            return;
        }
        match c[0] {
            1 => self.enumerated_cs = be32(c, base, 3).ok(),
            2 | 3 => self.icc = Some(c[3..].to_vec()),
            _ => {}
        }
    }

    /// The `res ` superbox: capture resolution, else display resolution.
    fn resolution(&mut self, bytes: &dyn ByteSource, res: &BoxRef) -> SourceResult<()> {
        let inner = boxes(bytes, res.start, res.start + res.len)?;
        let pick = inner
            .iter()
            .find(|b| &b.kind == b"resc")
            .or_else(|| inner.iter().find(|b| &b.kind == b"resd"));
        if let Some(b) = pick {
            let c = content(bytes, b)?;
            if c.len() >= 10 {
                let rate = |n: usize, d: usize, e: usize| -> SourceResult<f64> {
                    let (n, d) = (be16(&c, b.start, n)? as f64, be16(&c, b.start, d)? as f64);
                    Ok(n / d.max(1.0) * 10f64.powi(c[e] as i8 as i32))
                };
                let (v, h) = (rate(0, 2, 8)?, rate(4, 6, 9)?);
                if v > 0.0 && h > 0.0 && v.is_finite() && h.is_finite() {
                    self.pixels_per_metre = Some((h, v));
                }
            }
        }
        Ok(())
    }

    /// The codestream main header at `at`: SIZ, then markers up to COD.
    fn codestream(bytes: &dyn ByteSource, at: u64, container: Container) -> SourceResult<Header> {
        let n = bytes.len().saturating_sub(at).min(HEADER_LIMIT as u64) as usize;
        let b = bytes.read_at(at, n)?;
        if !b.starts_with(&[0xff, 0x4f, 0xff, 0x51]) {
            return Err(corrupt_at(
                "the codestream does not start with SOC and SIZ",
                at,
            ));
        }
        let mut h = Self::siz(&b, at, 4, container)?;
        let mut pos = 4 + be16(&b, at, 4)? as usize;
        loop {
            let marker = be16(&b, at, pos)?;
            let marker_at = at + pos as u64;
            if marker == 0xff90 || marker == 0xff93 {
                return Err(corrupt_at("no COD marker in the main header", marker_at));
            }
            let len = be16(&b, at, pos + 2)? as usize;
            match marker {
                0xff52 => {
                    h.layers = be16(&b, at, pos + 6)?;
                    let levels = *b
                        .get(pos + 9)
                        .ok_or_else(|| corrupt_at("short COD", marker_at))?;
                    if levels > 32 {
                        return Err(corrupt_at(
                            format!("{levels} decomposition levels"),
                            marker_at,
                        ));
                    }
                    h.resolutions = levels + 1;
                    return Ok(h);
                }
                0xff50 => h.htj2k = true,
                _ => {}
            }
            pos += 2 + len;
        }
    }

    /// SIZ: sizes, tiling, components. `b` is the main header, read from byte `base` of the
    /// file; `at` points at the marker's length field.
    fn siz(b: &[u8], base: u64, at: usize, container: Container) -> SourceResult<Header> {
        let rsiz = be16(b, base, at + 2)?;
        let (x1, y1) = (be32(b, base, at + 4)?, be32(b, base, at + 8)?);
        let (x0, y0) = (be32(b, base, at + 12)?, be32(b, base, at + 16)?);
        let (tile_w, tile_h) = (be32(b, base, at + 20)?, be32(b, base, at + 24)?);
        let (tile_x0, tile_y0) = (be32(b, base, at + 28)?, be32(b, base, at + 32)?);
        let covers = |t0: u32, t: u32, o: u32| t > 0 && t0 <= o && t0 as u64 + t as u64 > o as u64;
        if !covers(tile_x0, tile_w, x0) || !covers(tile_y0, tile_h, y0) {
            return Err(corrupt_at(
                "the tile grid does not cover the image area",
                base + at as u64 + 20,
            ));
        }
        let tiling = (tile_x0, tile_y0, tile_w, tile_h);
        let count = be16(b, base, at + 36)? as usize;
        if x1 <= x0 || y1 <= y0 || x1 > i32::MAX as u32 || y1 > i32::MAX as u32 {
            return Err(corrupt_at(
                format!("image area {x0},{y0}-{x1},{y1}"),
                base + at as u64 + 4,
            ));
        }
        if count == 0 || count > MAX_COMPONENTS {
            return Err(SourceError::unsupported(format!(
                "JPEG2000 with {count} components"
            )));
        }
        let mut components = Vec::with_capacity(count);
        for c in 0..count {
            let from = at + 38 + 3 * c;
            let s = b.get(from..from + 3);
            let s = s.ok_or_else(|| corrupt_at("SIZ cut short", base + from as u64))?;
            if s[1] != 1 || s[2] != 1 {
                return Err(SourceError::unsupported(
                    "JPEG2000 with subsampled components",
                ));
            }
            components.push(((s[0] & 0x7f) + 1, s[0] & 0x80 != 0));
        }
        let (tile_w, tile_h) = (tile_w.clamp(1, x1 - x0), tile_h.clamp(1, y1 - y0));
        if tile_w as u64 * tile_h as u64 * count as u64 > MAX_TILE_SAMPLES {
            return Err(SourceError::unsupported(format!(
                "JPEG2000 tiles of {tile_w} x {tile_h} x {count} samples: more than \
                 {MAX_TILE_SAMPLES} samples per tile would need too much memory to decode"
            )));
        }
        Ok(Header {
            container,
            origin: (x0, y0),
            size: (x1 - x0, y1 - y0),
            components,
            resolutions: 1,
            layers: 1,
            enumerated_cs: None,
            icc: None,
            pixels_per_metre: None,
            htj2k: rsiz & 0x4000 != 0,
            tiling,
            codestream: (base, u64::MAX),
            channel_boxes: false,
        })
    }
}

/// An open JPEG2000 image.
pub struct Jpeg2000Image {
    bytes: Arc<dyn ByteSource>,
    header: Arc<Header>,
    info: Arc<ImageInfo>,
    /// Quality layers decoded (0 all), from MAX_LAYERS/LYR.
    layers: u32,
    /// Where the tile-parts lie, read at the first decode (see [`index`]); `None` when the
    /// codestream is decoded from the whole file.
    index: Arc<OnceLock<Option<TileIndex>>>,
}

impl Jpeg2000Image {
    /// Reads the header; tiles are decoded on demand.
    pub fn open(bytes: Arc<dyn ByteSource>) -> SourceResult<Jpeg2000Image> {
        let header = Header::read(bytes.as_ref())?;
        let info = describe(&header)?;
        let layers = layer_count(&header, 0);
        Ok(Jpeg2000Image {
            bytes,
            header: Arc::new(header),
            info: Arc::new(info),
            layers,
            index: Arc::default(),
        })
    }

    /// The header as parsed (for tests and OBJ-like reporting).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The box of tile (`tx`, `ty`) of a level, checked to exist.
    fn tile_box(&self, level: usize, tx: u32, ty: u32) -> SourceResult<(u32, u32, u32, u32)> {
        let l = self.level(level)?;
        if tx >= l.tiles_across() || ty >= l.tiles_down() {
            return Err(SourceError::limit(format!("no tile {tx},{ty}")));
        }
        let (lx, ly) = (tx * TILE, ty * TILE);
        Ok((lx, ly, (lx + TILE).min(l.width), (ly + TILE).min(l.height)))
    }

    fn level(&self, level: usize) -> SourceResult<&Level> {
        self.info
            .levels
            .get(level)
            .ok_or_else(|| SourceError::limit(format!("no level {level}")))
    }

    /// Decodes a box of a level (left, top, right, bottom in level pixels) in one OpenJPEG
    /// pass; each component covers at least the box.
    fn decode_box(
        &self,
        level: usize,
        (x0, y0, x1, y1): (u32, u32, u32, u32),
    ) -> SourceResult<Vec<openjpeg::Component>> {
        let (ox, oy) = self.header.origin;
        let (fw, fh) = self.header.size;
        let k = level as u32;
        // Level pixel `v` starts at reference-grid coordinate (ceil(o / 2^k) + v) · 2^k.
        let grid = |v: u32, o: u32, limit: u32| {
            let start = (o as u64).div_ceil(1 << k) + v as u64;
            (start << k).clamp(o as u64, o as u64 + limit as u64) as u32
        };
        let area = (
            grid(x0, ox, fw),
            grid(y0, oy, fh),
            grid(x1, ox, fw),
            grid(y1, oy, fh),
        );
        let area = self.htj2k_area(area, k)?;
        let req = DecodeRequest {
            reduce: k,
            layers: self.layers,
            area,
            bounds: None,
        };
        let comps = match self.tile_index() {
            Some(index) => {
                let spliced =
                    index.splice(self.bytes.as_ref(), |t| self.header.tile_touches(t, area));
                openjpeg::decode(&spliced, Container::Codestream, &req)?
            }
            None => openjpeg::decode(self.bytes.as_ref(), self.header.container, &req)?,
        };
        // The box starts this many level pixels into the decoded area.
        let first = |g: u32, o: u32| {
            let v = (g as u64).div_ceil(1 << k) - (o as u64).div_ceil(1 << k);
            v.try_into().ok()
        };
        let offset = |v: u32, g: u32, o: u32| v.checked_sub(first(g, o)?);
        let (Some(dx), Some(dy)) = (offset(x0, area.0, ox), offset(y0, area.1, oy)) else {
            return Err(corrupt("decoded area does not hold the asked box"));
        };
        let short = || corrupt("decoded area smaller than asked");
        if comps.len() != self.info.channels as usize {
            return Err(short());
        }
        if (dx, dy) == (0, 0)
            && comps
                .iter()
                .all(|c| c.width >= x1 - x0 && c.height >= y1 - y0)
        {
            return Ok(comps);
        }
        let crop = |c: &openjpeg::Component| c.crop(dx, dy, x1 - x0, y1 - y0).ok_or_else(short);
        comps.iter().map(crop).collect()
    }

    /// The tile-part index, read at the first call: none for remote sources (a round trip
    /// per tile-part), JP2 files whose channel boxes OpenJPEG applies only through the JP2
    /// container, and codestreams with more tiles than SOT can number.
    fn tile_index(&self) -> Option<&TileIndex> {
        self.index
            .get_or_init(|| {
                let h = &self.header;
                let (across, down) = h.tile_grid();
                let tiles = across.saturating_mul(down);
                if self.bytes.is_remote() || h.channel_boxes || tiles > u16::MAX as u64 {
                    return None;
                }
                let (start, end) = h.codestream;
                TileIndex::read(self.bytes.as_ref(), start, end, tiles as u32)
            })
            .as_ref()
    }

    /// The reference-grid area OpenJPEG decodes for `area` at reduction `k`. OpenJPEG
    /// (2.5.3 too) decodes part of an HTJ2K codestream tile wrongly, as flat grey: its
    /// partial decoding of HT code-blocks. Whole tiles decode right, so an HTJ2K area is
    /// widened to whole codestream tiles (and the answer cropped), within HTJ2K_DECODE_BYTES.
    fn htj2k_area(&self, area: Area, k: u32) -> SourceResult<Area> {
        if !self.header.htj2k {
            return Ok(area);
        }
        let wide = self.header.whole_tiles(area);
        let side = |a: u32, b: u32| ((b - a) as u64).div_ceil(1 << k);
        let bytes = side(wide.0, wide.2) * side(wide.1, wide.3) * self.info.channels as u64 * 8;
        if bytes > HTJ2K_DECODE_BYTES {
            let (_, _, tw, th) = self.header.tiling;
            return Err(SourceError::over_limit(
                format!(
                    "HTJ2K in codestream tiles of {tw}x{th} is decoded in whole tiles, too large \
                     at this resolution; re-encode it in tiles (ojph_compress -tile_size {{512,512}})"
                ),
                bytes,
                HTJ2K_DECODE_BYTES,
            ));
        }
        Ok(wide)
    }

    /// A box of a level decoded in horizontal bands, one per worker thread, each band one
    /// OpenJPEG pass — far cheaper than one pass per 256-pixel tile, since every pass walks
    /// the codestream's tile-part headers — converted through `convert`.
    fn region<T: Copy + Default + Send>(
        &self,
        level: usize,
        (x0, y0, x1, y1): (u32, u32, u32, u32),
        convert: impl Fn(i32) -> T + Sync,
    ) -> SourceResult<Pixels<T>> {
        let (w, h) = (x1 - x0, y1 - y0);
        // One band per worker for tall boxes, and enough bands that none holds more than
        // about 4 megapixels (OpenJPEG keeps 4 bytes per sample and component).
        let per_thread = (rayon::current_num_threads() as u32).clamp(1, (h / 512).max(1));
        let by_size = ((w as u64 * h as u64).div_ceil(BAND_PIXELS) as u32).min(h.max(1));
        let bands = per_thread.max(by_size);
        let step = h.div_ceil(bands);
        // HTJ2K is decoded in whole codestream tiles (see `htj2k_area`): its band edges
        // move up to the start of a tile row, so no tile is decoded by two bands.
        let edge = |y: u32| match self.header.htj2k {
            true => self.tile_row_start(level, y).max(y0),
            false => y,
        };
        let mut edges: Vec<u32> = (0..bands).map(|b| edge(y0 + b * step)).collect();
        edges.push(y1);
        edges.dedup();
        let parts: Vec<(u32, u32)> = edges
            .windows(2)
            .map(|e| (e[0], e[1].min(y1)))
            .filter(|(a, b)| b > a)
            .collect();
        let decode = |&(a, b): &(u32, u32)| {
            let comps = self.decode_box(level, (x0, a, x1, b))?;
            Ok(Self::interleave(w, b - a, &comps, &convert))
        };
        // Inside the worker pool (the caller is one of several parallel jobs, such as a
        // cache composing a region from blocks) the bands run one after another: a pool
        // thread waiting on its own nested jobs may take up another job meanwhile, which
        // could wait on what this one holds (the cache's placeholder for this block).
        let decoded: Vec<Vec<T>> = if rayon::current_thread_index().is_some() {
            parts.iter().map(decode).collect::<SourceResult<_>>()?
        } else {
            parts.par_iter().map(decode).collect::<SourceResult<_>>()?
        };
        let data: Vec<T> = decoded.concat();
        Pixels::from_vec(w, h, self.info.channels, data).ok_or_else(|| corrupt("region size"))
    }

    /// The first row of `level`, at or above row `y`, that starts a codestream tile row.
    fn tile_row_start(&self, level: usize, y: u32) -> u32 {
        let k = level as u32;
        let (_, ty0, _, th) = self.header.tiling;
        let base = (self.header.origin.1 as u64).div_ceil(1 << k);
        let g = (base + y as u64) << k;
        tile_floor(g, ty0, th).div_ceil(1 << k).saturating_sub(base) as u32
    }

    /// Interleaves the `w`×`h` top-left part of each component through `convert`, one
    /// component row at a time (each component covers at least `w`×`h`: `decode_box`).
    fn interleave<T: Copy + Default>(
        w: u32,
        h: u32,
        comps: &[openjpeg::Component],
        convert: &impl Fn(i32) -> T,
    ) -> Vec<T> {
        let (w, n) = (w as usize, comps.len());
        let mut out = vec![T::default(); w * h as usize * n];
        for (y, row) in out.chunks_exact_mut((w * n).max(1)).enumerate() {
            for (i, c) in comps.iter().enumerate() {
                let start = y * c.width as usize;
                let Some(src) = c.data.get(start..start + w) else {
                    continue;
                };
                for (d, &v) in row[i..].iter_mut().step_by(n).zip(src) {
                    *d = convert(v);
                }
            }
        }
        out
    }
}

/// An 8-bit sample from OpenJPEG's integer.
fn to_u8(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// A float sample from OpenJPEG's integer.
fn to_f32(v: i32) -> f32 {
    v as f32
}

/// Quality layers for a MAX_LAYERS/LYR value: -1 all, 0 half of the file's (rounded up),
/// n the first n (at least 1). As many as the file has, or more, is all: 0, as OpenJPEG
/// takes it, so that one set of pixels has one count. The file's count is the main
/// header's; a tile whose own COD declares more layers is then decoded with all of them.
fn layer_count(h: &Header, layers: i32) -> u32 {
    let all = h.layers as u32;
    let count = match layers {
        l if l < 0 => all,
        0 => all.div_ceil(2).max(1),
        l => l as u32,
    };
    if count >= all {
        0
    } else {
        count
    }
}

/// Size along one axis of resolution `k` below full: `ceil((o + n) / 2^k) - ceil(o / 2^k)`
/// for an image of `n` samples from grid origin `o` (ISO/IEC 15444-1, B.5).
fn reduced(o: u32, n: u32, k: u32) -> u32 {
    let d = 1u64 << k;
    ((o as u64 + n as u64).div_ceil(d) - (o as u64).div_ceil(d)) as u32
}

/// The levels served: the codestream's resolutions at their own sizes, stopping at the
/// first that fits in one tile, as the newest original counts them.
fn levels(h: &Header) -> Vec<Level> {
    let ((ox, oy), (width, height)) = (h.origin, h.size);
    let mut levels = Vec::with_capacity(h.resolutions as usize);
    for k in 0..h.resolutions as u32 {
        let (w, hh) = (reduced(ox, width, k), reduced(oy, height, k));
        let scale = 2f64.powi(k as i32);
        levels.push(Level {
            width: w,
            height: hh,
            tile_width: TILE,
            tile_height: TILE,
            scale_x: scale,
            scale_y: scale,
        });
        if w <= TILE && hh <= TILE {
            break;
        }
    }
    levels
}

/// The image description: levels of 256-px tiles, samples, colour, metadata.
fn describe(h: &Header) -> SourceResult<ImageInfo> {
    let (width, height) = h.size;
    let levels = levels(h);
    let (bits, signed) = h.components[0];
    let channels = h.components.len();
    if bits > 32 {
        return Err(SourceError::unsupported(format!("{bits}-bit JPEG2000")));
    }
    let colour = match (h.enumerated_cs, channels) {
        (Some(14), _) => ColourSpace::CieLab,
        (_, 1 | 2) => ColourSpace::Grey,
        (_, 3 | 4) => ColourSpace::Rgb,
        _ => ColourSpace::Other,
    };
    let max = 2f64.powi(bits as i32) - 1.0;
    let range = if signed {
        (-(max + 1.0) / 2.0, (max - 1.0) / 2.0)
    } else {
        (0.0, max)
    };
    Ok(ImageInfo {
        width,
        height,
        levels,
        channels: channels as u8,
        bits_per_sample: bits as u16,
        stored_bits: bits as u16,
        sample_format: if signed {
            SampleFormat::Signed
        } else {
            SampleFormat::Unsigned
        },
        colour,
        min_max: vec![range; channels],
        icc: h.icc.clone().map(Arc::new),
        metadata: Metadata {
            pixels_per_cm: h.pixels_per_metre.map(|(x, y)| (x / 100.0, y / 100.0)),
            ..Metadata::default()
        },
    })
}

impl ImageSource for Jpeg2000Image {
    fn info(&self) -> &ImageInfo {
        &self.info
    }

    fn read_tile(&self, level: usize, tx: u32, ty: u32) -> SourceResult<Raster> {
        if self.info.needs_float() {
            return Err(SourceError::unsupported(
                "not an 8-bit JPEG2000 (read as floats)",
            ));
        }
        self.region(level, self.tile_box(level, tx, ty)?, to_u8)
    }

    fn read_tile_float(&self, level: usize, tx: u32, ty: u32) -> SourceResult<FloatRaster> {
        self.region(level, self.tile_box(level, tx, ty)?, to_f32)
    }

    fn jpeg_tile(&self, _level: usize, _tx: u32, _ty: u32) -> SourceResult<Option<Vec<u8>>> {
        Ok(None)
    }

    fn is_remote(&self) -> bool {
        self.bytes.is_remote()
    }

    fn worth_caching(&self) -> bool {
        !self.info.needs_float()
    }

    /// Whole codestream tiles of the level, grouped to at least [`BLOCK_MIN`] pixels:
    /// JPEG2000 tiles are coded independently, so a block decodes no more than its own
    /// code-blocks. Only for images whose tiles start at the grid's origin and fall on
    /// whole pixels of the level.
    fn region_grid(&self, level: usize) -> Option<(u32, u32)> {
        let h = &self.header;
        let (tx0, ty0, tw, th) = h.tiling;
        if self.info.needs_float() || h.origin != (0, 0) || (tx0, ty0) != (0, 0) {
            return None;
        }
        let k = u32::try_from(level).ok().filter(|&k| k < 31)?;
        let side = |t: u32| {
            let s = t
                .is_multiple_of(1 << k)
                .then_some(t >> k)
                .filter(|&s| s > 0)?;
            let block = s.checked_mul(BLOCK_MIN.div_ceil(s).next_power_of_two())?;
            (block <= BLOCK_MAX).then_some(block)
        };
        Some((side(tw)?, side(th)?))
    }

    fn read_region(
        &self,
        level: usize,
        area: (u32, u32, u32, u32),
    ) -> Option<SourceResult<Raster>> {
        if self.info.needs_float() {
            return None;
        }
        Some(self.region(level, area, to_u8))
    }

    fn read_region_float(
        &self,
        level: usize,
        area: (u32, u32, u32, u32),
    ) -> Option<SourceResult<FloatRaster>> {
        Some(self.region(level, area, to_f32))
    }

    fn with_layers(&self, layers: i32) -> Option<(u32, Arc<dyn ImageSource>)> {
        let count = layer_count(&self.header, layers);
        (count != self.layers).then(|| {
            let image = Jpeg2000Image {
                bytes: self.bytes.clone(),
                header: self.header.clone(),
                info: self.info.clone(),
                layers: count,
                index: self.index.clone(),
            };
            (count, Arc::new(image) as Arc<dyn ImageSource>)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::MemBytes;

    /// A minimal codestream header: SOC, SIZ (one tile, `comps` 8-bit components), COD.
    fn codestream(w: u32, h: u32, comps: u16, levels: u8, layers: u16) -> Vec<u8> {
        let mut b = vec![0xff, 0x4f, 0xff, 0x51];
        b.extend((38 + 3 * comps).to_be_bytes());
        b.extend(0u16.to_be_bytes());
        for v in [w, h, 0, 0, w, h, 0, 0] {
            b.extend(v.to_be_bytes());
        }
        b.extend(comps.to_be_bytes());
        for _ in 0..comps {
            b.extend([7, 1, 1]);
        }
        b.extend([0xff, 0x52, 0, 12, 0, 0]);
        b.extend(layers.to_be_bytes());
        b.extend([0, levels, 4, 4, 0, 0]);
        b.extend([0xff, 0x90]);
        b
    }

    #[test]
    fn reads_siz_and_cod() {
        let bytes = MemBytes(codestream(1000, 600, 3, 5, 8));
        let h = Header::read(&bytes).expect("header");
        assert_eq!(h.size, (1000, 600));
        assert_eq!(h.components, vec![(8, false); 3]);
        assert_eq!((h.resolutions, h.layers), (6, 8));
        let info = describe(&h).expect("info");
        // 1000 × 600 → 500 × 300 → 250 × 150, which fits one tile: three of six.
        assert_eq!(info.levels.len(), 3);
        assert_eq!((info.levels[2].width, info.levels[2].height), (250, 150));
        let odd = describe(&Header::read(&MemBytes(codestream(4001, 3001, 1, 5, 1))).expect("h"));
        let sizes: Vec<_> = odd
            .expect("info")
            .levels
            .iter()
            .map(|l| (l.width, l.height))
            .collect();
        assert_eq!(
            sizes,
            [
                (4001, 3001),
                (2001, 1501),
                (1001, 751),
                (501, 376),
                (251, 188)
            ]
        );
        assert_eq!(layer_count(&h, 0), 4);
        assert_eq!(layer_count(&h, -1), 0);
        assert_eq!(layer_count(&h, 3), 3);
        // As many layers as the file has, or more, are all of them: one count, one cache entry.
        assert_eq!(layer_count(&h, 8), 0);
        assert_eq!(layer_count(&h, 9), 0);
        let one = Header {
            layers: 1,
            ..h.clone()
        };
        assert_eq!(layer_count(&one, 0), 0, "half of one layer is all of it");
    }

    #[test]
    fn damaged_headers_are_errors() {
        let full = codestream(1000, 600, 3, 5, 8);
        for cut in [3, 10, 40, 50] {
            assert!(
                Header::read(&MemBytes(full[..cut].to_vec())).is_err(),
                "cut {cut}"
            );
        }
        let mut many = full.clone();
        many[41] = 200;
        assert!(Header::read(&MemBytes(many)).is_err());
        assert!(Header::read(&MemBytes(codestream(0, 600, 3, 5, 8))).is_err());
    }

    /// A tile whose code-block set-up alone would take gigabytes is refused at open
    /// (found by the fuzzer: 16449580 × 80 × 3 cost 1 GB per request); an untiled
    /// 20000 × 20000 RGB image still opens.
    #[test]
    fn oversized_tiles_are_refused() {
        let huge = Header::read(&MemBytes(codestream(16_449_580, 80, 3, 9, 1)));
        assert!(
            matches!(&huge, Err(SourceError::Unsupported { feature }) if feature.contains("per tile")),
            "{huge:?}"
        );
        assert!(Header::read(&MemBytes(codestream(20_000, 20_000, 3, 6, 1))).is_ok());
    }
}
