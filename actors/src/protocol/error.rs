//! Error kinds. Every error of berth has exactly one kind; the API layer maps
//! kinds to HTTP status codes in one place (`src/api/errors.rs`).

/// The classes of failure a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed or names an invalid value (400).
    InvalidParameter,
    /// Credentials are missing or wrong (401).
    Unauthorized,
    /// The caller may not do this (403).
    Forbidden,
    /// The named object does not exist (404).
    NotFound,
    /// The object's state forbids the operation (409).
    Conflict,
    /// Nothing to do: the object is already in the asked state (304).
    NotModified,
    /// The request is too large to handle (413).
    TooLarge,
    /// The feature exists in the API but not (yet) in berth (501).
    NotImplemented,
    /// A dependency is temporarily unavailable (503).
    Unavailable,
    /// Anything else: a host or internal failure (500).
    System,
}

/// Implemented by every error enum of berth.
pub trait HasKind {
    fn kind(&self) -> ErrorKind;
}
