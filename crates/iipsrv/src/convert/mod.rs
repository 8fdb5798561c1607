//! `iipsrv convert INPUT OUTPUT.tif`: the pyramid builder of the format crate
//! ([`iipsrv_formats::pyramid`]) on the command line. Turns a JPEG, PNG or TIFF (striped or
//! tiled, 8 or 16-bit) into a tiled pyramidal TIFF that this server and libvips read, in
//! bounded memory, with a progress bar on a terminal.

use clap::{Parser, ValueEnum};
use iipsrv_formats::pyramid::error::BuildError;
use iipsrv_formats::pyramid::{self, Compression, Options};
use std::io::IsTerminal;
use std::path::PathBuf;

/// The command line of `iipsrv convert`.
#[derive(Debug, Parser)]
#[command(
    name = "iipsrv convert",
    about = "Make a tiled pyramidal TIFF from a JPEG, PNG or TIFF (8 or 16-bit), in bounded memory"
)]
pub(crate) struct Args {
    /// Input image: JPEG, PNG, or TIFF (striped or tiled).
    pub(crate) input: PathBuf,
    /// Output TIFF (written beside as OUTPUT.partial, then renamed).
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
pub(crate) fn convert(args: &Args) -> Result<(), BuildError> {
    let options = Options {
        tile: args.tile,
        compression: args.compression.with_quality(args.quality),
        fallback: None,
        bigtiff: args.bigtiff,
    };
    let progress = Bar::new(args.output.display().to_string());
    pyramid::build(&args.input, &args.output, &options, &progress)
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

/// A progress bar of a pyramid build on a terminal; nothing otherwise.
pub(crate) struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    /// A bar labelled `label`, when standard error is a terminal.
    pub(crate) fn new(label: String) -> Bar {
        if !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let bar = indicatif::ProgressBar::new(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {percent}% rows, {elapsed} (about {eta} left)",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label);
        Bar(Some(bar))
    }
}

impl pyramid::Progress for Bar {
    fn start(&self, rows: u64) {
        if let Some(b) = &self.0 {
            b.set_length(rows);
        }
    }

    fn advance(&self, rows: u64) {
        if let Some(b) = &self.0 {
            b.inc(rows);
        }
    }

    fn done(&self) {
        if let Some(b) = &self.0 {
            b.finish();
        }
    }
}
