//! Why `iipsrv convert` failed. Each error is printed as one line after "iipsrv convert: "
//! (the texts are those of the string errors these types replaced); beside the text every
//! variant keeps what a caller may act on: the file, the format crate's error, the
//! `io::Error`, the numbers of a refused layout.

use crate::error::{EncodeError, SourceError};
use iipsrv_core::info::{ColourSpace, SampleFormat};
use std::path::{Path, PathBuf};

/// Why a conversion failed. No output is left behind, whatever the error.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `--tile` is not a multiple of 16 from 16 to 4096.
    #[error("--tile {tile}: a multiple of 16 from 16 to 4096")]
    Tile {
        /// The tile size asked for.
        tile: u32,
    },
    /// `--compression webp` for an image without colour: WebP stores RGB or RGBA only.
    #[error("WebP tiles hold RGB or RGBA: use jpeg or a lossless compression for grey images")]
    WebpGrey {
        /// The input's channels (1 grey, 2 grey + alpha).
        channels: u8,
    },
    /// The input could not be opened, recognised or its header read.
    #[error("{}: {cause}", .path.display())]
    Open {
        /// The input, as given on the command line.
        path: PathBuf,
        /// What failed.
        cause: InputError,
    },
    /// The input is a format or layout that convert does not take.
    #[error("{}: {layout}", .path.display())]
    Unsupported {
        /// The input, as given on the command line.
        path: PathBuf,
        /// What it is.
        layout: Layout,
    },
    /// The input's rows could not be read once it was open.
    #[error("{cause}")]
    Read {
        /// The input, as given on the command line. Not shown by `Display` (the message
        /// never named it).
        path: PathBuf,
        /// What failed.
        cause: InputError,
    },
    /// A tile could not be encoded, or the TIFF writer failed (the text is the encoder's).
    #[error("{0}")]
    Encode(#[from] EncodeError),
    /// The output file could not be created, written or renamed into place.
    #[error("{}: {error}", .step.describe(.path))]
    Output {
        /// The file being written: `OUTPUT.partial`.
        path: PathBuf,
        /// What we were doing with it.
        step: OutputStep,
        /// The system's error. Shown in `Display` after the step and so deliberately not
        /// returned by `Error::source` (a reporter walking causes would print it twice).
        error: std::io::Error,
    },
    /// A tile the pyramid cannot hand to its encoder (16-bit samples for JPEG or WebP, a
    /// tile of the wrong size): a bug, not the input's fault.
    #[error("{what}")]
    Internal {
        /// What is wrong, as the whole message shown.
        what: &'static str,
    },
}

impl BuildError {
    /// [`BuildError::Open`] for the input at `path`.
    pub fn open(path: &Path, cause: impl Into<InputError>) -> Self {
        BuildError::Open {
            path: path.to_owned(),
            cause: cause.into(),
        }
    }

    /// [`BuildError::Unsupported`] for the input at `path`.
    pub fn unsupported(path: &Path, layout: Layout) -> Self {
        BuildError::Unsupported {
            path: path.to_owned(),
            layout,
        }
    }

    /// [`BuildError::Output`]: `step` on the file at `path` failed with `error`.
    pub fn output(path: &Path, step: OutputStep, error: std::io::Error) -> Self {
        BuildError::Output {
            path: path.to_owned(),
            step,
            error,
        }
    }
}

/// What failed in reading the input.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The format crate's reader failed: opening or reading the file, a TIFF or JPEG that is
    /// damaged or uses what it does not decode.
    #[error("{0}")]
    Source(#[from] SourceError),
    /// Opening or reading a PNG or JPEG file failed at the operating system.
    #[error("{op}: {error}")]
    Io {
        /// What we were doing ("cannot open", "cannot read"): the text before the system's
        /// message.
        op: &'static str,
        /// The system's error, shown after `op` (and so not returned by `Error::source`).
        error: std::io::Error,
    },
    /// The PNG decoder's error.
    #[error("bad PNG: {0}")]
    Png(png::DecodingError),
    /// The rows do not come as the header promised (a PNG that ends early, or too large to
    /// lay out in memory; rows of another size; an input that ends before its last row) or
    /// the reading thread stopped.
    #[error("{what}")]
    Malformed {
        /// What is wrong, as the whole message shown.
        what: &'static str,
    },
}

impl InputError {
    /// [`InputError::Malformed`] with its message.
    pub fn malformed(what: &'static str) -> Self {
        InputError::Malformed { what }
    }
}

/// An input convert does not take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Layout {
    /// Not a TIFF, JPEG, PNG or JPEG2000 file (by its first bytes).
    #[error("not a TIFF, JPEG, PNG or JPEG2000 file")]
    UnknownFormat,
    /// A TIFF whose samples are not 8 or 16-bit unsigned grey or RGB (with or without
    /// alpha): floats, signed, CIELab, more than 4 channels.
    #[error(
        "TIFF of {channels} channels of {bits}-bit {sample_format:?} samples ({colour:?}): \
         convert takes 8 or 16-bit unsigned grey or RGB, with or without alpha"
    )]
    TiffSamples {
        /// Samples per pixel.
        channels: u8,
        /// Bits per sample.
        bits: u16,
        /// How the samples are stored.
        sample_format: SampleFormat,
        /// Their colour interpretation.
        colour: ColourSpace,
    },
    /// A JPEG2000 whose samples are not 8 or 16-bit unsigned grey or RGB (with or without
    /// alpha): other precisions, signed, more than 4 components.
    #[error(
        "JPEG2000 of {channels} components of {bits} bits: convert takes 8 or 16-bit \
         unsigned grey or RGB, with or without alpha"
    )]
    Jpeg2000Samples {
        /// Components.
        channels: u8,
        /// Bits per sample.
        bits: u16,
    },
    /// An image so wide that one row of tiles would take more memory than the builder
    /// allows.
    #[error("image {width} pixels wide: the pyramid builder takes at most {max}")]
    TooWide {
        /// Width in pixels.
        width: u32,
        /// The widest it takes with these channels and tiles.
        max: u32,
    },
    /// An image with alpha for a JPEG2000 or HTJ2K master, which holds grey or RGB.
    #[error(
        "image of {channels} channels with alpha: JPEG2000 and HTJ2K masters hold grey or \
         RGB; remove the alpha channel first"
    )]
    Alpha {
        /// The input's channels (2 grey + alpha, 4 RGBA).
        channels: u8,
    },
    /// An interlaced PNG too large to decode whole.
    #[error(
        "interlaced PNG of {width} x {height}: it can only be decoded whole; save it \
         without interlacing first"
    )]
    InterlacedPng {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// The most pixels an interlaced PNG may have.
        max_pixels: u64,
    },
}

