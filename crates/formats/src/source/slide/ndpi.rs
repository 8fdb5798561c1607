//! Hamamatsu NDPI: a TIFF whose directories carry the vendor tag 65420. Each directory
//! with a positive source lens (tag 65421: the objective magnification that level
//! corresponds to) is a level of the pyramid, the one with lens -1 the macro image (-2, a
//! map of the scanned area, is not shown); only the central focal plane (tag 65424, Z
//! offset 0) is read. Microns per pixel come from XResolution and YResolution in
//! centimetres.
//!
//! A level is one baseline JPEG in one strip, often too large to decode whole (and past
//! JPEG's 65535-pixel limit, when its frame header says 0). The scanner sets a restart
//! interval and lists where each interval's entropy-coded data starts (tag 65426,
//! McuStarts). A level is served as virtual tiles of whole restart intervals ([`Strip`]):
//! a tile is decoded from a small JPEG made of the level's header, its frame size set to
//! the tile's, and only the intervals the tile covers, renumbered. The TIFF reader parses
//! the directories and calls [`Strip::open`] for these levels.
//!
//! NDPI's offsets past 4 GB (high bits stored after each directory) are not read: such
//! files are refused by the TIFF reader.
//!
//! Format: OpenSlide's description of Hamamatsu (openslide.org/formats/hamamatsu).

use super::{Associated, Directory, Layout};
use crate::bytes::ByteSource;
use crate::codec::jpeg;
use crate::error::{SourceError, SourceResult};
use iipsrv_core::info::Level;
use iipsrv_core::raster::Raster;
use std::ops::Range;

/// NDPI's tags.
pub(crate) mod tag {
    /// Present (value 1) in every directory of an NDPI file.
    pub(crate) const FORMAT: u16 = 65420;
    /// The objective magnification of a level; -1 for the macro, -2 for the map.
    pub(crate) const SOURCE_LENS: u16 = 65421;
    /// Distance of the image's centre from the slide's, horizontally (nm).
    pub(crate) const X_OFFSET: u16 = 65422;
    /// Distance of the image's centre from the slide's, vertically (nm).
    pub(crate) const Y_OFFSET: u16 = 65423;
    /// The focal plane's offset from the central one (nm).
    pub(crate) const Z_OFFSET: u16 = 65424;
    /// Where each restart interval's data starts, from the start of the strip.
    pub(crate) const MCU_STARTS: u16 = 65426;

    /// The tags the TIFF reader loads for this module.
    pub(crate) const ALL: [u16; 6] = [
        FORMAT,
        SOURCE_LENS,
        X_OFFSET,
        Y_OFFSET,
        Z_OFFSET,
        MCU_STARTS,
    ];
}

/// What this module reads of a directory of an NDPI file.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Summary {
    /// Source lens (tag 65421).
    pub lens: f64,
    /// Offsets from the slide's centre, horizontally and vertically (tags 65422, 65423).
    pub offset: (Option<i64>, Option<i64>),
    /// Focal plane (tag 65424), 0 when absent.
    pub z: i64,
    /// Pixels per centimetre (XResolution, YResolution with ResolutionUnit 3).
    pub pixels_per_cm: Option<(f64, f64)>,
}

