//! JPEG2000 and HTJ2K masters for `iipsrv convert`: the input is read in bands of one row
//! of codestream tiles ([`super::input`]) and each band is handed to the encoder, OpenJPEG
//! ([`crate::codec::openjpeg_encode`]) for JPEG2000 Part 1 or OpenJPH
//! ([`crate::codec::htj2k_encode`]) for HTJ2K, so memory stays near one row of tiles.
//!
//! The layout is the one the IIIF HTJ2K study found fastest for tile access: codestream
//! tiles (512 px unless told), RPCL progression, enough decomposition levels that the
//! smallest resolution fits in one tile, and TLM markers (tile-part lengths, written by
//! OpenJPEG, added here after OpenJPH, whose 0.9 cannot), with PLT markers too from
//! OpenJPEG. HTJ2K `.jph` files are wrapped in the JPH boxes (ISO/IEC 15444-15 Annex D);
//! `.j2c` files are the raw codestream.

use super::error::{BuildError, InputError, Layout, OutputStep};
use super::input::Input;
use super::{check_tile, partial_path, FromBand, Progress};
use crate::codec::{htj2k_encode, openjpeg_encode};
use iipsrv_core::raster::Pixels;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// The codec of a master and its loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Codec {
    /// JPEG2000 Part 1 through OpenJPEG: lossless (reversible 5/3) without a rate, else
    /// the irreversible 9/7 wavelet at this compression ratio (e.g. 20 for 20:1).
    Jpeg2000 {
        /// Compression ratio.
        rate: Option<f32>,
    },
    /// HTJ2K through OpenJPH: lossless without a step, else the irreversible 9/7 wavelet
    /// with this quantisation step (e.g. 0.005; smaller keeps more).
    Htj2k {
        /// Quantisation step.
        qstep: Option<f32>,
    },
}

/// How a master is written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MasterOptions {
    /// Codestream tile width and height: a multiple of 16 from 16 to 4096.
    pub tile: u32,
    /// The codec.
    pub codec: Codec,
    /// Boxes around the codestream (JP2 or JPH) or the raw codestream.
    pub boxed: bool,
}

/// Writes a JPEG2000 or HTJ2K master of the image at `input` to `output` as `options`
/// say: through `OUTPUT.partial`, renamed into place when complete; on an error nothing
/// is left behind. Images with alpha are refused (masters hold grey or RGB).
pub fn build_master(
    input: &Path,
    output: &Path,
    options: &MasterOptions,
    progress: &dyn Progress,
) -> Result<(), BuildError> {
    check_tile(options.tile)?;
    let mut source = Input::open(input)?;
    if source.channels.is_multiple_of(2) {
        let layout = Layout::Alpha {
            channels: source.channels,
        };
        return Err(BuildError::unsupported(input, layout));
    }
    let partial = partial_path(output);
    let raw = partial_path(&partial);
    let job = Master {
        input,
        options,
        progress,
        levels: levels(source.width, source.height, options.tile),
    };
    let built = match options.codec {
        Codec::Jpeg2000 { rate } => job.openjpeg(&mut source, &partial, rate),
        Codec::Htj2k { qstep } => job
            .openjph(&mut source, &raw, qstep)
            .and_then(|()| with_tlm(&raw, &partial, job.boxes(&source))),
    };
    let _ = std::fs::remove_file(&raw);
    match built {
        Ok(()) => std::fs::rename(&partial, output)
            .map_err(|e| BuildError::output(&partial, OutputStep::Rename, e)),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// Decomposition levels that bring the larger side within one tile, at most log2(tile)
/// (OpenJPEG's limit for a tile's resolutions).
fn levels(width: u32, height: u32, tile: u32) -> u32 {
    let side = width.max(height) as u64;
    let mut n = 0;
    while side.div_ceil(1 << n) > tile as u64 && n < tile.ilog2() {
        n += 1;
    }
    n
}

/// One master being written.
struct Master<'a> {
    input: &'a Path,
    options: &'a MasterOptions,
    progress: &'a dyn Progress,
    levels: u32,
}

impl Master<'_> {
    /// JPEG2000 through OpenJPEG, one row of tiles at a time.
    fn openjpeg(
        &self,
        source: &mut Input,
        path: &Path,
        rate: Option<f32>,
    ) -> Result<(), BuildError> {
        let layout = openjpeg_encode::Layout {
            width: source.width,
            height: source.height,
            channels: source.channels,
            bits: source.bits,
            tile: self.options.tile,
            levels: self.levels,
            rate,
            jp2: self.options.boxed,
        };
        let mut encoder = openjpeg_encode::Encoder::create(path, layout)?;
        if source.bits == 16 {
            self.rows::<u16>(source, |p| Ok(encoder.push_row(p)?))?;
        } else {
            self.rows::<u8>(source, |p| Ok(encoder.push_row(p)?))?;
        }
        encoder.finish()?;
        Ok(())
    }

    /// An HTJ2K codestream through OpenJPH, written to `path`.
    fn openjph(
        &self,
        source: &mut Input,
        path: &Path,
        qstep: Option<f32>,
    ) -> Result<(), BuildError> {
        let layout = htj2k_encode::Layout {
            width: source.width,
            height: source.height,
            channels: source.channels as u32,
            bits: source.bits as u32,
            tile: self.options.tile,
            levels: self.levels,
            qstep: qstep.unwrap_or(0.0),
        };
        let mut encoder = htj2k_encode::Encoder::create(path, layout)?;
        if source.bits == 16 {
            self.rows::<u16>(source, |p| Ok(encoder.push(p)?))?;
        } else {
            self.rows::<u8>(source, |p| Ok(encoder.push(p)?))?;
        }
        encoder.finish()?;
        Ok(())
    }

    /// Hands the input to `take` in bands of one row of tiles, top to bottom.
    fn rows<T: FromBand>(
        &self,
        source: &mut Input,
        mut take: impl FnMut(&Pixels<T>) -> Result<(), BuildError>,
    ) -> Result<(), BuildError> {
        let tile = self.options.tile;
        self.progress.start(source.height as u64);
        let mut y = 0;
        while y < source.height {
            let rows = tile.min(source.height - y);
            let band = source.read(y, rows).map_err(|cause| self.unread(cause))?;
            let pixels = T::from_band(band, false);
            if pixels.width != source.width || pixels.height != rows {
                let cause = InputError::malformed("the input gave rows of the wrong size");
                return Err(self.unread(cause));
            }
            take(&pixels)?;
            y += rows;
            self.progress.advance(rows as u64);
        }
        self.progress.done();
        Ok(())
    }

    /// [`BuildError::Read`] of the input.
    fn unread(&self, cause: InputError) -> BuildError {
        BuildError::Read {
            path: self.input.to_owned(),
            cause,
        }
    }

    /// The JPH boxes before the codestream of a `.jph` file; none for `.j2c`.
    fn boxes(&self, source: &Input) -> Option<JphHeader> {
        self.options.boxed.then_some(JphHeader {
            width: source.width,
            height: source.height,
            channels: source.channels,
            bits: source.bits,
        })
    }
}

