//! All PyO3 glue: conversions between Python objects and the pure-Rust core.
//! Nothing here holds logic of its own beyond argument handling.

mod errors;
mod hypercall;
mod poll;
mod sexpr;
mod uuid;

use pyo3::prelude::*;

/// Add every function and class of `virtkit._core` to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    uuid::register(m)?;
    sexpr::register(m)?;
    poll::register(m)?;
    hypercall::register(m)?;
    Ok(())
}