/// The layout of an NDPI slide, when `dirs` is one.
pub(crate) fn layout(dirs: &[Directory]) -> Option<Layout> {
    let ndpi: Vec<(usize, Summary)> = dirs
        .iter()
        .enumerate()
        .filter_map(|(i, d)| Some((i, d.ndpi?)))
        .filter(|(_, s)| s.z == 0)
        .collect();
    let mut levels: Vec<(usize, f64)> = ndpi
        .iter()
        .filter(|(_, s)| s.lens > 0.0 && s.lens.is_finite())
        .map(|&(i, s)| (i, s.lens))
        .collect();
    levels.sort_by(|a, b| b.1.total_cmp(&a.1));
    let &(first, lens) = levels.first()?;
    let base = dirs[first].ndpi?;
    let mpp = base
        .pixels_per_cm
        .map(|(x, y)| (1e4 / x, 1e4 / y))
        .filter(|(x, y)| {
            [x, y]
                .iter()
                .all(|v| v.is_finite() && **v > 0.0 && **v < 1e6)
        });
    let macro_image = ndpi.iter().find(|(_, s)| s.lens == -1.0);
    Some(Layout {
        levels: levels.iter().map(|l| l.0).collect(),
        associated: macro_image
            .map(|&(i, _)| (Associated::Macro, i))
            .into_iter()
            .collect(),
        mpp,
        properties: properties(lens, &base, mpp),
        background: 0,
        ..Layout::default()
    })
}

/// The properties of an NDPI slide whose level 0 has source lens `lens`, as OpenSlide
/// names them.
fn properties(lens: f64, base: &Summary, mpp: Option<(f64, f64)>) -> Vec<(String, String)> {
    let mut p = vec![
        ("openslide.vendor".to_string(), "hamamatsu".to_string()),
        ("hamamatsu.SourceLens".to_string(), lens.to_string()),
        ("openslide.objective-power".to_string(), lens.to_string()),
    ];
    let offsets = [("X", base.offset.0), ("Y", base.offset.1)];
    for (axis, value) in offsets {
        if let Some(v) = value {
            p.push((
                format!("hamamatsu.{axis}OffsetFromSlideCentre"),
                v.to_string(),
            ));
        }
    }
    if let Some((x, y)) = mpp {
        p.push(("openslide.mpp-x".into(), x.to_string()));
        p.push(("openslide.mpp-y".into(), y.to_string()));
    }
    p
}

/// Decoded tiles of about this many pixels a side (a whole number of restart intervals
/// wide, of MCU rows high).
const TILE_TARGET: u32 = 512;

/// Most bytes of a level's JPEG header (its tables; a scanner writes well under 1 KB).
const MAX_HEADER: u64 = 1 << 20;

/// Bounds on what one level may ask of us, from the TIFF reader's limits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// Most bytes of one decoded tile.
    pub tile_bytes: u64,
    /// Most stored bytes one tile is made from.
    pub stored_bytes: u64,
}

/// One level of an NDPI: a JPEG in one strip with restart markers, read as virtual tiles
/// of whole restart intervals.
#[derive(Debug, Clone)]
pub(crate) struct Strip {
    /// The JPEG from SOI to the end of its SOS segment.
    header: Vec<u8>,
    /// Where the frame's height and width are in `header`.
    frame_size_at: usize,
    /// Components of the JPEG (1 grey, 3 colour).
    components: u8,
    /// Where the strip is in the file, and its length.
    offset: u64,
    length: u64,
    /// Where each restart interval's data starts, from the start of the strip.
    starts: Vec<u64>,
    /// The level's size.
    width: u32,
    height: u32,
    /// The MCU's size in pixels.
    mcu: (u32, u32),
    /// Restart intervals per MCU row, MCU rows.
    per_row: u32,
    rows: u32,
    /// A virtual tile's size in restart intervals across and MCU rows down.
    tile: (u32, u32),
    /// Most stored bytes one tile is made from.
    max_stored: u64,
}

/// What a level's JPEG header says.
struct Frame {
    frame_size_at: usize,
    size: (u32, u32),
    components: u8,
    mcu: (u32, u32),
    interval: u32,
}

