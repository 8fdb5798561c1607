//! `iipsrv convert INPUT OUTPUT.tif`: the pyramid builder. Turns a JPEG, PNG or TIFF
//! (striped or tiled, 8 or 16-bit) into a tiled pyramidal TIFF that this server and libvips
//! read, streaming: the input is read in bands of rows ([`input`]), every level of the
//! pyramid is built at once from them ([`pyramid`]) and written in one pass
//! ([`iipsrv_formats::codec::tiff_writer::TiffSink`]),
//! so memory stays near three bands of 16 MB plus two rows of tiles per level, whatever the
//! image height.
//!
//! With `--static LAYOUT`, OUTPUT is a directory that receives a static level-0 tile tree
//! instead ([`export`]).

pub(crate) mod error;
mod export;
pub(crate) mod input;
pub(crate) mod pyramid;

use clap::{Parser, ValueEnum};
use error::{ConvertError, InputError, OutputStep};
use iipsrv_formats::codec::tiff_writer::TiffSink;
use input::{Band, Input};
use pyramid::{lossless, Compression, Level, Sample};
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Seek, Write};
use std::path::{Path, PathBuf};

/// Bytes of input rows read at once (rounded to whole rows of tiles).
const BAND_BYTES: u64 = 16 << 20;

/// The command line of `iipsrv convert`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "iipsrv convert",
    about = "Make a tiled pyramidal TIFF from a JPEG, PNG or TIFF (8 or 16-bit), in bounded memory; \
             or, with --static, a static level-0 tile tree (IIIF, DeepZoom, Zoomify)"
)]
pub(crate) struct Args {
    /// Input image: JPEG, PNG, or TIFF (striped or tiled).
    pub(crate) input: PathBuf,
    /// Output TIFF (written beside as OUTPUT.partial, then renamed); with --static, the
    /// output directory.
    pub(crate) output: PathBuf,
    /// Tile width and height in pixels (a multiple of 16).
    #[arg(long, default_value_t = 256)]
    pub(crate) tile: u32,
    /// Tile compression; jpeg and webp store 8 bits per sample (16-bit input is reduced),
    /// the others keep 16-bit samples and use the horizontal predictor.
    #[arg(long, value_enum, default_value_t = Method::Jpeg)]
    pub(crate) compression: Method,
    /// Quality 1-100 of jpeg and webp tiles.
    #[arg(long, default_value_t = 75, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub(crate) quality: u8,
    /// Write BigTIFF (needed above 4 GB).
    #[arg(long)]
    pub(crate) bigtiff: bool,
    /// Write a static level-0 tile tree of this layout into the OUTPUT directory, for any
    /// web server or CDN to serve without an image server (the other options shape the
    /// intermediate pyramid of a flat input).
    #[arg(long = "static", value_enum, value_name = "LAYOUT")]
    pub(crate) static_layout: Option<StaticLayout>,
    /// With --static iiif3 or iiif2: the public URL the OUTPUT directory is served at; the
    /// image's IIIF id is this URL followed by /NAME (the input's file name without its
    /// extension). The default is what `python3 -m http.server` in OUTPUT serves.
    #[arg(long, value_name = "URL", default_value = "http://localhost:8000")]
    pub(crate) id: String,
}

/// The static tile trees `--static` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum StaticLayout {
    /// IIIF Image API 3.0, level 0: NAME/info.json and NAME/x,y,w,h/w,h/0/default.jpg tiles.
    Iiif3,
    /// IIIF Image API 2.1, level 0: NAME/info.json and NAME/x,y,w,h/w,/0/default.jpg tiles.
    Iiif2,
    /// DeepZoom: NAME.dzi and NAME_files/LEVEL/COL_ROW.jpg.
    Deepzoom,
    /// Zoomify: NAME/ImageProperties.xml and NAME/TileGroupN/Z-X-Y.jpg.
    Zoomify,
}

/// The compressions on offer.
#[derive(Debug, Clone, Copy, PartialEq, ValueEnum)]
pub(crate) enum Method {
    /// JPEG (YCbCr 4:2:0 for colour), as most iipsrv installations serve.
    Jpeg,
    /// Deflate, lossless.
    Deflate,
    /// WebP, lossy (RGB or RGBA images).
    Webp,
    /// zstd, lossless.
    Zstd,
    /// LZW, lossless.
    Lzw,
    /// Uncompressed.
    None,
}

