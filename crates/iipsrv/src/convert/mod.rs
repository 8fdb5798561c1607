//! `iipsrv convert INPUT OUTPUT.tif`: the pyramid builder of the format crate
//! ([`iipsrv_formats::pyramid`]) on the command line. Turns a JPEG, PNG or TIFF (striped or
//! tiled, 8 or 16-bit) into a tiled pyramidal TIFF that this server and libvips read, in
//! bounded memory, with a progress bar on a terminal.
//!
//! With `--static LAYOUT`, OUTPUT is a directory that receives a static level-0 tile tree
//! instead ([`export`]). An OUTPUT ending in .jp2 or .j2k is a JPEG2000 master (OpenJPEG),
//! in .jph or .j2c an HTJ2K master (OpenJPH) ([`iipsrv_formats::pyramid::jpeg2000`]).

pub(crate) mod error;
mod export;

use clap::{Parser, ValueEnum};
use error::ConvertError;
use iipsrv_formats::pyramid::jpeg2000::{self, Codec, MasterOptions};
use iipsrv_formats::pyramid::{self, Compression, Options};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// The command line of `iipsrv convert`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "iipsrv convert",
    about = "Make a tiled pyramidal TIFF from a JPEG, PNG or TIFF (8 or 16-bit), in bounded memory; \
             a JPEG2000 (OUTPUT.jp2, .j2k) or HTJ2K (OUTPUT.jph, .j2c) master; \
             or, with --static, a static level-0 tile tree (IIIF, DeepZoom, Zoomify)"
)]
pub(crate) struct Args {
    /// Input image: JPEG, PNG, or TIFF (striped or tiled).
    pub(crate) input: PathBuf,
    /// Output TIFF (written beside as OUTPUT.partial, then renamed); a JPEG2000 master when
    /// it ends in .jp2 (JP2 file) or .j2k (codestream), an HTJ2K master when it ends in .jph
    /// (JPH file) or .j2c (codestream): lossless, 512-px codestream tiles, RPCL, TLM
    /// markers; with --static, the output directory.
    pub(crate) output: PathBuf,
    /// Tile width and height in pixels (a multiple of 16); 256 for TIFF, 512 for the
    /// codestream tiles of JPEG2000 and HTJ2K masters.
    #[arg(long)]
    pub(crate) tile: Option<u32>,
    /// JPEG2000 master (.jp2, .j2k): lossy (irreversible 9/7 wavelet) at this compression
    /// ratio, as opj_compress -r (e.g. 20 for 20:1); lossless without it.
    #[arg(long, value_name = "RATIO", value_parser = positive)]
    pub(crate) rate: Option<f32>,
    /// HTJ2K master (.jph, .j2c): lossy (irreversible 9/7 wavelet) with this quantisation
    /// step, as ojph_compress -qstep (e.g. 0.005; smaller keeps more); lossless without it.
    #[arg(long, value_name = "STEP", value_parser = positive)]
    pub(crate) qstep: Option<f32>,
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
    if let Some(options) = master(args) {
        let progress = Progress::bar(0, &args.output, "rows");
        return Ok(jpeg2000::build_master(
            &args.input,
            &args.output,
            &options,
            &progress,
        )?);
    }
    let options = Options {
        tile: args.tile.unwrap_or(256),
        compression: args.compression.with_quality(args.quality),
        fallback: None,
        bigtiff: args.bigtiff,
    };
    let progress = Progress::bar(0, &args.output, "rows");
    Ok(pyramid::build(
        &args.input,
        &args.output,
        &options,
        &progress,
    )?)
}

/// The JPEG2000 or HTJ2K master OUTPUT's extension asks for, if any.
fn master(args: &Args) -> Option<MasterOptions> {
    let ext = args.output.extension()?.to_str()?.to_ascii_lowercase();
    let (codec, boxed) = match ext.as_str() {
        "jp2" | "j2k" => (Codec::Jpeg2000 { rate: args.rate }, ext == "jp2"),
        "jph" | "j2c" => (Codec::Htj2k { qstep: args.qstep }, ext == "jph"),
        _ => return None,
    };
    Some(MasterOptions {
        tile: args.tile.unwrap_or(512),
        codec,
        boxed,
    })
}

/// A number above 0 (a ratio or a step).
fn positive(text: &str) -> Result<f32, String> {
    match text.parse::<f32>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err("a number above 0".into()),
    }
}

impl Method {
    /// The tile compression of this method, at `quality` where it has one.
    pub(crate) fn with_quality(self, quality: u8) -> Compression {
        match self {
            Method::Jpeg => Compression::Jpeg(quality),
            Method::Webp => Compression::Webp(Some(quality as f32)),
            // zlib's and zstd's own default levels: pyramids are written once and kept.
            Method::Deflate => Compression::Deflate(6),
            Method::Zstd => Compression::Zstd(3),
            Method::Lzw => Compression::Lzw,
            Method::None => Compression::None,
        }
    }
}

/// A progress bar on a terminal; nothing otherwise.
pub(crate) struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
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

/// A pyramid build's rows on the bar.
impl pyramid::Progress for Progress {
    fn start(&self, rows: u64) {
        if let Some(b) = &self.0 {
            b.set_length(rows);
        }
    }

    fn advance(&self, rows: u64) {
        Progress::advance(self, rows);
    }

    fn done(&self) {
        Progress::done(self);
    }
}