impl Strip {
    /// The level stored as the JPEG at `offset` (`length` bytes) of `bytes`, of
    /// `width`×`height` pixels with `samples` samples, whose restart intervals start at
    /// `starts` (McuStarts): the header read and checked, the intervals checked against
    /// the JPEG's layout and the strip, the tile size chosen within `bounds`.
    pub(crate) fn open(
        bytes: &dyn ByteSource,
        (offset, length): (u64, u64),
        starts: Vec<u64>,
        (width, height, samples): (u32, u32, u8),
        bounds: Bounds,
    ) -> SourceResult<Strip> {
        let end = offset.checked_add(length).filter(|&e| e <= bytes.len());
        if end.is_none() || length == 0 {
            return Err(SourceError::corrupt_at(
                format!("NDPI strip of {length} bytes at {offset} is outside the file"),
                offset,
            ));
        }
        let header_len = starts.first().copied().unwrap_or(0);
        if header_len < 4 || header_len > MAX_HEADER.min(length) {
            return Err(SourceError::corrupt_at(
                format!("NDPI McuStarts puts the JPEG data at {header_len}"),
                offset,
            ));
        }
        let header = bytes.read_at(offset, header_len as usize)?;
        let frame = parse_header(&header).map_err(|e| e.or_at(offset))?;
        check_frame(&frame, (width, height, samples))?;
        let (mw, mh) = frame.mcu;
        let across = width.div_ceil(mw);
        let per_row = across / frame.interval;
        if per_row == 0 || per_row * frame.interval != across {
            return Err(SourceError::unsupported(format!(
                "NDPI restart interval of {} MCUs in rows of {across} MCUs",
                frame.interval
            )));
        }
        let rows = height.div_ceil(mh);
        check_starts(&starts, per_row as u64 * rows as u64, length)?;
        let tile = tile_shape(frame.interval * mw, mh, (per_row, rows), samples, bounds)?;
        Ok(Strip {
            header,
            frame_size_at: frame.frame_size_at,
            components: frame.components,
            offset,
            length,
            starts,
            width,
            height,
            mcu: frame.mcu,
            per_row,
            rows,
            tile,
            max_stored: bounds.stored_bytes,
        })
    }

    /// The level's geometry: its size and its virtual tiles' size.
    pub(crate) fn geometry(&self) -> Level {
        Level {
            width: self.width,
            height: self.height,
            tile_width: self.tile.0 * self.interval_width(),
            tile_height: self.tile.1 * self.mcu.1,
            scale_x: 1.0,
            scale_y: 1.0,
        }
    }

    fn interval_width(&self) -> u32 {
        (self.width.div_ceil(self.mcu.0) / self.per_row) * self.mcu.0
    }

    /// The restart-interval columns and MCU rows of tile `tx`, `ty`.
    fn span(&self, tx: u32, ty: u32) -> SourceResult<(Range<u32>, Range<u32>)> {
        let (kx, ky) = self.tile;
        let (c0, r0) = (tx as u64 * kx as u64, ty as u64 * ky as u64);
        if c0 >= self.per_row as u64 || r0 >= self.rows as u64 {
            return Err(SourceError::corrupt(format!(
                "tile {tx},{ty} is outside the level"
            )));
        }
        let (c0, r0) = (c0 as u32, r0 as u32);
        let cols = c0..(c0 + kx).min(self.per_row);
        let rows = r0..(r0 + ky).min(self.rows);
        Ok((cols, rows))
    }

    /// Where interval `i`'s data ends in the strip (where the next starts; the strip's end
    /// for the last).
    fn end(&self, i: usize) -> u64 {
        self.starts.get(i + 1).copied().unwrap_or(self.length)
    }

