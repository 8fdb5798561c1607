//! Errors of the request layer, classified by who is at fault, and mapped to an HTTP
//! status in exactly one place ([`Error::status`]).
//!
//! Lower layers (image sources, codecs) have their own [`iipsrv_formats::error::SourceError`];
//! it converts into this type so that a corrupt file and a bad request never share a status.

use iipsrv_core::error::RequestError;
use iipsrv_formats::error::SourceError;

/// A failed request: the variant says whose fault it is, the text is a one-line reason
/// that is safe to show to a client (it never holds an absolute filesystem path).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or asks for something out of range (400).
    #[error("{0}")]
    BadRequest(String),
    /// The request is refused for safety reasons, e.g. a path escaping the image directory (403).
    #[error("{0}")]
    Forbidden(String),
    /// The image or resource does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The method is not one the server answers (405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A well-formed request for a feature this server does not implement (501).
    #[error("{0}")]
    Unsupported(String),
    /// The image file is corrupt or cannot be read (500).
    #[error("{0}")]
    BadImage(String),
    /// The server cannot answer now (the decode pool is saturated, the image directory
    /// cannot be read); the client should retry later (503).
    #[error("{0}")]
    Overloaded(String),
    /// The image is being prepared (its pyramid is being built) and cannot give this
    /// answer yet (503, with Retry-After in seconds).
    #[error("{reason}")]
    Preparing {
        /// Why, safe to show: no path, no file name.
        reason: String,
        /// Seconds after which another try may succeed.
        retry_after: u32,
    },
    /// The object store or HTTP server holding the image failed (502): another try, or
    /// another instance, may succeed.
    #[error("{0}")]
    Upstream(String),
    /// A request for an admin endpoint without the right token (401).
    #[error("{0}")]
    Unauthorized(String),
    /// An image the access policy does not let this caller see, or not this large (401):
    /// the same answer whether the image exists or not.
    #[error("{reason}")]
    Denied {
        /// Why, the same text for every image.
        reason: String,
        /// The URL of the image's IIIF probe service, where a client learns how to get
        /// access (sent as a Link header); None when its rule has no access service.
        probe: Option<String>,
    },
    /// A bug or an unexpected I/O failure (500).
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// The HTTP status code for this error: the only place errors meet HTTP.
    pub fn status(&self) -> u16 {
        match self {
            Error::BadRequest(_) => 400,
            Error::Unauthorized(_) | Error::Denied { .. } => 401,
            Error::Forbidden(_) => 403,
            Error::NotFound(_) => 404,
            Error::MethodNotAllowed(_) => 405,
            Error::Unsupported(_) => 501,
            Error::BadImage(_) | Error::Internal(_) => 500,
            Error::Upstream(_) => 502,
            Error::Overloaded(_) | Error::Preparing { .. } => 503,
        }
    }

    /// Seconds after which a 503 may be tried again (its Retry-After); None for other
    /// errors.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            Error::Preparing { retry_after, .. } => Some(*retry_after),
            Error::Overloaded(_) => Some(1),
            _ => None,
        }
    }

    /// The WWW-Authenticate challenge of a 401: the admin token's, or the images'.
    pub(crate) fn challenge(&self) -> Option<&'static str> {
        match self {
            Error::Unauthorized(_) => Some("Bearer realm=\"iipsrv admin\""),
            Error::Denied { .. } => Some("Bearer realm=\"iipsrv images\""),
            _ => None,
        }
    }

    /// The 401 of an image the caller may not see (or that is not there, under a
    /// restricted rule): one text for both.
    pub(crate) fn denied() -> Self {
        Error::denied_with_probe(None)
    }

    /// [`Error::denied`] naming the image's probe service.
    pub(crate) fn denied_with_probe(probe: Option<String>) -> Self {
        Error::Denied {
            reason: "access to this image needs authorisation".into(),
            probe,
        }
    }

    /// The Link header of a 401: the image's probe service.
    pub(crate) fn probe_link(&self) -> Option<String> {
        match self {
            Error::Denied {
                probe: Some(url), ..
            } => Some(format!("<{url}>; rel=\"service\"")),
            _ => None,
        }
    }

    /// The 404 of an image that is not there, naming the id as asked (at most 200
    /// characters), the same for files and objects.
    pub(crate) fn image_not_found(id: &str) -> Self {
        let shown: String = id.chars().take(200).collect();
        Error::NotFound(format!("image not found: {shown}"))
    }

    /// Shorthand for a [`Error::BadRequest`] with a formatted reason.
    pub fn bad(reason: impl Into<String>) -> Self {
        Error::BadRequest(reason.into())
    }
}

impl From<SourceError> for Error {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::Unsupported { feature } => Error::Unsupported(feature),
            SourceError::Corrupt { what, .. } | SourceError::Limit { what, .. } => {
                Error::BadImage(what)
            }
            e @ (SourceError::Io { .. } | SourceError::Decoder { .. }) => {
                Error::Internal(e.to_string())
            }
            SourceError::Remote { reason } => Error::Upstream(reason),
            e @ SourceError::NoSuchPage { .. } => Error::NotFound(e.to_string()),
        }
    }
}

/// The reason phrase of a status code, for front ends that write status lines themselves
/// (FastCGI `Status:`); every status the handler answers with has one.
pub(crate) fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        303 => "See Other",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// How a request stops short of its answer: it failed, or — on the quick path only — it
/// needs work that the connection's own thread must not do (opening a file, decoding,
/// the network), so the dispatcher hands it to the worker pool. The second is control
/// flow, kept apart from [`Error`] so that no error means "try elsewhere".
#[derive(Debug)]
pub enum Halt {
    /// The request failed.
    Failed(Error),
    /// The quick attempt stops here; a worker answers the request.
    NeedsWorker,
}

impl Halt {
    /// The error of a step run with the whole budget, where nothing halts for a worker
    /// (a halt there would be a bug, answered as an internal error).
    pub(crate) fn into_error(self) -> Error {
        match self {
            Halt::Failed(e) => e,
            Halt::NeedsWorker => Error::Internal("the answer needs a worker".into()),
        }
    }
}

impl<E: Into<Error>> From<E> for Halt {
    fn from(e: E) -> Self {
        Halt::Failed(e.into())
    }
}

/// Result of a step that may halt for a worker.
pub(crate) type Flow<T> = std::result::Result<T, Halt>;

impl From<RequestError> for Error {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::BadRequest(m) => Error::BadRequest(m),
            RequestError::NotFound(m) => Error::NotFound(m),
            RequestError::Unsupported(m) => Error::Unsupported(m),
        }
    }
}

/// Result of the request layer.
pub type Result<T> = std::result::Result<T, Error>;