/// Converts as `args` say.
pub(crate) fn convert(args: &Args) -> Result<(), ConvertError> {
    if let Some(layout) = args.static_layout {
        return export::export(args, layout);
    }
    if args.tile < 16 || args.tile > 4096 || !args.tile.is_multiple_of(16) {
        return Err(ConvertError::Tile { tile: args.tile });
    }
    let mut input = Input::open(&args.input)?;
    let compression = match args.compression {
        Method::Jpeg => Compression::Jpeg(args.quality),
        Method::Webp => Compression::Webp(Some(args.quality as f32)),
        // zlib's and zstd's own default levels: pyramids are written once and kept.
        Method::Deflate => Compression::Deflate(6),
        Method::Zstd => Compression::Zstd(3),
        Method::Lzw => Compression::Lzw,
        Method::None => Compression::None,
    };
    if args.compression == Method::Webp && input.channels < 3 {
        return Err(ConvertError::WebpGrey {
            channels: input.channels,
        });
    }
    let partial = partial_path(&args.output);
    let built = if input.bits == 16 && lossless(compression) {
        build::<u16>(&mut input, args, compression, &partial)
    } else {
        build::<u8>(&mut input, args, compression, &partial)
    };
    match built {
        Ok(()) => std::fs::rename(&partial, &args.output)
            .map_err(|e| ConvertError::output(&partial, OutputStep::Rename, e)),
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// `OUTPUT.partial`, where the output is written until it is complete.
fn partial_path(output: &Path) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Reads the input band by band into the pyramid and writes the TIFF.
fn build<T: Sample + FromBand>(
    input: &mut Input,
    args: &Args,
    compression: Compression,
    path: &Path,
) -> Result<(), ConvertError> {
    // JPEG tiles hold no alpha: it is dropped.
    let drop_alpha =
        matches!(compression, Compression::Jpeg(_)) && input.channels.is_multiple_of(2);
    let channels = input.channels - u8::from(drop_alpha);
    let (icc, xmp) = (input.icc.clone(), input.xmp.clone());
    let file = File::create(path).map_err(|e| ConvertError::output(path, OutputStep::Create, e))?;
    let mut sink = TiffSink::new(BufWriter::with_capacity(1 << 20, file), args.bigtiff)
        .map_err(|e| ConvertError::output(path, OutputStep::Start, e))?;
    let mut top = Level::<T>::new(input.width, input.height, channels, args.tile, compression);
    let progress = Progress::new(input.height as u64, args);
    stream(input, args, drop_alpha, &mut top, &mut sink, &progress)?;
    if !top.complete() {
        return Err(unread(args, "the input ended before its last row"));
    }
    let mut directories = Vec::new();
    let extra = iipsrv_formats::codec::Embedded {
        icc: icc.as_deref(),
        xmp: xmp.as_deref(),
    };
    top.directories(extra, &mut directories);
    sink.finish(directories)?
        .into_inner()
        .map_err(|e| e.into_error())
        .and_then(|file| file.sync_all())
        .map_err(|e| ConvertError::output(path, OutputStep::Finish, e))?;
    progress.done();
    Ok(())
}

/// Pushes every band of the input into the pyramid `top`, which writes its tiles to `sink`:
/// one thread decodes the next band while this one builds and encodes the pyramid.
fn stream<T: Sample + FromBand, W: Write + Seek>(
    input: &mut Input,
    args: &Args,
    drop_alpha: bool,
    top: &mut Level<T>,
    sink: &mut TiffSink<W>,
    progress: &Progress,
) -> Result<(), ConvertError> {
    let row_bytes = input.width as u64 * input.channels as u64 * (input.bits as u64 / 8);
    let band = ((BAND_BYTES / row_bytes.max(1)) as u32 / args.tile).max(1) * args.tile;
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
                .map_err(|_| unread(args, "the input reader stopped"))?
                .map_err(|cause| ConvertError::Read {
                    path: args.input.clone(),
                    cause,
                })?;
            let pixels = T::from_band(band, drop_alpha);
            if pixels.width != width || pixels.height == 0 {
                return Err(unread(args, "the input gave rows of the wrong size"));
            }
            top.push(&pixels, sink)?;
            y += pixels.height;
            progress.advance(pixels.height as u64);
        }
        Ok(())
    })
}

/// [`ConvertError::Read`] of the input of `args`: its rows did not come as promised.
fn unread(args: &Args, what: &'static str) -> ConvertError {
    ConvertError::Read {
        path: args.input.clone(),
        cause: InputError::malformed(what),
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

/// A progress bar on a terminal; nothing otherwise.
pub(crate) struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new(rows: u64, args: &Args) -> Progress {
        Progress::bar(rows, &args.output, "rows")
    }

    /// A bar of `len` steps named `unit`, labelled with `label`.
    pub(crate) fn bar(len: u64, label: &Path, unit: &str) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::new(len);
        let template =
            format!("{{msg}} [{{bar:40}}] {{percent}}% {unit}, {{elapsed}} (about {{eta}} left)");
        if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(format!("{}", label.display()));
        Progress(Some(bar))
    }

    /// Moves the bar `steps` on.
    pub(crate) fn advance(&self, steps: u64) {
        if let Some(b) = &self.0 {
            b.inc(steps);
        }
    }

    /// Ends the bar, leaving it shown.
    pub(crate) fn done(&self) {
        if let Some(b) = &self.0 {
            b.finish();
        }
    }
}