    /// The byte ranges of the file (one per MCU row) tile `tx`, `ty` is made from, within
    /// the limit on stored bytes.
    pub(crate) fn ranges(&self, tx: u32, ty: u32) -> SourceResult<Vec<(u64, usize)>> {
        let (cols, rows) = self.span(tx, ty)?;
        let mut total = 0u64;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let first = (r * self.per_row + cols.start) as usize;
            let last = (r * self.per_row + cols.end - 1) as usize;
            let (from, to) = (self.starts[first], self.end(last));
            total += to - from;
            out.push((self.offset + from, (to - from) as usize));
        }
        if total > self.max_stored {
            return Err(SourceError::over_limit(
                format!("NDPI tile {tx},{ty} of {total} stored bytes"),
                total,
                self.max_stored,
            ));
        }
        Ok(out)
    }

    /// The pixels of tile `tx`, `ty` (smaller at the level's right and bottom edges).
    pub(crate) fn tile(&self, bytes: &dyn ByteSource, tx: u32, ty: u32) -> SourceResult<Raster> {
        let (cols, rows) = self.span(tx, ty)?;
        let x0 = cols.start * self.interval_width();
        let y0 = rows.start * self.mcu.1;
        let w = (cols.len() as u32 * self.interval_width()).min(self.width - x0);
        let h = (rows.len() as u32 * self.mcu.1).min(self.height - y0);
        let mut stream = self.header.clone();
        let at = self.frame_size_at;
        stream[at..at + 2].copy_from_slice(&(h as u16).to_be_bytes());
        stream[at + 2..at + 4].copy_from_slice(&(w as u16).to_be_bytes());
        let mut count = 0usize;
        for (r, (pos, len)) in rows.zip(self.ranges(tx, ty)?) {
            let data = bytes.read_at(pos, len)?;
            let from = pos - self.offset;
            for c in cols.clone() {
                let i = (r * self.per_row + c) as usize;
                let part = &data[(self.starts[i] - from) as usize..(self.end(i) - from) as usize];
                if count > 0 {
                    stream.extend_from_slice(&[0xFF, 0xD0 + ((count - 1) % 8) as u8]);
                }
                stream.extend_from_slice(without_marker(part));
                count += 1;
            }
        }
        stream.extend_from_slice(&[0xFF, 0xD9]);
        jpeg::decode(&stream, w, h, self.components)
            .map_err(|e| e.or_at(self.offset + self.starts[0]))
    }
}

/// The virtual tiles of a level whose restart intervals are `interval_width`×`mcu_height`
/// pixels, `per_row` across and `rows` down: as many intervals across and MCU rows down as
/// make about [`TILE_TARGET`] pixels a side (one interval at least), within `bounds`.
fn tile_shape(
    interval_width: u32,
    mcu_height: u32,
    (per_row, rows): (u32, u32),
    samples: u8,
    bounds: Bounds,
) -> SourceResult<(u32, u32)> {
    if interval_width > 0xFFFF {
        return Err(SourceError::unsupported(format!(
            "NDPI restart intervals of {interval_width} pixels (a JPEG is at most 65535 wide)"
        )));
    }
    let across = (TILE_TARGET / interval_width).clamp(1, per_row);
    let pixels = (across * interval_width) as u64;
    let area = TILE_TARGET as u64 * TILE_TARGET as u64;
    let down = (area / (pixels * mcu_height as u64)).clamp(1, rows as u64) as u32;
    let bytes = pixels * (down * mcu_height) as u64 * samples as u64;
    if bytes > bounds.tile_bytes {
        return Err(SourceError::over_limit(
            format!("NDPI restart intervals of {interval_width} pixels are too wide to decode"),
            bytes,
            bounds.tile_bytes,
        ));
    }
    Ok((across, down))
}

/// An interval's data without the marker that ends it (RSTn, or EOI for the last).
fn without_marker(data: &[u8]) -> &[u8] {
    match data {
        [rest @ .., 0xFF, m] if (0xD0..=0xD7).contains(m) || *m == 0xD9 => rest,
        _ => data,
    }
}

