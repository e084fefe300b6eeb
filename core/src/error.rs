//! Errors, split by who is at fault: the peer or the local user of the API.

/// The peer broke the protocol. The connection cannot continue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The request could not be parsed, or is ambiguous (RFC 9112 §2.2, §6.3).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// The request-line exceeded the configured limit.
    #[error("request-line too long")]
    UriTooLong,
    /// The header section exceeded the configured size or count limit.
    #[error("request header fields too large")]
    HeadersTooLarge,
    /// The request body exceeded the configured limit.
    #[error("request body too large")]
    BodyTooLarge,
    /// A transfer coding the server does not implement (RFC 9112 §6.1).
    #[error("transfer-coding not implemented")]
    NotImplemented,
    /// The HTTP version is not 1.0 or 1.1.
    #[error("http version not supported")]
    VersionNotSupported,
    /// The peer closed the connection in the middle of a message.
    #[error("connection closed mid-message")]
    IncompleteMessage,
    /// The request head did not arrive in time (the driver's timer).
    #[error("request head timed out")]
    RequestTimeout,
}

impl PeerError {
    /// The HTTP status a server should answer with, when it still can.
    pub fn status_hint(&self) -> u16 {
        match self {
            Self::BadRequest(_) | Self::IncompleteMessage => 400,
            Self::UriTooLong => 414,
            Self::HeadersTooLarge => 431,
            Self::BodyTooLarge => 413,
            Self::NotImplemented => 501,
            Self::VersionNotSupported => 505,
            Self::RequestTimeout => 408,
        }
    }
}

/// The local side (the driver or the application) misused the API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    /// A call that the current state does not allow.
    #[error("{0}")]
    InvalidState(&'static str),
    /// An invalid value, such as a bad header name or status code.
    #[error("{0}")]
    InvalidValue(String),
    /// More body bytes than the declared Content-Length, or fewer at the end.
    #[error("response body length does not match content-length")]
    LengthMismatch,
}
