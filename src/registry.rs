//! From identifier to open image: path safety in one place, then a bounded cache of
//! parsed images keyed by path and modification time.
//!
//! Identifiers resolve under the image root (FILESYSTEM_PREFIX) plus FILESYSTEM_SUFFIX.
//! `..` components, NUL bytes and backslash traversal are refused, and the canonical path
//! (symlinks followed) must stay under the canonical root.

use crate::error::{Error, Result};
use crate::source::bytes::FileBytes;
use crate::source::tiff::TiffImage;
use crate::source::ImageSource;
use quick_cache::sync::Cache;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// Longest identifier accepted, in bytes.
pub const MAX_ID_LEN: usize = 1024;

/// An open image and the file facts answers depend on.
#[derive(Clone)]
pub struct Opened {
    /// The image.
    pub source: Arc<dyn ImageSource>,
    /// Canonical path (for cache keys and logs; never shown to clients).
    pub path: Arc<PathBuf>,
    /// Last modification time.
    pub mtime: SystemTime,
}

/// Resolves identifiers and keeps parsed images.
pub struct Registry {
    root: PathBuf,
    suffix: String,
    images: Cache<PathBuf, Opened>,
}

impl Registry {
    /// A registry serving files under `root`; `capacity` images are kept parsed.
    pub fn new(root: &Path, suffix: &str, capacity: usize) -> Result<Registry> {
        let root = root.canonicalize().map_err(|e| {
            Error::Internal(format!(
                "image directory {} is not usable: {e}",
                root.display()
            ))
        })?;
        Ok(Registry {
            root,
            suffix: suffix.to_string(),
            images: Cache::new(capacity.max(1)),
        })
    }

    /// The canonical image root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The safe, canonical path of an identifier.
    pub fn resolve(&self, id: &str) -> Result<PathBuf> {
        self.locate(id).map(|(path, _)| path)
    }

    /// The canonical path and the file's metadata (one stat serves the regular-file check
    /// and the modification time).
    fn locate(&self, id: &str) -> Result<(PathBuf, std::fs::Metadata)> {
        if id.is_empty() {
            return Err(Error::NotFound("empty image identifier".into()));
        }
        if id.len() > MAX_ID_LEN {
            return Err(Error::bad("image identifier is too long"));
        }
        if id.contains('\0') {
            return Err(Error::bad("image identifier contains a NUL byte"));
        }
        if id.split(['/', '\\']).any(|c| c == "..") {
            return Err(Error::Forbidden(
                "image identifier may not contain '..'".into(),
            ));
        }
        let relative = id.trim_start_matches('/');
        let candidate = self.root.join(format!("{relative}{}", self.suffix));
        let canonical = candidate.canonicalize().map_err(|_| not_found(id))?;
        if !canonical.starts_with(&self.root) {
            return Err(Error::Forbidden(
                "image path leaves the image directory".into(),
            ));
        }
        match std::fs::metadata(&canonical) {
            Ok(m) if m.is_file() => Ok((canonical, m)),
            _ => Err(not_found(id)),
        }
    }

    /// Forgets every open image (SIGHUP): the next request reads each file anew.
    pub fn clear(&self) {
        self.images.clear();
    }

    /// Opens an image by id, from the cache when the file has not changed.
    pub fn open(&self, id: &str) -> Result<Opened> {
        let (path, meta) = self.locate(id)?;
        let mtime = meta.modified().map_err(|_| not_found(id))?;
        if let Some(o) = self.images.get(&path) {
            if o.mtime == mtime {
                return Ok(o);
            }
        }
        let source = open_source(&path)?;
        let opened = Opened {
            source,
            path: Arc::new(path.clone()),
            mtime,
        };
        self.images.insert(path, opened.clone());
        Ok(opened)
    }
}

fn not_found(id: &str) -> Error {
    let shown: String = id.chars().take(200).collect();
    Error::NotFound(format!("image not found: {shown}"))
}

/// Opens a file with the source for its format, recognised by its first bytes.
pub fn open_source(path: &Path) -> Result<Arc<dyn ImageSource>> {
    let bytes = Arc::new(FileBytes::open(path)?);
    let magic = crate::source::bytes::ByteSource::read_at(bytes.as_ref(), 0, 4).unwrap_or_default();
    match magic.as_slice() {
        [b'I', b'I', 42 | 43, 0] | [b'M', b'M', 0, 42 | 43] => {
            Ok(Arc::new(TiffImage::open(bytes)?))
        }
        _ => Err(Error::Unsupported("not a TIFF image".into())),
    }
}

/// Whether a file starts like a TIFF (used to list images).
pub fn looks_like_tiff(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && matches!(head, [b'I', b'I', 42 | 43, 0] | [b'M', b'M', 0, 42 | 43])
}