/// The frame, MCU size and restart interval of a JPEG header (SOI to the end of SOS,
/// exactly): baseline or extended Huffman coding of 8-bit samples, one scan.
fn parse_header(h: &[u8]) -> SourceResult<Frame> {
    let bad = |what: &str| SourceError::corrupt(format!("NDPI JPEG header: {what}"));
    if !h.starts_with(&[0xFF, 0xD8]) {
        return Err(bad("no SOI"));
    }
    let (mut at, mut frame, mut interval) = (2usize, None, 0u32);
    while at + 4 <= h.len() {
        if h[at] != 0xFF {
            return Err(bad("no marker where one is due"));
        }
        let marker = h[at + 1];
        let len = u16::from_be_bytes([h[at + 2], h[at + 3]]) as usize;
        let Some(segment) = h.get(at + 4..at + 2 + len).filter(|_| len >= 2) else {
            return Err(bad("a segment runs past McuStarts' first entry"));
        };
        match marker {
            0xC0 | 0xC1 => frame = Some(parse_frame(segment, at + 5).ok_or_else(|| bad("SOF"))?),
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                return Err(SourceError::unsupported(
                    "NDPI level in progressive, lossless or arithmetic-coded JPEG",
                ))
            }
            0xDD if segment.len() >= 2 => {
                interval = u16::from_be_bytes([segment[0], segment[1]]) as u32
            }
            0xDA if at + 2 + len == h.len() => {
                let mut f = frame.ok_or_else(|| bad("no SOF before SOS"))?;
                (interval > 0)
                    .then_some(())
                    .ok_or_else(|| bad("no restart interval"))?;
                f.interval = interval;
                return Ok(f);
            }
            0xDA => {
                return Err(bad(
                    "McuStarts' first entry is not where the scan's data starts",
                ))
            }
            _ => {}
        }
        at += 2 + len;
    }
    Err(bad("no SOS before McuStarts' first entry"))
}

/// The frame of an SOF segment (`s`, after its length) found at `size_at - 1` of the
/// header; none when malformed.
fn parse_frame(s: &[u8], size_at: usize) -> Option<Frame> {
    let (&precision, rest) = s.split_first()?;
    let height = u16::from_be_bytes([*rest.first()?, *rest.get(1)?]) as u32;
    let width = u16::from_be_bytes([*rest.get(2)?, *rest.get(3)?]) as u32;
    let components = *rest.get(4)?;
    let comps = rest.get(5..5 + 3 * components as usize)?;
    let sampling = |shift: u32| {
        comps
            .chunks_exact(3)
            .map(|c| ((c[1] >> shift) & 0xF) as u32)
            .max()
    };
    let (h, v) = (sampling(4)?, sampling(0)?);
    let valid = precision == 8
        && matches!(components, 1 | 3)
        && (1..=4).contains(&h)
        && (1..=4).contains(&v);
    valid.then_some(Frame {
        frame_size_at: size_at,
        size: (width, height),
        components,
        mcu: (h * 8, v * 8),
        interval: 0,
    })
}

/// Checks a level's frame against its TIFF tags: the same size (or 0 where the level is
/// past JPEG's limit) and samples.
fn check_frame(f: &Frame, (width, height, samples): (u32, u32, u8)) -> SourceResult<()> {
    let fits = |stored: u32, tagged: u32| stored == tagged || (stored == 0 && tagged > 0xFFFF);
    if !fits(f.size.0, width) || !fits(f.size.1, height) || f.components != samples {
        return Err(SourceError::corrupt(format!(
            "NDPI JPEG of {}x{} pixels and {} components in a level of {width}x{height} and {samples}",
            f.size.0, f.size.1, f.components
        )));
    }
    Ok(())
}

