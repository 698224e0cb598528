//! The one error type of the pure-Rust core.
//!
//! Every fallible function in `uuid`, `sexpr` (and later modules) returns
//! [`CoreError`]. The PyO3 glue maps it, in one place, onto the exception
//! classes that Python owns (`virtkit.errors`).

use std::fmt;

/// What went wrong, with enough detail for a message a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoreError {
    /// A UUID string or byte string that is not a UUID.
    InvalidUuid {
        /// Why it was refused.
        reason: String,
    },
    /// Malformed S-expression text.
    SexprSyntax {
        /// Byte offset into the input where the problem was seen.
        offset: usize,
        /// What the parser expected there.
        expected: &'static str,
        /// What it found instead (a short, printable description).
        found: String,
    },
    /// A value was present but not of the requested type (e.g. not an integer).
    SexprValue {
        /// The look-up path.
        path: String,
        /// The value that was found.
        value: String,
        /// The type that was asked for.
        expected: &'static str,
    },
    /// A malformed argument from the caller (e.g. an empty look-up path).
    InvalidArgument(String),
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::InvalidUuid { reason } => write!(f, "invalid UUID: {reason}"),
            CoreError::SexprSyntax {
                offset,
                expected,
                found,
            } => write!(
                f,
                "malformed S-expression at byte {offset}: expected {expected}, found {found}"
            ),
            CoreError::SexprValue {
                path,
                value,
                expected,
            } => write!(f, "value {value:?} at '{path}' is not {expected}"),
            CoreError::InvalidArgument(msg) => write!(f, "invalid argument: {msg}"),
        }
    }
}

impl std::error::Error for CoreError {}

/// Result alias used throughout the core.
pub type CoreResult<T> = Result<T, CoreError>;
