//! The one place that turns error kinds into HTTP status codes and
//! `{"message": ...}` bodies.

use berth_actors::{ErrorKind, HasKind};
use hyper::StatusCode;

/// An error answered to an API client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: berth_actors::os_error::as_go(&message.into()),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidParameter, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn system(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::System, message)
    }
    /// From any berth error: its kind decides the status.
    pub fn from_err<E: HasKind + std::fmt::Display>(e: &E) -> Self {
        Self::new(e.kind(), e.to_string())
    }
    pub fn status(&self) -> StatusCode {
        status_for(self.kind)
    }
}

impl HasKind for ApiError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// Kind → status, as moby's httpstatus package maps errdefs classes.
pub fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidParameter => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::NotModified => StatusCode::NOT_MODIFIED,
        ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::System => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_status() {
        let all = [
            (ErrorKind::InvalidParameter, 400),
            (ErrorKind::Unauthorized, 401),
            (ErrorKind::Forbidden, 403),
            (ErrorKind::NotFound, 404),
            (ErrorKind::Conflict, 409),
            (ErrorKind::TooLarge, 413),
            (ErrorKind::NotModified, 304),
            (ErrorKind::NotImplemented, 501),
            (ErrorKind::Unavailable, 503),
            (ErrorKind::System, 500),
        ];
        for (k, s) in all {
            assert_eq!(status_for(k).as_u16(), s);
            assert_eq!(ApiError::new(k, "x").status().as_u16(), s);
        }
    }
}