/// Checks McuStarts: one entry per restart interval (`expected`), increasing, inside the
/// strip of `length` bytes.
fn check_starts(starts: &[u64], expected: u64, length: u64) -> SourceResult<()> {
    if starts.len() as u64 != expected {
        return Err(SourceError::corrupt(format!(
            "NDPI McuStarts has {} entries, the level has {expected} restart intervals",
            starts.len()
        )));
    }
    let ordered = starts.windows(2).all(|w| w[0] < w[1]);
    if !ordered || starts.last().is_some_and(|&s| s >= length) {
        return Err(SourceError::corrupt(
            "NDPI McuStarts out of order or past the end of its strip",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(lens: f64, z: i64) -> Directory {
        Directory {
            ndpi: Some(Summary {
                lens,
                offset: (Some(1200), None),
                z,
                pixels_per_cm: Some((20000.0, 25000.0)),
            }),
            ..Directory::default()
        }
    }

    #[test]
    fn levels_by_lens_macro_and_focal_plane_zero() {
        let dirs = [
            dir(5.0, 0),
            dir(20.0, 0),
            dir(20.0, 1200),
            dir(-1.0, 0),
            dir(-2.0, 0),
        ];
        let l = layout(&dirs).expect("ndpi");
        assert_eq!(l.levels, vec![1, 0]);
        assert_eq!(l.associated(Associated::Macro), Some(3));
        assert_eq!(l.associated(Associated::Label), None);
        assert_eq!(l.mpp, Some((0.5, 0.4)));
        let get = |k: &str| l.properties.iter().find(|p| p.0 == k).map(|p| p.1.as_str());
        assert_eq!(get("openslide.objective-power"), Some("20"));
        assert_eq!(get("hamamatsu.XOffsetFromSlideCentre"), Some("1200"));
        assert_eq!(get("hamamatsu.YOffsetFromSlideCentre"), None);
        assert_eq!(get("openslide.mpp-y"), Some("0.4"));
    }

    #[test]
    fn other_files_and_slides_without_levels_have_no_layout() {
        assert!(layout(&[Directory::default()]).is_none());
        assert!(layout(&[dir(-1.0, 0), dir(f64::NAN, 0)]).is_none());
        assert!(layout(&[]).is_none());
    }

    #[test]
    fn intervals_lose_their_closing_marker() {
        assert_eq!(without_marker(&[1, 2, 0xFF, 0xD3]), &[1, 2]);
        assert_eq!(without_marker(&[1, 0xFF, 0xD9]), &[1]);
        assert_eq!(without_marker(&[1, 0xFF, 0x00]), &[1, 0xFF, 0x00]);
        assert_eq!(without_marker(&[]), &[] as &[u8]);
    }

    #[test]
    fn mcu_starts_must_be_one_per_interval_ordered_and_inside() {
        assert!(check_starts(&[10, 20, 30], 3, 40).is_ok());
        assert!(check_starts(&[10, 20], 3, 40).is_err());
        assert!(check_starts(&[10, 30, 20], 3, 40).is_err());
        assert!(check_starts(&[10, 20, 40], 3, 40).is_err());
    }

    #[test]
    fn headers_give_the_frame_mcu_and_interval() {
        // SOI, SOF0 (16x8, 3 components, Y 2x1), DRI 4, SOS
        let mut h = vec![0xFF, 0xD8];
        h.extend([
            0xFF, 0xC0, 0, 17, 8, 0, 8, 0, 16, 3, 1, 0x21, 0, 2, 0x11, 1, 3, 0x11, 1,
        ]);
        h.extend([0xFF, 0xDD, 0, 4, 0, 4]);
        h.extend([0xFF, 0xDA, 0, 12, 3, 1, 0, 2, 0x11, 3, 0x11, 0, 63, 0]);
        let f = parse_header(&h).expect("header");
        assert_eq!(
            (f.size, f.mcu, f.interval, f.components),
            ((16, 8), (16, 8), 4, 3)
        );
        assert_eq!(&h[f.frame_size_at..f.frame_size_at + 4], &[0, 8, 0, 16]);
        assert!(parse_header(&h[..h.len() - 1]).is_err());
        let no_dri: Vec<u8> = [&h[..21], &h[27..]].concat();
        assert!(parse_header(&no_dri).is_err());
        let mut progressive = h.clone();
        progressive[3] = 0xC2;
        assert!(matches!(
            parse_header(&progressive),
            Err(SourceError::Unsupported { .. })
        ));
    }
}
