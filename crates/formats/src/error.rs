//! Errors of the format crate: of image sources and decoders ([`SourceError`]), classified by
//! what went wrong with the file (not by HTTP status: the server maps them in one place),
//! and of the encoders and the TIFF writer ([`EncodeError`]).
//!
//! Every variant carries the one-line text its `Display` shows (that text reaches HTTP
//! clients, `iipsrv check` and `iipsrv convert`, and is the same as before the variants
//! were structured), and beside it what a caller may want to act on without parsing text:
//! where in the file the damage is, which number went past which bound, the `io::Error` of
//! a failed read or write, which encoder failed. The structured fields never appear in
//! `Display` unless the text already names them.

/// Why a source could not answer. Converted to the request layer's error by the caller.
///
/// Not `Clone`: [`SourceError::Io`] holds the `std::io::Error` it came from, and no caller
/// needs a second copy of an error.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file is valid but uses a feature we do not read (a compression, a layout, a
    /// sample depth, more components or samples than we decode).
    #[error("{feature}")]
    Unsupported {
        /// What the file uses that we do not read, as the whole message shown (e.g.
        /// "old-style JPEG (compression 6)").
        feature: String,
    },
    /// The file is damaged: a bad header, offsets past the end, undecodable data.
    #[error("{what}")]
    Corrupt {
        /// What is damaged, as the whole message shown (e.g. "tile size 0x256").
        what: String,
        /// Byte offset in the file of the damaged part (a TIFF header field, directory,
        /// directory entry or stored tile; a JPEG2000 box or marker segment; the start of a
        /// read that runs past the end), when the code that found the damage knows it.
        /// Not shown by `Display` unless `what` already names it.
        offset: Option<u64>,
    },
    /// The file asks for more than we serve or decode (huge tiles, images without a
    /// pyramid too large to hold), or for a level, tile or page it does not have.
    #[error("{what}")]
    Limit {
        /// What is too large or absent, as the whole message shown.
        what: String,
        /// The number compared and the bound it exceeded, where the check is a comparison
        /// of one number against a configured or built-in bound; `None` for refusals
        /// without such a pair (a size that overflows, a level that does not exist).
        bound: Option<Bound>,
    },
    /// The object store or HTTP server holding the image failed or could not be reached.
    #[error("{reason}")]
    Remote {
        /// What the store did or said, as the whole message shown.
        reason: String,
    },
    /// A page the image does not have (multi-page TIFF stacks; any page but 0 of an image
    /// that is not a TIFF).
    #[error("no page {page} in this image")]
    NoSuchPage {
        /// The page asked for (0-based).
        page: usize,
    },
    /// Reading the image's bytes failed at the operating system.
    #[error("{op}: {error}")]
    Io {
        /// What we were doing ("cannot open image", "read failed"): the text before the
        /// system's message.
        op: String,
        /// The system's error. Shown in `Display` after `op` and so deliberately not
        /// returned by `Error::source` (a reporter walking causes would print it twice).
        error: std::io::Error,
    },
    /// A decoder could not run for a reason that is not the file's: no memory for it, a
    /// decoder library that would not start, rows asked for out of order (a bug).
    #[error("{what}")]
    Decoder {
        /// What failed, as the whole message shown.
        what: String,
    },
}

/// A number from the file (or derived from it) and the bound it went past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    /// The number the file asks for (bytes, pixels).
    pub value: u64,
    /// The largest value accepted, in the same unit.
    pub max: u64,
}

impl SourceError {
    /// [`SourceError::Unsupported`] for a feature (the whole message).
    pub fn unsupported(feature: impl Into<String>) -> Self {
        SourceError::Unsupported {
            feature: feature.into(),
        }
    }

    /// [`SourceError::Corrupt`] where the offset of the damage is not known.
    pub fn corrupt(what: impl Into<String>) -> Self {
        SourceError::Corrupt {
            what: what.into(),
            offset: None,
        }
    }

    /// [`SourceError::Corrupt`] for damage at byte `offset` of the file.
    pub(crate) fn corrupt_at(what: impl Into<String>, offset: u64) -> Self {
        SourceError::Corrupt {
            what: what.into(),
            offset: Some(offset),
        }
    }

    /// [`SourceError::Limit`] for a refusal without a single number and bound.
    pub fn limit(what: impl Into<String>) -> Self {
        SourceError::Limit {
            what: what.into(),
            bound: None,
        }
    }

    /// [`SourceError::Limit`] for `value` going past `max`; `what` is the whole message
    /// (it need not show the numbers).
    pub(crate) fn over_limit(what: impl Into<String>, value: u64, max: u64) -> Self {
        SourceError::Limit {
            what: what.into(),
            bound: Some(Bound { value, max }),
        }
    }

