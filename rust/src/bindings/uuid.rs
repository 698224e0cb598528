//! `uuid_*` functions of `virtkit._core`.

use crate::uuid as core;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// Parse any accepted UUID spelling; return the 16 raw bytes.
#[pyfunction]
fn uuid_parse<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyBytes>> {
    let raw = core::parse(text)?;
    Ok(PyBytes::new(py, &raw))
}

/// Canonical (lower-case, dashed) form of 16 raw bytes.
#[pyfunction]
fn uuid_format(raw: &[u8]) -> PyResult<String> {
    Ok(core::format(&core::from_slice(raw)?))
}

/// Parse any accepted spelling and return the canonical form.
#[pyfunction]
fn uuid_normalize(text: &str) -> PyResult<String> {
    Ok(core::format(&core::parse(text)?))
}

/// A new random (version 4) UUID, 16 raw bytes, from the OS's randomness.
#[pyfunction]
fn uuid_generate<'py>(py: Python<'py>) -> Bound<'py, PyBytes> {
    PyBytes::new(py, &core::generate_v4())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(uuid_parse, m)?)?;
    m.add_function(wrap_pyfunction!(uuid_format, m)?)?;
    m.add_function(wrap_pyfunction!(uuid_normalize, m)?)?;
    m.add_function(wrap_pyfunction!(uuid_generate, m)?)?;
    Ok(())
}
