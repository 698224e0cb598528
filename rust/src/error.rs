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
    /// A system call failed (or would fail: arguments the kernel refuses are
    /// reported the same way, e.g. `EINVAL` for a CPU that does not exist).
    System {
        /// The system call, e.g. `sched_setaffinity`.
        call: &'static str,
        /// The `errno` value.
        errno: i32,
        /// What was being done, e.g. `cannot read /proc/42/stat`.
        message: String,
    },
    /// A hypercall that Xen refused (its return value was `-errno`), or a
    /// hypervisor virtkit cannot talk to (an interface version it does not know).
    Xen {
        /// The hypercall, e.g. `domctl pausedomain`.
        call: &'static str,
        /// The `errno` Xen returned.
        errno: i32,
        /// What was being done, e.g. `cannot pause domain 3`.
        message: String,
    },
    /// Data the kernel provides (a `/proc` file) that does not have the
    /// expected format.
    ProcFormat {
        /// The file that was read.
        path: String,
        /// What was wrong with it.
        reason: &'static str,
    },
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
            CoreError::System {
                call,
                errno,
                message,
            } => write!(
                f,
                "{message}: {call}: {}",
                nix::errno::Errno::from_raw(*errno).desc()
            ),
            CoreError::Xen {
                call,
                errno,
                message,
            } => write!(
                f,
                "{message}: {call}: {}",
                nix::errno::Errno::from_raw(*errno).desc()
            ),
            CoreError::ProcFormat { path, reason } => {
                write!(f, "cannot parse {path}: {reason}")
            }
        }
    }
}

impl std::error::Error for CoreError {}

impl CoreError {
    /// A failed system call, from the `errno` nix reports.
    pub fn system(call: &'static str, errno: nix::errno::Errno, message: String) -> CoreError {
        CoreError::System {
            call,
            errno: errno as i32,
            message,
        }
    }

    /// A failed system call, from an I/O error of the standard library
    /// (`EIO` when the error carries no `errno`).
    pub fn from_io(call: &'static str, err: &std::io::Error, message: String) -> CoreError {
        CoreError::System {
            call,
            errno: err.raw_os_error().unwrap_or(nix::libc::EIO),
            message,
        }
    }

    /// The `errno` of a [`CoreError::System`] or [`CoreError::Xen`], `None`
    /// for every other variant.
    pub fn errno(&self) -> Option<i32> {
        match self {
            CoreError::System { errno, .. } | CoreError::Xen { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// Result alias used throughout the core.
pub type CoreResult<T> = Result<T, CoreError>;