    /// [`SourceError::Remote`] with the store's reason.
    pub fn remote(reason: impl Into<String>) -> Self {
        SourceError::Remote {
            reason: reason.into(),
        }
    }

    /// [`SourceError::Io`]: `op` failed with `error`; shown as "`op`: `error`".
    pub fn io(op: impl Into<String>, error: std::io::Error) -> Self {
        SourceError::Io {
            op: op.into(),
            error,
        }
    }

    /// [`SourceError::Decoder`] with what failed.
    pub(crate) fn decoder(what: impl Into<String>) -> Self {
        SourceError::Decoder { what: what.into() }
    }

    /// This error, placed at byte `offset` of the file when it is a
    /// [`SourceError::Corrupt`] that does not know its offset yet (a codec's error, placed
    /// at the tile the container read it from). Every other error, and a `Corrupt` that
    /// already has an offset (more precise than the caller's), is returned unchanged.
    pub(crate) fn or_at(self, offset: u64) -> Self {
        match self {
            SourceError::Corrupt { what, offset: None } => SourceError::corrupt_at(what, offset),
            e => e,
        }
    }

    /// The byte offset of the damage, for a [`SourceError::Corrupt`] that knows it.
    pub fn offset(&self) -> Option<u64> {
        match self {
            SourceError::Corrupt { offset, .. } => *offset,
            _ => None,
        }
    }
}

/// Result of a source operation.
pub type SourceResult<T> = Result<T, SourceError>;

/// The encoder an [`EncodeError`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeFormat {
    /// JPEG, through libjpeg-turbo.
    Jpeg,
    /// PNG, through the `png` crate.
    Png,
    /// WebP, through libwebp.
    Webp,
    /// TIFF, through this crate's writer (`codec::tiff_writer`).
    Tiff,
    /// AVIF, through libavif (`codec::avif`).
    Avif,
    /// JPEG2000 masters of `iipsrv convert`, through OpenJPEG.
    Jpeg2000,
    /// HTJ2K masters of `iipsrv convert`, through OpenJPH.
    Htj2k,
}

impl EncodeFormat {
    /// The text `Display` puts before a library's message: "WebP encoding failed: " for
    /// libwebp, whose errors are bare status codes; nothing for the others, whose messages
    /// say what failed.
    fn library_prefix(self) -> &'static str {
        match self {
            EncodeFormat::Webp => "WebP encoding failed: ",
            EncodeFormat::Jpeg
            | EncodeFormat::Png
            | EncodeFormat::Tiff
            | EncodeFormat::Avif
            | EncodeFormat::Jpeg2000
            | EncodeFormat::Htj2k => "",
        }
    }
}

/// Why pixels could not be encoded as an answer, or a TIFF written. The server answers
/// them as internal errors ("encoding failed: " and this text); `iipsrv convert` prints
/// them after its name.
///
/// Not `Clone`: [`EncodeError::Io`] holds the `std::io::Error` it came from.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The codec library failed or refused the pixels (libjpeg-turbo, the `png` crate,
    /// libwebp).
    #[error("{}{message}", .format.library_prefix())]
    Library {
        /// The encoder that failed.
        format: EncodeFormat,
        /// The library's own message: its error's `Display` for libjpeg-turbo and `png`,
        /// the name of libwebp's status code (e.g. "VP8_ENC_ERROR_OUT_OF_MEMORY") for
        /// WebP. Shown as it is, after "WebP encoding failed: " for WebP.
        message: String,
    },
    /// Pixels with a number of channels the format does not store.
    #[error("cannot write {channels} channels")]
    Channels {
        /// The format asked for.
        format: EncodeFormat,
        /// The channels of the pixels given.
        channels: u8,
    },
    /// A classic TIFF, whose offsets are 32 bits, would pass 4 GB: only BigTIFF holds it.
    #[error("the output passes 4 GB: use --bigtiff")]
    TiffTooLarge {
        /// The size in bytes the output would reach with the block being appended.
        size: u64,
        /// The largest size a classic TIFF addresses, in bytes.
        max: u64,
    },
    /// AVIF was asked of a build without libavif (cargo feature `avif`).
    #[error("not built with AVIF (cargo feature `avif`)")]
    AvifNotBuilt,
    /// A TIFF finished without a directory: there was no level to write.
    #[error("no levels to write")]
    NoLevels,
    /// Writing the output failed at the operating system.
    #[error("{op}: {error}")]
    Io {
        /// What we were doing ("cannot write the output"): the text before the system's
        /// message.
        op: &'static str,
        /// The system's error. Shown in `Display` after `op` and so deliberately not
        /// returned by `Error::source` (a reporter walking causes would print it twice).
        error: std::io::Error,
    },
}

