//! Why a request cannot be parsed into a view: the protocol parsers' one error type,
//! classified by what the client asked (the server maps it to an HTTP status).

/// A request the parsers refuse. The text is a one-line reason safe to show to a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Malformed, or out of range.
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed, for something that does not exist (a page, a band, a view).
    #[error("{0}")]
    NotFound(String),
    /// Well-formed, for a feature this server does not implement.
    #[error("{0}")]
    Unsupported(String),
}

impl RequestError {
    /// Shorthand for a [`RequestError::BadRequest`] with a formatted reason.
    pub fn bad(reason: impl Into<String>) -> Self {
        RequestError::BadRequest(reason.into())
    }
}

/// Result of parsing a request.
pub type Result<T> = std::result::Result<T, RequestError>;

#[cfg(test)]
impl RequestError {
    /// The status the server answers with (its `error` module is where errors meet HTTP;
    /// this mirror lets the parsers' tests speak in statuses).
    pub(crate) fn status(&self) -> u16 {
        match self {
            RequestError::BadRequest(_) => 400,
            RequestError::NotFound(_) => 404,
            RequestError::Unsupported(_) => 501,
        }
    }
}
