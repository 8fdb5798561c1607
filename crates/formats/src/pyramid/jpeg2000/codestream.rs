//! The HTJ2K codestream of a master put together from OpenJPH's codestreams of one row of
//! tiles each (`htj2k_encode` explains why): the main header of the first, its SIZ made the
//! whole image's; every tile-part of each, renumbered; TLM marker segments listing them all;
//! the JPH boxes around it for a `.jph` file. [`Jp2Boxes`] also wraps OpenJPEG's raw
//! codestream for a `.jp2` file with an ICC profile, which OpenJPEG does not write.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Tile-parts gathered from the codestreams of rows of tiles.
pub(super) struct Gather {
    /// The main header of the first codestream, with the whole image's SIZ.
    main: Option<Vec<u8>>,
    /// Tile index and length of every tile-part gathered.
    parts: Vec<(u16, u32)>,
    /// The tile-parts, in order, in a file of their own.
    body: BufWriter<File>,
}

/// An `InvalidData` error: a codestream that is not as OpenJPH writes them.
fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

impl Gather {
    /// Gathers into the file at `body` (created).
    pub(super) fn new(body: &Path) -> std::io::Result<Gather> {
        Ok(Gather {
            main: None,
            parts: Vec::new(),
            body: BufWriter::with_capacity(1 << 20, File::create(body)?),
        })
    }

    /// Adds the tile-parts of the codestream at `path`, the row of tiles whose first tile
    /// is `first` in an image `height` rows high.
    pub(super) fn add(&mut self, path: &Path, first: u32, height: u32) -> std::io::Result<()> {
        let mut r = BufReader::new(File::open(path)?);
        let len = r.get_ref().metadata()?.len();
        let main = main_header(&mut r)?;
        let mut at = main.len() as u64;
        let parts = tile_parts(&mut r, at, len)?;
        if self.main.is_none() {
            self.main = Some(whole_image(main, height)?);
        }
        let mut part = Vec::new();
        for (index, length) in parts {
            let index = u16::try_from(first + index as u32)
                .ok()
                .filter(|&i| i < u16::MAX)
                .ok_or_else(|| bad("more than 65535 tiles: use a larger --tile"))?;
            part.resize(length as usize, 0);
            r.seek(SeekFrom::Start(at))?;
            r.read_exact(&mut part)?;
            part[4..6].copy_from_slice(&index.to_be_bytes());
            self.body.write_all(&part)?;
            self.parts.push((index, length));
            at += length as u64;
        }
        Ok(())
    }

    /// Writes the codestream to `out`, in the JPH boxes when `boxes` says so: the main
    /// header, the TLM segments, the tile-parts copied from the file at `body`, EOC.
    pub(super) fn finish(
        self,
        body: &Path,
        out: &Path,
        boxes: Option<Jp2Boxes>,
    ) -> std::io::Result<()> {
        let main = self.main.ok_or_else(|| bad("no rows were encoded"))?;
        self.body
            .into_inner()
            .map_err(|e| e.into_error())?
            .sync_all()?;
        let tlm = tlm_segments(&self.parts);
        let mut r = File::open(body)?;
        let tiles = r.metadata()?.len();
        let mut w = BufWriter::with_capacity(1 << 20, File::create(out)?);
        if let Some(header) = boxes {
            let len = main.len() as u64 + tlm.len() as u64 + tiles + 2;
            w.write_all(&header.bytes(len))?;
        }
        w.write_all(&main)?;
        w.write_all(&tlm)?;
        std::io::copy(&mut r, &mut w)?;
        w.write_all(&[0xff, 0xd9])?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()
    }
}

/// `main` (a main header whose SIZ follows SOC) describing the whole image, `height` rows
/// from the origin: Ysiz the height, the image and tile offsets YOsiz and YTOsiz 0.
fn whole_image(mut main: Vec<u8>, height: u32) -> std::io::Result<Vec<u8>> {
    if main.len() < 40 || main[2..4] != [0xff, 0x51] {
        return Err(bad("the main header does not start with SIZ"));
    }
    main[12..16].copy_from_slice(&height.to_be_bytes());
    main[20..24].copy_from_slice(&[0; 4]);
    main[36..40].copy_from_slice(&[0; 4]);
    Ok(main)
}

/// The boxes of a JP2 family file before its codestream (JPH for HTJ2K, JP2 for Part 1):
/// what they say of the image.
#[derive(Debug, Clone)]
pub(super) struct Jp2Boxes {
    /// The file type's brand: `jph ` or `jp2 `.
    pub(super) brand: [u8; 4],
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) channels: u8,
    pub(super) bits: u16,
    /// The ICC profile (a restricted or any ICC colour specification); sRGB or greyscale
    /// is declared without one.
    pub(super) icc: Option<Vec<u8>>,
}