impl EncodeError {
    /// [`EncodeError::Library`]: `format`'s library failed with `message`.
    pub fn library(format: EncodeFormat, message: impl std::fmt::Display) -> Self {
        EncodeError::Library {
            format,
            message: message.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_message_of_every_form() {
        let cases = [
            (
                SourceError::unsupported("old-style JPEG (compression 6)"),
                "old-style JPEG (compression 6)",
            ),
            (SourceError::corrupt("tile size 0x256"), "tile size 0x256"),
            (
                SourceError::corrupt_at("IFD at 8 has 0 entries", 8),
                "IFD at 8 has 0 entries",
            ),
            (
                SourceError::corrupt_at("tag 256 has type 2, expected an integer", 10),
                "tag 256 has type 2, expected an integer",
            ),
            (SourceError::limit("PNG too large"), "PNG too large"),
            (
                SourceError::over_limit("stored tile of 300 bytes", 300, 200),
                "stored tile of 300 bytes",
            ),
            (
                SourceError::remote("a block went missing"),
                "a block went missing",
            ),
            (
                SourceError::NoSuchPage { page: 3 },
                "no page 3 in this image",
            ),
            (
                SourceError::decoder("JPEG2000: out of memory"),
                "JPEG2000: out of memory",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text, "{e:?}");
        }
    }

    #[test]
    fn io_shows_the_operation_then_the_system_message_as_before() {
        let sys = || std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let e = SourceError::io("cannot open image", sys());
        assert_eq!(e.to_string(), format!("cannot open image: {}", sys()));
        assert_eq!(e.to_string(), "cannot open image: No such file");
        assert!(std::error::Error::source(&e).is_none());
    }

    #[test]
    fn offsets_and_bounds_stay_out_of_display() {
        let e = SourceError::corrupt_at("tile size mismatch", 4096);
        assert_eq!(e.to_string(), "tile size mismatch");
        assert_eq!(e.offset(), Some(4096));
        let e = SourceError::over_limit("a 10x10 PNG is too large", 100, 99);
        assert_eq!(e.to_string(), "a 10x10 PNG is too large");
        match e {
            SourceError::Limit {
                bound: Some(Bound { value, max }),
                ..
            } => assert_eq!((value, max), (100, 99)),
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn or_at_places_only_a_corrupt_error_without_an_offset() {
        let placed = SourceError::corrupt("bad deflate tile: x").or_at(500);
        assert_eq!(placed.offset(), Some(500));
        assert_eq!(placed.to_string(), "bad deflate tile: x");
        let kept = SourceError::corrupt_at("read past the end", 7).or_at(500);
        assert_eq!(kept.offset(), Some(7));
        let limit = SourceError::limit("no tile 1,1").or_at(500);
        assert!(matches!(limit, SourceError::Limit { bound: None, .. }));
    }

    #[test]
    fn encode_errors_show_the_texts_shown_before() {
        let sys = || std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left");
        let cases = [
            (
                EncodeError::library(EncodeFormat::Jpeg, "Invalid argument"),
                "Invalid argument",
            ),
            (
                EncodeError::library(EncodeFormat::Png, "Format error: bad size"),
                "Format error: bad size",
            ),
            (
                EncodeError::library(EncodeFormat::Webp, "VP8_ENC_ERROR_OUT_OF_MEMORY"),
                "WebP encoding failed: VP8_ENC_ERROR_OUT_OF_MEMORY",
            ),
            (
                EncodeError::Channels {
                    format: EncodeFormat::Tiff,
                    channels: 5,
                },
                "cannot write 5 channels",
            ),
            (
                EncodeError::TiffTooLarge {
                    size: 1 << 32,
                    max: u32::MAX as u64,
                },
                "the output passes 4 GB: use --bigtiff",
            ),
            (EncodeError::NoLevels, "no levels to write"),
            (
                EncodeError::AvifNotBuilt,
                "not built with AVIF (cargo feature `avif`)",
            ),
            (
                EncodeError::library(EncodeFormat::Avif, "libavif could not encode: x"),
                "libavif could not encode: x",
            ),
            (
                EncodeError::Io {
                    op: "cannot write the output",
                    error: sys(),
                },
                "cannot write the output: No space left",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text, "{e:?}");
            assert!(std::error::Error::source(&e).is_none(), "{e:?}");
        }
    }
}