/// What the JPH header boxes say of the image.
#[derive(Debug, Clone, Copy)]
struct JphHeader {
    width: u32,
    height: u32,
    channels: u8,
    bits: u16,
}

impl JphHeader {
    /// The signature, file type and header boxes, and the codestream box's own header
    /// for a codestream of `len` bytes.
    fn bytes(&self, len: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(96);
        out.extend_from_slice(b"\0\0\0\x0cjP  \r\n\x87\n");
        out.extend_from_slice(b"\0\0\0\x14ftypjph \0\0\0\0jph ");
        out.extend_from_slice(b"\0\0\0\x2djp2h\0\0\0\x16ihdr");
        out.extend_from_slice(&self.height.to_be_bytes());
        out.extend_from_slice(&self.width.to_be_bytes());
        out.extend_from_slice(&(self.channels as u16).to_be_bytes());
        // Bits per component − 1; compression type 7 (JPEG2000); colour known; no IPR.
        out.extend_from_slice(&[(self.bits - 1) as u8, 7, 0, 0]);
        // Enumerated colour space: 16 sRGB, 17 greyscale.
        let space: u32 = if self.channels == 3 { 16 } else { 17 };
        out.extend_from_slice(b"\0\0\0\x0fcolr\x01\0\0");
        out.extend_from_slice(&space.to_be_bytes());
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
}

/// Copies the codestream at `raw` to `out` with TLM marker segments after its main header
/// (one entry per tile-part: 16-bit tile index, 32-bit length), in the JPH boxes when
/// `boxes` says so.
fn with_tlm(raw: &Path, out: &Path, boxes: Option<JphHeader>) -> Result<(), BuildError> {
    let failed = |e| BuildError::output(out, OutputStep::Write, e);
    let mut r = BufReader::new(File::open(raw).map_err(failed)?);
    let len = r.get_ref().metadata().map_err(failed)?.len();
    let main = main_header(&mut r).map_err(failed)?;
    let parts = tile_parts(&mut r, main.len() as u64, len).map_err(failed)?;
    let tlm = tlm_segments(&parts);
    let file = File::create(out).map_err(|e| BuildError::output(out, OutputStep::Create, e))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let write = |w: &mut BufWriter<File>, r: &mut BufReader<File>| -> std::io::Result<()> {
        if let Some(header) = boxes {
            w.write_all(&header.bytes(len + tlm.len() as u64))?;
        }
        w.write_all(&main)?;
        w.write_all(&tlm)?;
        r.seek(SeekFrom::Start(main.len() as u64))?;
        std::io::copy(r, w)?;
        w.flush()?;
        w.get_ref().sync_all()
    };
    write(&mut w, &mut r).map_err(failed)
}

/// The main header of a codestream: SOC and every marker segment before the first SOT.
fn main_header(r: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
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
            let e = "a tile-part length is smaller than its header";
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e));
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

    #[test]
    fn levels_bring_the_larger_side_within_a_tile() {
        assert_eq!(levels(1500, 1100, 512), 2);
        assert_eq!(levels(512, 300, 512), 0);
        assert_eq!(levels(513, 300, 512), 1);
        assert_eq!(levels(100_000, 80_000, 512), 8);
        // OpenJPEG allows at most log2(tile) levels in a tile.
        assert_eq!(levels(4_000_000, 10, 16), 4);
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

    #[cfg(not(feature = "htj2k"))]
    #[test]
    fn without_openjph_htj2k_says_so() {
        let dir = tempfile::tempdir().expect("dir");
        let png = dir.path().join("a.png");
        let raster = iipsrv_core::raster::Raster::filled(32, 32, 3, 9);
        let bytes = crate::codec::png::encode(&raster, 1, Default::default()).expect("png");
        std::fs::write(&png, bytes).expect("write");
        let options = MasterOptions {
            tile: 512,
            codec: Codec::Htj2k { qstep: None },
            boxed: true,
        };
        let out = dir.path().join("a.jph");
        let e = build_master(&png, &out, &options, &super::super::Quiet).expect_err("no HTJ2K");
        assert!(e.to_string().contains("without HTJ2K"), "{e}");
        assert!(!out.exists());
    }
}
