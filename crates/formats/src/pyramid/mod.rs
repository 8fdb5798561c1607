//! Building a tiled pyramidal TIFF from a JPEG, PNG or TIFF (striped or tiled, 8 or
//! 16-bit), streaming: the input is read in bands of rows ([`input`]), every level of the
//! pyramid is built at once from them ([`level`]) and written in one pass
//! ([`crate::codec::tiff_writer::TiffSink`]), so memory stays near three bands of 16 MB
//! plus two rows of tiles per level, whatever the image height. `iipsrv convert` and the
//! server's pyramid cache (flat images built on first use) both build with [`build`].
//!
//! The encoders run on the current rayon pool: a caller that must leave cores free (the
//! server) builds inside a smaller pool of its own.

pub mod error;
pub(crate) mod input;
pub mod jpeg2000;
pub(crate) mod level;

use crate::bytes::ByteSource;
use crate::codec::tiff_writer::TiffSink;
use error::{BuildError, InputError, OutputStep};
use input::{Band, Input};
pub use level::Compression;
use level::{lossless, Level, Sample};
use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bytes of input rows read at once (rounded to whole rows of tiles).
const BAND_BYTES: u64 = 16 << 20;

/// Most bytes one row of tiles of the full-resolution level may take (it is held while
/// it fills, 16-bit samples counted): an image wider than that is refused, not allocated.
const MAX_ROW_BYTES: u64 = 1 << 30;

/// How a pyramid is written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Tile width and height in pixels: a multiple of 16 from 16 to 4096.
    pub tile: u32,
    /// Tile compression; JPEG and WebP store 8 bits per sample (16-bit input is reduced),
    /// the others keep 16-bit samples.
    pub compression: Compression,
    /// The compression of images the main one would lose something of (16-bit samples or
    /// alpha with JPEG or WebP): None keeps the main one and loses it.
    pub fallback: Option<Compression>,
    /// Write BigTIFF (needed above 4 GB).
    pub bigtiff: bool,
}

/// Told how far a build has come, in rows of the full-resolution input.
pub trait Progress: Sync {
    /// The build starts: `rows` rows to read.
    fn start(&self, rows: u64);
    /// `rows` more rows are in the pyramid.
    fn advance(&self, rows: u64);
    /// The pyramid is written.
    fn done(&self) {}
}

/// A [`Progress`] that is told nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: u64) {}
    fn advance(&self, _: u64) {}
}

/// Builds the pyramid of the image at `input` into `output` as `options` say: written to
/// `OUTPUT.partial` first and renamed into place when complete, so that no reader ever
/// sees half a file; on an error nothing is left behind.
pub fn build(
    input: &Path,
    output: &Path,
    options: &Options,
    progress: &dyn Progress,
) -> Result<(), BuildError> {
    check_tile(options.tile)?;
    build_from(Input::open(input)?, input, output, options, progress)
}

/// [`build`] from the image in `bytes` (a file or an object), named `name` in errors.
pub fn build_bytes(
    bytes: Arc<dyn ByteSource>,
    name: &Path,
    output: &Path,
    options: &Options,
    progress: &dyn Progress,
) -> Result<(), BuildError> {
    check_tile(options.tile)?;
    build_from(
        Input::open_bytes(bytes, name)?,
        name,
        output,
        options,
        progress,
    )
}

/// Refuses a tile size that is not a multiple of 16 from 16 to 4096.
fn check_tile(tile: u32) -> Result<(), BuildError> {
    if !(16..=4096).contains(&tile) || !tile.is_multiple_of(16) {
        return Err(BuildError::Tile { tile });
    }
    Ok(())
}

/// [`build`] from an open input.
fn build_from(
    mut source: Input,
    input: &Path,
    output: &Path,
    options: &Options,
    progress: &dyn Progress,
) -> Result<(), BuildError> {
    if matches!(options.compression, Compression::Webp(_)) && source.channels < 3 {
        return Err(BuildError::WebpGrey {
            channels: source.channels,
        });
    }
    let row_bytes = source.width as u64 * options.tile as u64 * source.channels as u64 * 2;
    if row_bytes > MAX_ROW_BYTES {
        let layout = error::Layout::TooWide {
            width: source.width,
            max: (MAX_ROW_BYTES / (options.tile as u64 * source.channels as u64 * 2)) as u32,
        };
        return Err(BuildError::unsupported(input, layout));
    }
    let keeps_all =
        lossless(options.compression) || (source.bits == 8 && !source.channels.is_multiple_of(2));
    let options = &match options.fallback {
        Some(fallback) if !keeps_all => Options {
            compression: fallback,
            ..*options
        },
        _ => *options,
    };
    let job = Job {
        input,
        options,
        progress,
    };
    let partial = partial_path(output);
    let built = if source.bits == 16 && lossless(options.compression) {
        job.write::<u16>(&mut source, &partial)
    } else {
        job.write::<u8>(&mut source, &partial)
    };
    settle(built, &partial, output)
}

/// The end of a build that wrote `partial`: renamed to `output` when `built` is Ok,
/// removed otherwise.
pub(crate) fn settle(
    built: Result<(), BuildError>,
    partial: &Path,
    output: &Path,
) -> Result<(), BuildError> {
    match built {
        Ok(()) => std::fs::rename(partial, output)
            .map_err(|e| BuildError::output(partial, OutputStep::Rename, e)),
        Err(e) => {
            let _ = std::fs::remove_file(partial);
            Err(e)
        }
    }
}

/// `OUTPUT.partial`, where the output is written until it is complete.
pub fn partial_path(output: &Path) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// One build: its input's path (for errors), options and progress.
struct Job<'a> {
    input: &'a Path,
    options: &'a Options,
    progress: &'a dyn Progress,
}