impl Jp2Boxes {
    /// The signature, file type and header boxes, and the codestream box's own header
    /// for a codestream of `len` bytes.
    fn bytes(&self, len: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(96);
        out.extend_from_slice(b"\0\0\0\x0cjP  \r\n\x87\n");
        // File type: the brand, minor version 0, the brand as the one compatible.
        out.extend_from_slice(b"\0\0\0\x14ftyp");
        out.extend_from_slice(&self.brand);
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&self.brand);
        let colr = self.colr();
        out.extend_from_slice(&(8 + 22 + colr.len() as u32).to_be_bytes());
        out.extend_from_slice(b"jp2h\0\0\0\x16ihdr");
        out.extend_from_slice(&self.height.to_be_bytes());
        out.extend_from_slice(&self.width.to_be_bytes());
        out.extend_from_slice(&(self.channels as u16).to_be_bytes());
        // Bits per component − 1; compression type 7 (JPEG2000); colour known; no IPR.
        out.extend_from_slice(&[(self.bits - 1) as u8, 7, 0, 0]);
        out.extend_from_slice(&colr);
        match u32::try_from(len + 8) {
            Ok(size) => out.extend_from_slice(&size.to_be_bytes()),
            Err(_) => out.extend_from_slice(&1u32.to_be_bytes()),
        }
        out.extend_from_slice(b"jp2c");
        if len + 8 > u32::MAX as u64 {
            out.extend_from_slice(&(len + 16).to_be_bytes());
        }
        out
    }

    /// Writes the file at `out`: these boxes, then the codestream in the file at
    /// `codestream`.
    pub(super) fn wrap(&self, codestream: &Path, out: &Path) -> std::io::Result<()> {
        let mut r = File::open(codestream)?;
        let len = r.metadata()?.len();
        let mut w = BufWriter::with_capacity(1 << 20, File::create(out)?);
        w.write_all(&self.bytes(len))?;
        std::io::copy(&mut r, &mut w)?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()
    }

    /// The colour specification box: the ICC profile (method 2) or the enumerated colour
    /// space (method 1: 16 sRGB, 17 greyscale).
    fn colr(&self) -> Vec<u8> {
        let mut body = Vec::new();
        match &self.icc {
            Some(icc) => {
                body.extend_from_slice(&[2, 0, 0]);
                body.extend_from_slice(icc);
            }
            None => {
                let space: u32 = if self.channels == 3 { 16 } else { 17 };
                body.extend_from_slice(&[1, 0, 0]);
                body.extend_from_slice(&space.to_be_bytes());
            }
        }
        let mut colr = (8 + body.len() as u32).to_be_bytes().to_vec();
        colr.extend_from_slice(b"colr");
        colr.extend_from_slice(&body);
        colr
    }
}

