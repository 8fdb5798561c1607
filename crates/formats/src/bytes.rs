//! Byte sources: where a container reader gets its bytes. Files are read with positioned
//! reads so that every thread shares one handle with no seek and no lock; objects in S3
//! or on HTTP servers are the server crate's `RemoteBytes` (`storage::objects::remote`).

use crate::error::{SourceError, SourceResult};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Random-access bytes of one image.
pub trait ByteSource: Send + Sync {
    /// Total length in bytes.
    fn len(&self) -> u64;

    /// Whether the source is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads exactly `len` bytes at `offset`; an error when they are not all there.
    fn read_at(&self, offset: u64, len: usize) -> SourceResult<Vec<u8>>;

    /// Says that the ranges (offset, length) will be read soon, so that a remote source
    /// fetches them together; local sources have nothing to do.
    fn prefetch(&self, ranges: &[(u64, usize)]) -> SourceResult<()> {
        let _ = ranges;
        Ok(())
    }

    /// Whether reads may wait on the network (the quick path leaves such sources to the
    /// worker pool).
    fn is_remote(&self) -> bool {
        false
    }

    /// The path of a local file, for readers that open files themselves (OpenSlide);
    /// None for other sources.
    fn local_path(&self) -> Option<&Path> {
        None
    }
}

/// A local file read with `pread`.
pub struct FileBytes {
    file: File,
    len: u64,
    path: PathBuf,
}

impl FileBytes {
    /// Opens `path` for reading: a regular file only (a FIFO, device or directory put in
    /// the image folder is refused, and opening one never blocks).
    pub fn open(path: &Path) -> SourceResult<FileBytes> {
        let (file, len) = open_regular(path)?;
        let path = path.to_path_buf();
        Ok(FileBytes { file, len, path })
    }
}

impl ByteSource for FileBytes {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, len: usize) -> SourceResult<Vec<u8>> {
        check_within(offset, len, self.len, "file")?;
        let mut buf = vec![0u8; len];
        self.file
            .read_exact_at(&mut buf, offset)
            .map_err(|e| SourceError::io("read failed", e))?;
        Ok(buf)
    }

    fn local_path(&self) -> Option<&Path> {
        Some(&self.path)
    }
}

/// A [`ByteSource`] read through `std::io::Read` and `Seek`, for decoders that want a
/// stream (the PNG decoder of the pyramid builder).
pub(crate) struct ByteReader {
    bytes: Arc<dyn ByteSource>,
    at: u64,
}

impl ByteReader {
    /// A reader at the start of `bytes`.
    pub(crate) fn new(bytes: Arc<dyn ByteSource>) -> ByteReader {
        ByteReader { bytes, at: 0 }
    }
}

impl std::io::Read for ByteReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.bytes.len().saturating_sub(self.at);
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            return Ok(0);
        }
        let data = self
            .bytes
            .read_at(self.at, n)
            .map_err(std::io::Error::other)?;
        buf[..n].copy_from_slice(&data);
        self.at += n as u64;
        Ok(n)
    }
}

impl std::io::Seek for ByteReader {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let at = match to {
            std::io::SeekFrom::Start(n) => Some(n),
            std::io::SeekFrom::End(d) => self.bytes.len().checked_add_signed(d),
            std::io::SeekFrom::Current(d) => self.at.checked_add_signed(d),
        };
        self.at = at.ok_or_else(|| std::io::Error::other("seek before the start"))?;
        Ok(self.at)
    }
}

/// Refuses a read of `len` bytes at `offset` that does not lie within the `total` bytes of
/// a `what` (file, object): a corrupt offset, never a short read.
pub fn check_within(offset: u64, len: usize, total: u64, what: &str) -> SourceResult<()> {
    if offset.checked_add(len as u64).is_none_or(|e| e > total) {
        return Err(SourceError::corrupt_at(
            format!(
                "read of {len} bytes at offset {offset} is past the end of the {what} ({total} bytes)"
            ),
            offset,
        ));
    }
    Ok(())
}

/// Bytes held in memory (tests, generated images).
pub struct MemBytes(pub Vec<u8>);

impl ByteSource for MemBytes {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(&self, offset: u64, len: usize) -> SourceResult<Vec<u8>> {
        let start = usize::try_from(offset).ok();
        let slice = start
            .and_then(|s| s.checked_add(len).map(|e| (s, e)))
            .and_then(|(s, e)| self.0.get(s..e));
        slice.map(<[u8]>::to_vec).ok_or_else(|| {
            SourceError::corrupt_at(
                format!("read of {len} bytes at offset {offset} is past the end"),
                offset,
            )
        })
    }
}

/// Opens `path` for reading without blocking (O_NONBLOCK: opening a FIFO with no writer
/// would wait forever) and only when it is a regular file (checked on the open file, so a
/// file swapped after a stat is caught too), with its length from that same check.
pub fn open_regular(path: &Path) -> SourceResult<(File, u64)> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| SourceError::io("cannot open image", e))?;
    let meta = file
        .metadata()
        .map_err(|e| SourceError::io("cannot stat image", e))?;
    if !meta.is_file() {
        return Err(SourceError::unsupported("not a regular file"));
    }
    Ok((file, meta.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_an_io_error_with_its_operation() {
        let missing = FileBytes::open(Path::new("/no/such/image.tif"));
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
    fn reads_past_the_end_name_their_offset() {
        let e = MemBytes(vec![0; 10])
            .read_at(8, 4)
            .expect_err("past the end");
        assert_eq!(e.to_string(), "read of 4 bytes at offset 8 is past the end");
        assert_eq!(e.offset(), Some(8));
        let e = check_within(100, 1, 50, "object").expect_err("past the end");
        assert_eq!(
            e.to_string(),
            "read of 1 bytes at offset 100 is past the end of the object (50 bytes)"
        );
        assert_eq!(e.offset(), Some(100));
    }
}