impl Job<'_> {
    /// Reads the input band by band into the pyramid and writes the TIFF at `path`.
    fn write<T: Sample + FromBand>(
        &self,
        input: &mut Input,
        path: &Path,
    ) -> Result<(), BuildError> {
        let compression = self.options.compression;
        // JPEG tiles hold no alpha: it is dropped.
        let drop_alpha =
            matches!(compression, Compression::Jpeg(_)) && input.channels.is_multiple_of(2);
        let channels = input.channels - u8::from(drop_alpha);
        let (icc, xmp) = (input.icc.clone(), input.xmp.clone());
        let file =
            File::create(path).map_err(|e| BuildError::output(path, OutputStep::Create, e))?;
        let mut sink = TiffSink::new(
            BufWriter::with_capacity(1 << 20, file),
            self.options.bigtiff,
        )
        .map_err(|e| BuildError::output(path, OutputStep::Start, e))?;
        let tile = self.options.tile;
        let mut top = Level::<T>::new(input.width, input.height, channels, tile, compression);
        self.progress.start(input.height as u64);
        self.stream(input, drop_alpha, &mut top, &mut sink)?;
        if !top.complete() {
            return Err(self.unread("the input ended before its last row"));
        }
        let mut directories = Vec::new();
        let extra = crate::codec::Embedded {
            icc: icc.as_deref(),
            xmp: xmp.as_deref(),
        };
        top.directories(extra, &mut directories);
        sink.finish(directories)?
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|file| file.sync_all())
            .map_err(|e| BuildError::output(path, OutputStep::Finish, e))?;
        self.progress.done();
        Ok(())
    }

    /// Pushes every band of the input into the pyramid `top`, which writes its tiles to
    /// `sink`: one thread decodes the next band while this one builds and encodes the
    /// pyramid.
    fn stream<T: Sample + FromBand, W: Write + Seek>(
        &self,
        input: &mut Input,
        drop_alpha: bool,
        top: &mut Level<T>,
        sink: &mut TiffSink<W>,
    ) -> Result<(), BuildError> {
        let row_bytes = input.width as u64 * input.channels as u64 * (input.bits as u64 / 8);
        let tile = self.options.tile;
        let band = ((BAND_BYTES / row_bytes.max(1)) as u32 / tile).max(1) * tile;
        let (height, width) = (input.height, input.width);
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Band, InputError>>(1);
        std::thread::scope(|scope| {
            // Owned by this closure, so that an early error return drops it, which stops a
            // reader blocked in `send` before the scope waits for it.
            let rx = rx;
            scope.spawn(move || {
                let mut y = 0;
                while y < height {
                    let rows = band.min(height - y);
                    let read = input.read(y, rows);
                    let failed = read.is_err();
                    if tx.send(read).is_err() || failed {
                        return;
                    }
                    y += rows;
                }
            });
            let mut y = 0;
            while y < height {
                let band = rx
                    .recv()
                    .map_err(|_| self.unread("the input reader stopped"))?
                    .map_err(|cause| BuildError::Read {
                        path: self.input.to_owned(),
                        cause,
                    })?;
                let pixels = T::from_band(band, drop_alpha);
                if pixels.width != width || pixels.height == 0 {
                    return Err(self.unread("the input gave rows of the wrong size"));
                }
                top.push(&pixels, sink)?;
                y += pixels.height;
                self.progress.advance(pixels.height as u64);
            }
            Ok(())
        })
    }

    /// [`BuildError::Read`] of the input: its rows did not come as promised.
    fn unread(&self, what: &'static str) -> BuildError {
        BuildError::Read {
            path: self.input.to_owned(),
            cause: InputError::malformed(what),
        }
    }
}

/// Turning an input band into the pyramid's sample type (16-bit to 8-bit by rounding
/// v × 255 / 65535), optionally without its alpha channel.
pub(crate) trait FromBand: Sized {
    /// The band's pixels in this sample type.
    fn from_band(band: Band, drop_alpha: bool) -> iipsrv_core::raster::Pixels<Self>;
}

impl FromBand for u8 {
    fn from_band(band: Band, drop_alpha: bool) -> iipsrv_core::raster::Pixels<u8> {
        let p = match band {
            Band::Eight(p) => p,
            Band::Sixteen(p) => map(&p, |v| ((v as u32 * 255 + 32767) / 65535) as u8),
        };
        if drop_alpha {
            without_alpha(&p)
        } else {
            p
        }
    }
}

impl FromBand for u16 {
    fn from_band(band: Band, drop_alpha: bool) -> iipsrv_core::raster::Pixels<u16> {
        let p = match band {
            Band::Sixteen(p) => p,
            Band::Eight(p) => map(&p, |v| v as u16 * 257),
        };
        if drop_alpha {
            without_alpha(&p)
        } else {
            p
        }
    }
}

/// `p` with every sample passed through `f` (a change of sample type).
fn map<A: Copy, B: Copy + Default>(
    p: &iipsrv_core::raster::Pixels<A>,
    f: impl Fn(A) -> B,
) -> iipsrv_core::raster::Pixels<B> {
    iipsrv_core::raster::Pixels {
        width: p.width,
        height: p.height,
        channels: p.channels,
        data: p.data.iter().map(|&v| f(v)).collect(),
    }
}

/// `p` without its last channel (the alpha the output does not keep).
fn without_alpha<T: Copy + Default>(
    p: &iipsrv_core::raster::Pixels<T>,
) -> iipsrv_core::raster::Pixels<T> {
    let ch = p.channels as usize;
    iipsrv_core::raster::Pixels {
        width: p.width,
        height: p.height,
        channels: p.channels - 1,
        data: p
            .data
            .chunks_exact(ch)
            .flat_map(|px| px[..ch - 1].iter().copied())
            .collect(),
    }
}
