//! virtkit's Rust core, exposed to Python as `virtkit._core`.
//!
//! The pure-Rust modules (`uuid`, `sexpr`, `poll`, `affinity`, `hypercall`, `error`) carry no
//! PyO3 imports and are tested by `cargo test` without Python; all glue lives in `bindings`.

pub mod affinity;
pub mod error;
pub mod hypercall;
pub mod poll;
pub mod sexpr;
pub mod uuid;

#[cfg(feature = "python")]
mod bindings;

#[cfg(feature = "python")]
#[pyo3::pymodule(name = "_core")]
fn core_module(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
    bindings::register(m)
}