/// A step of writing the output file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStep {
    /// Creating `OUTPUT.partial`.
    Create,
    /// Writing the TIFF header.
    Start,
    /// Flushing and syncing the finished file.
    Finish,
    /// Renaming `OUTPUT.partial` to `OUTPUT` (or a static tree into place).
    Rename,
    /// Writing a file of a static tree (`iipsrv convert --static`).
    Write,
    /// Removing an earlier static tree of the same name, to replace it.
    Remove,
}

impl OutputStep {
    /// The text before the system's message: "cannot create PATH", "cannot write PATH",
    /// "cannot write the output", "cannot rename the output into place".
    fn describe(self, path: &Path) -> String {
        match self {
            OutputStep::Create => format!("cannot create {}", path.display()),
            OutputStep::Start | OutputStep::Write => format!("cannot write {}", path.display()),
            OutputStep::Finish => "cannot write the output".into(),
            OutputStep::Rename => "cannot rename the output into place".into(),
            OutputStep::Remove => format!("cannot replace {}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::EncodeFormat;

    fn sys() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::PermissionDenied, "Permission denied")
    }

    #[test]
    fn arguments_and_layouts_show_the_texts_shown_before() {
        let input = Path::new("in/a.tif");
        let cases = [
            (
                BuildError::Tile { tile: 100 },
                "--tile 100: a multiple of 16 from 16 to 4096",
            ),
            (
                BuildError::WebpGrey { channels: 1 },
                "WebP tiles hold RGB or RGBA: use jpeg or a lossless compression for grey images",
            ),
            (
                BuildError::unsupported(input, Layout::UnknownFormat),
                "in/a.tif: not a TIFF, JPEG, PNG or JPEG2000 file",
            ),
            (
                BuildError::unsupported(
                    input,
                    Layout::TiffSamples {
                        channels: 1,
                        bits: 32,
                        sample_format: SampleFormat::Float,
                        colour: ColourSpace::Grey,
                    },
                ),
                "in/a.tif: TIFF of 1 channels of 32-bit Float samples (Grey): convert takes 8 \
                 or 16-bit unsigned grey or RGB, with or without alpha",
            ),
            (
                BuildError::unsupported(
                    input,
                    Layout::InterlacedPng {
                        width: 9000,
                        height: 9000,
                        max_pixels: 64 << 20,
                    },
                ),
                "in/a.tif: interlaced PNG of 9000 x 9000: it can only be decoded whole; save it \
                 without interlacing first",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text, "{e:?}");
        }
    }

    #[test]
    fn input_errors_name_the_file_only_when_opening() {
        let input = Path::new("in.png");
        let e = BuildError::open(input, SourceError::corrupt("bad JPEG: x"));
        assert_eq!(e.to_string(), "in.png: bad JPEG: x");
        let e = BuildError::open(
            input,
            InputError::Io {
                op: "cannot open",
                error: sys(),
            },
        );
        assert_eq!(e.to_string(), "in.png: cannot open: Permission denied");
        let e = BuildError::Read {
            path: input.to_owned(),
            cause: InputError::malformed("PNG ends early"),
        };
        assert_eq!(e.to_string(), "PNG ends early");
        let png = png::DecodingError::LimitsExceeded;
        let shown = format!("bad PNG: {png}");
        let e = BuildError::Read {
            path: input.to_owned(),
            cause: InputError::Png(png),
        };
        assert_eq!(e.to_string(), shown);
    }

    #[test]
    fn encoder_and_output_errors_show_the_texts_shown_before() {
        let partial = Path::new("out.tif.partial");
        let cases = [
            (
                BuildError::from(EncodeError::TiffTooLarge {
                    size: 1 << 32,
                    max: u32::MAX as u64,
                }),
                "the output passes 4 GB: use --bigtiff".to_string(),
            ),
            (
                BuildError::from(EncodeError::library(EncodeFormat::Webp, "VP8_ENC_ERROR")),
                "WebP encoding failed: VP8_ENC_ERROR".to_string(),
            ),
            (
                BuildError::output(partial, OutputStep::Create, sys()),
                format!("cannot create out.tif.partial: {}", sys()),
            ),
            (
                BuildError::output(partial, OutputStep::Start, sys()),
                format!("cannot write out.tif.partial: {}", sys()),
            ),
            (
                BuildError::output(partial, OutputStep::Finish, sys()),
                format!("cannot write the output: {}", sys()),
            ),
            (
                BuildError::output(partial, OutputStep::Rename, sys()),
                format!("cannot rename the output into place: {}", sys()),
            ),
            (
                BuildError::Internal {
                    what: "JPEG and WebP tiles hold 8-bit samples",
                },
                "JPEG and WebP tiles hold 8-bit samples".to_string(),
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text, "{e:?}");
        }
    }
}