/// Whether an ICC profile is one JPEG2000's "restricted ICC" colour specification
/// (method 2, ISO/IEC 15444-1 I.5.3.3) may hold for an image of `channels` components: an
/// input or display profile, grey with a grey TRC for one component, RGB with the three
/// colorants and TRCs of a matrix profile for three. Other profiles would make the file
/// non-conforming; they are left out.
pub(super) fn restricted_icc(icc: &[u8], channels: u8) -> bool {
    let field = |at: usize| icc.get(at..at + 4);
    let class_ok = matches!(field(12), Some(b"scnr" | b"mntr"));
    let needed: &[&[u8; 4]] = match (field(16), channels) {
        (Some(b"GRAY"), 1) => &[b"kTRC"],
        (Some(b"RGB "), 3) => &[b"rXYZ", b"gXYZ", b"bXYZ", b"rTRC", b"gTRC", b"bTRC"],
        _ => return false,
    };
    let count = field(128).map_or(0, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    let tags: Vec<&[u8]> = (0..count.min(1024) as usize)
        .map_while(|i| icc.get(132 + 12 * i..136 + 12 * i))
        .collect();
    class_ok && needed.iter().all(|t| tags.contains(&&t[..]))
}

/// The main header of a codestream: SOC and every marker segment before the first SOT.
fn main_header(r: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut main = vec![0; 2];
    r.read_exact(&mut main)?;
    if main != [0xff, 0x4f] {
        return Err(bad("the codestream does not start with SOC"));
    }
    loop {
        let mut head = [0; 4];
        r.read_exact(&mut head)?;
        if head[..2] == [0xff, 0x90] {
            return Ok(main);
        }
        let body = u16::from_be_bytes([head[2], head[3]]) as usize;
        if head[0] != 0xff || body < 2 {
            return Err(bad("a main header marker segment is malformed"));
        }
        main.extend_from_slice(&head);
        let at = main.len();
        main.resize(at + body - 2, 0);
        r.read_exact(&mut main[at..])?;
    }
}

/// The tile index and length of every tile-part, from `from` to `len` (the EOC marker).
fn tile_parts(r: &mut (impl Read + Seek), from: u64, len: u64) -> std::io::Result<Vec<(u16, u32)>> {
    let mut parts = Vec::new();
    let mut at = from;
    while at + 12 <= len {
        r.seek(SeekFrom::Start(at))?;
        let mut sot = [0; 12];
        r.read_exact(&mut sot)?;
        if sot[..2] != [0xff, 0x90] {
            break;
        }
        let index = u16::from_be_bytes([sot[4], sot[5]]);
        let mut psot = u32::from_be_bytes([sot[6], sot[7], sot[8], sot[9]]) as u64;
        if psot == 0 {
            psot = len.saturating_sub(2 + at);
        }
        if psot < 12 {
            return Err(bad("a tile-part length is smaller than its header"));
        }
        parts.push((index, psot as u32));
        at += psot;
    }
    Ok(parts)
}

/// Tile-part entries in one TLM marker segment at most (its length field is 16 bits).
const TLM_ENTRIES: usize = (u16::MAX as usize - 4) / 6;

/// TLM marker segments listing `parts`: Stlm 0x60 (16-bit tile index, 32-bit length).
fn tlm_segments(parts: &[(u16, u32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.len() * 6 + 8);
    for (z, chunk) in parts.chunks(TLM_ENTRIES).enumerate() {
        out.extend_from_slice(&[0xff, 0x55]);
        out.extend_from_slice(&((4 + 6 * chunk.len()) as u16).to_be_bytes());
        out.extend_from_slice(&[z as u8, 0x60]);
        for (index, length) in chunk {
            out.extend_from_slice(&index.to_be_bytes());
            out.extend_from_slice(&length.to_be_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ICC profile header of `class` and colour `space` with a tag table of `tags`.
    fn profile(class: &[u8; 4], space: &[u8; 4], tags: &[&[u8; 4]]) -> Vec<u8> {
        let mut p = vec![0; 128];
        p[12..16].copy_from_slice(class);
        p[16..20].copy_from_slice(space);
        p.extend((tags.len() as u32).to_be_bytes());
        for t in tags {
            p.extend_from_slice(*t);
            p.extend([0; 8]);
        }
        p
    }

    #[test]
    fn only_profiles_a_restricted_icc_holds_are_kept() {
        let matrix: &[&[u8; 4]] = &[
            b"desc", b"rXYZ", b"gXYZ", b"bXYZ", b"rTRC", b"gTRC", b"bTRC",
        ];
        assert!(restricted_icc(&profile(b"mntr", b"RGB ", matrix), 3));
        assert!(restricted_icc(&profile(b"scnr", b"RGB ", matrix), 3));
        assert!(restricted_icc(&profile(b"mntr", b"GRAY", &[b"kTRC"]), 1));
        // An output profile, a LUT-only RGB profile, a profile of the wrong colour space,
        // a table cut short.
        assert!(!restricted_icc(&profile(b"prtr", b"RGB ", matrix), 3));
        assert!(!restricted_icc(
            &profile(b"mntr", b"RGB ", &[b"A2B0", b"B2A0"]),
            3
        ));
        assert!(!restricted_icc(&profile(b"mntr", b"RGB ", matrix), 1));
        assert!(!restricted_icc(&profile(b"mntr", b"CMYK", matrix), 3));
        let cut = profile(b"mntr", b"RGB ", matrix);
        assert!(!restricted_icc(&cut[..140], 3));
        assert!(!restricted_icc(b"short", 3));
    }

    #[test]
    fn tlm_lists_every_tile_part_and_splits_at_its_length_limit() {
        let parts: Vec<(u16, u32)> = (0..TLM_ENTRIES as u16 + 2).map(|i| (i, 100)).collect();
        let tlm = tlm_segments(&parts);
        assert_eq!(tlm.len(), 2 * 6 + parts.len() * 6);
        assert_eq!(&tlm[..2], &[0xff, 0x55]);
        let first = u16::from_be_bytes([tlm[2], tlm[3]]) as usize;
        assert_eq!(first, 4 + 6 * TLM_ENTRIES);
        assert_eq!(&tlm[4..6], &[0, 0x60]);
        let second = &tlm[2 + first..];
        assert_eq!(&second[..6], &[0xff, 0x55, 0, 16, 1, 0x60]);
        assert_eq!(
            &second[6..12],
            &[((TLM_ENTRIES) >> 8) as u8, TLM_ENTRIES as u8, 0, 0, 0, 100]
        );
    }

    #[test]
    fn the_main_header_and_tile_parts_are_found_and_a_bad_start_refused() {
        let mut cs = vec![0xff, 0x4f, 0xff, 0x51, 0, 4, 9, 9];
        for (i, psot) in [(0u16, 14u32), (1, 0)] {
            cs.extend_from_slice(&[0xff, 0x90, 0, 10]);
            cs.extend_from_slice(&i.to_be_bytes());
            cs.extend_from_slice(&psot.to_be_bytes());
            cs.extend_from_slice(&[0, 1, 7, 7]);
        }
        cs.extend_from_slice(&[0xff, 0xd9]);
        let mut r = std::io::Cursor::new(cs.clone());
        let main = main_header(&mut r).expect("main header");
        assert_eq!(main, cs[..8]);
        let parts = tile_parts(&mut r, 8, cs.len() as u64).expect("parts");
        assert_eq!(parts, vec![(0, 14), (1, 14)]);
        let bad = main_header(&mut std::io::Cursor::new(vec![0xff, 0xd8, 0, 0]));
        assert!(bad.is_err());
    }
}
