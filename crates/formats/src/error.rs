//! Errors of image sources and codecs, classified by what went wrong with the file (not by
//! HTTP status: the server maps them in one place).
//!
//! Every variant carries the one-line text its `Display` shows (that text reaches HTTP
//! clients and `iipsrv check`, and is the same as before the variants were structured),
//! and beside it what a caller may want to act on without parsing text: where in the file
//! the damage is, which number went past which bound, the `io::Error` of a failed read.
//! The structured fields never appear in `Display` unless the text already names them.

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::{ByteSource, MemBytes};
    use crate::source::tiff::TiffImage;
    use std::sync::Arc;

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
        let missing = crate::bytes::FileBytes::open(std::path::Path::new("/no/such/image.tif"));
        match missing {
            Err(SourceError::Io { op, error }) => {
                assert_eq!(op, "cannot open image");
                assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
            }
            Err(e) => panic!("expected Io, got {e:?}"),
            Ok(_) => panic!("expected an error"),
        }
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
    fn reads_past_the_end_name_their_offset() {
        let e = MemBytes(vec![0; 10])
            .read_at(8, 4)
            .expect_err("past the end");
        assert_eq!(e.to_string(), "read of 4 bytes at offset 8 is past the end");
        assert_eq!(e.offset(), Some(8));
        let e = crate::bytes::check_within(100, 1, 50, "object").expect_err("past the end");
        assert_eq!(
            e.to_string(),
            "read of 1 bytes at offset 100 is past the end of the object (50 bytes)"
        );
        assert_eq!(e.offset(), Some(100));
    }

    /// A little-endian TIFF header pointing at one IFD of `entries` 12-byte entries at 8,
    /// followed by `tail` bytes of nothing.
    fn tiff_with_ifd(count: u16, entries: &[(u16, u16, u32, u32)], tail: usize) -> Vec<u8> {
        let mut b = b"II\x2a\0".to_vec();
        b.extend(8u32.to_le_bytes());
        b.extend(count.to_le_bytes());
        for &(tag, kind, n, value) in entries {
            b.extend(tag.to_le_bytes());
            b.extend(kind.to_le_bytes());
            b.extend(n.to_le_bytes());
            b.extend(value.to_le_bytes());
        }
        b.extend(vec![0; tail]);
        b
    }

    fn open_err(bytes: Vec<u8>) -> SourceError {
        match TiffImage::open(Arc::new(MemBytes(bytes))) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_truncated_tiff_is_corrupt_at_the_read_that_runs_out() {
        // the IFD says it has 5 entries, the file ends after one
        let bytes = tiff_with_ifd(5, &[(256, 4, 1, 64)], 0);
        let e = open_err(bytes);
        assert_eq!(
            e.to_string(),
            "read of 64 bytes at offset 10 is past the end"
        );
        assert!(
            matches!(
                e,
                SourceError::Corrupt {
                    offset: Some(10),
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn tiff_damage_names_its_directory_entry_or_header_field() {
        let e = open_err(tiff_with_ifd(0, &[], 4));
        assert_eq!(e.to_string(), "IFD at 8 has 0 entries");
        assert_eq!(e.offset(), Some(8));

        // ImageWidth stored as ASCII: the second entry, at 8 + 2 + 12
        let e = open_err(tiff_with_ifd(2, &[(257, 4, 1, 64), (256, 2, 1, 0x41)], 4));
        assert_eq!(e.to_string(), "tag 256 has type 2, expected an integer");
        assert_eq!(e.offset(), Some(22));

        // a zero width: the IFD that describes the image
        let e = open_err(tiff_with_ifd(2, &[(256, 4, 1, 0), (257, 4, 1, 64)], 4));
        assert_eq!(e.to_string(), "image size 0x64");
        assert_eq!(e.offset(), Some(8));

        let mut bad_version = tiff_with_ifd(1, &[(256, 4, 1, 1)], 4);
        bad_version[2] = 41;
        let e = open_err(bad_version);
        assert_eq!(e.to_string(), "not a TIFF file: version 41");
        assert_eq!(e.offset(), Some(2));

        let e = open_err(b"II\x2a\0\0\0\0\0".to_vec());
        assert_eq!(e.to_string(), "TIFF has no image directory");
        assert_eq!(e.offset(), Some(4));
    }

    #[test]
    fn a_tile_that_does_not_decode_is_placed_at_the_tile() {
        use crate::source::ImageSource;
        // one 16 x 16 8-bit grey deflate tile of 4 bytes that are not zlib, after the directory
        let entries = [
            (256, 4, 1, 16),
            (257, 4, 1, 16),
            (258, 3, 1, 8),
            (259, 3, 1, 8),
            (322, 4, 1, 16),
            (323, 4, 1, 16),
            (324, 4, 1, 110),
            (325, 4, 1, 4),
        ];
        let mut bytes = tiff_with_ifd(8, &entries, 4);
        assert_eq!(bytes.len(), 110);
        bytes.extend([0xde, 0xad, 0xbe, 0xef]);
        let image = TiffImage::open(Arc::new(MemBytes(bytes))).expect("opens");
        let e = image.read_tile(0, 0, 0).expect_err("not zlib");
        assert!(e.to_string().starts_with("bad deflate tile: "), "{e}");
        assert!(
            matches!(
                e,
                SourceError::Corrupt {
                    offset: Some(110),
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn jpeg2000_damage_names_its_box_or_marker() {
        use crate::source::jpeg2000::Header;
        // a JP2 signature box, then a box of 100 bytes in a file of 28
        let mut jp2 = vec![0, 0, 0, 12, b'j', b'P', b' ', b' ', 0x0d, 0x0a, 0x87, 0x0a];
        jp2.extend([0, 0, 0, 100, b'j', b'p', b'2', b'h']);
        jp2.extend([0; 8]);
        let e = Header::read(&MemBytes(jp2)).expect_err("box past the end");
        assert_eq!(e.to_string(), "JPEG2000: a box runs past its parent");
        assert_eq!(e.offset(), Some(12));

        // SOC, SIZ, its length and Rsiz, then nothing: Xsiz at 8 is missing
        let cut = vec![0xff, 0x4f, 0xff, 0x51, 0, 41, 0, 0];
        let e = Header::read(&MemBytes(cut)).expect_err("cut short");
        assert_eq!(e.to_string(), "JPEG2000: header cut short");
        assert_eq!(e.offset(), Some(8));
    }

    #[test]
    fn tiff_limits_carry_their_numbers() {
        // a 1-sample, 8-bit tile of 2^20 x 2^20: 1 TiB decoded, past the 256 MiB limit
        let side = 1u32 << 20;
        let e = open_err(tiff_with_ifd(
            4,
            &[
                (256, 4, 1, 64),
                (257, 4, 1, 64),
                (322, 4, 1, side),
                (323, 4, 1, side),
            ],
            4,
        ));
        assert_eq!(
            e.to_string(),
            "a tile of 1048576x1048576 pixels is too large to decode; convert to a tiled pyramid"
        );
        match e {
            SourceError::Limit { bound: Some(b), .. } => assert_eq!(
                b,
                Bound {
                    value: 1 << 40,
                    max: 256 << 20
                }
            ),
            e => panic!("{e:?}"),
        }
    }
}
