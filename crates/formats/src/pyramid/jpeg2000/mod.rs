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

mod codestream;

use super::error::{BuildError, InputError, Layout, OutputStep};
use super::input::Input;
use super::{check_tile, partial_path, settle, FromBand, Progress};
use crate::codec::{htj2k_encode, openjpeg_encode};
use codestream::{restricted_icc, Gather, Jp2Boxes};
use iipsrv_core::raster::Pixels;
use std::path::{Path, PathBuf};

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
    let scratch = [
        with_suffix(&partial, ".row"),
        with_suffix(&partial, ".tiles"),
    ];
    let job = Master {
        input,
        options,
        progress,
        levels: levels(source.width, source.height, options.tile),
    };
    let built = match options.codec {
        Codec::Jpeg2000 { rate } => job.openjpeg(&mut source, &partial, &scratch[1], rate),
        Codec::Htj2k { qstep } => job.openjph(&mut source, &partial, &scratch, qstep),
    };
    for path in &scratch {
        let _ = std::fs::remove_file(path);
    }
    settle(built, &partial, output)
}

/// `path` with `suffix` added to its name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
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
    /// JPEG2000 through OpenJPEG, one row of tiles at a time. OpenJPEG writes the JP2
    /// boxes itself but cannot declare an ICC profile, so a `.jp2` of an input with one is
    /// a raw codestream (at `scratch`) put in our boxes afterwards.
    fn openjpeg(
        &self,
        source: &mut Input,
        path: &Path,
        scratch: &Path,
        rate: Option<f32>,
    ) -> Result<(), BuildError> {
        let wrapped = self.boxes(source, b"jp2 ").filter(|b| b.icc.is_some());
        let codestream = if wrapped.is_some() { scratch } else { path };
        let layout = openjpeg_encode::Layout {
            width: source.width,
            height: source.height,
            channels: source.channels,
            bits: source.bits,
            tile: self.options.tile,
            levels: self.levels,
            rate,
            jp2: self.options.boxed && wrapped.is_none(),
        };
        let mut encoder = openjpeg_encode::Encoder::create(codestream, layout)?;
        if source.bits == 16 {
            self.rows::<u16>(source, |p| Ok(encoder.push_row(p)?))?;
        } else {
            self.rows::<u8>(source, |p| Ok(encoder.push_row(p)?))?;
        }
        encoder.finish()?;
        match wrapped {
            Some(boxes) => boxes
                .wrap(scratch, path)
                .map_err(|e| BuildError::output(path, OutputStep::Write, e)),
            None => Ok(()),
        }
    }

    /// HTJ2K through OpenJPH, one codestream per row of tiles (written to `scratch[0]`),
    /// gathered into `scratch[1]` and then into the master at `path`.
    fn openjph(
        &self,
        source: &mut Input,
        path: &Path,
        scratch: &[PathBuf; 2],
        qstep: Option<f32>,
    ) -> Result<(), BuildError> {
        let failed = |e| BuildError::output(path, OutputStep::Write, e);
        let mut gather = Gather::new(&scratch[1]).map_err(failed)?;
        let (width, height) = (source.width, source.height);
        let tile = self.options.tile;
        let mut layout = htj2k_encode::Layout {
            width,
            height: 0,
            top: 0,
            channels: source.channels as u32,
            bits: source.bits as u32,
            tile,
            levels: self.levels,
            qstep: qstep.unwrap_or(0.0),
        };
        let mut row = |pixels: &dyn RowPixels| -> Result<(), BuildError> {
            layout.height = pixels.height();
            let mut encoder = htj2k_encode::Encoder::create(&scratch[0], layout)?;
            pixels.push_to(&mut encoder)?;
            encoder.finish()?;
            let first = layout.top / tile * width.div_ceil(tile);
            gather.add(&scratch[0], first, height).map_err(failed)?;
            layout.top += layout.height;
            Ok(())
        };
        if source.bits == 16 {
            self.rows::<u16>(source, |p| row(p))?;
        } else {
            self.rows::<u8>(source, |p| row(p))?;
        }
        let boxes = self.boxes(source, b"jph ");
        gather.finish(&scratch[1], path, boxes).map_err(failed)
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

    /// The boxes before the codestream of a `.jph` or `.jp2` file (`brand`), with the
    /// input's ICC profile; none for a raw codestream.
    fn boxes(&self, source: &Input, brand: &[u8; 4]) -> Option<Jp2Boxes> {
        self.options.boxed.then(|| Jp2Boxes {
            brand: *brand,
            width: source.width,
            height: source.height,
            channels: source.channels,
            bits: source.bits,
            icc: source
                .icc
                .clone()
                .filter(|icc| restricted_icc(icc, source.channels)),
        })
    }
}

/// Rows of 8 or 16-bit samples for the HTJ2K encoder.
trait RowPixels {
    /// Rows held.
    fn height(&self) -> u32;
    /// Encodes them.
    fn push_to(&self, encoder: &mut htj2k_encode::Encoder) -> Result<(), BuildError>;
}

impl<T: Copy> RowPixels for Pixels<T> {
    fn height(&self) -> u32 {
        self.height
    }

    fn push_to(&self, encoder: &mut htj2k_encode::Encoder) -> Result<(), BuildError> {
        Ok(encoder.push(self)?)
    }
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
