//! Errors of image sources and codecs, classified by what went wrong with the file (not by
//! HTTP status: the server maps them in one place).

/// Why a source could not answer. Converted to the request layer's error by the caller.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// The file is valid but uses a feature we do not read (a compression, a layout).
    #[error("{0}")]
    Unsupported(String),
    /// The file is damaged: a bad header, offsets past the end, undecodable data.
    #[error("{0}")]
    Corrupt(String),
    /// The file asks for more than the configured limits (huge tiles, too many entries).
    #[error("{0}")]
    Limit(String),
    /// The object store or HTTP server holding the image failed or could not be reached.
    #[error("{0}")]
    Remote(String),
    /// A page the image does not have (multi-page TIFF stacks).
    #[error("no page {0} in this image")]
    NoSuchPage(usize),
    /// Reading failed.
    #[error("{0}")]
    Io(String),
}

/// Result of a source operation.
pub type SourceResult<T> = Result<T, SourceError>;
