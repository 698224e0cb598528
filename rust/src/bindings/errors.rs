//! The single mapping from the core's [`CoreError`] to the exception classes
//! that Python owns in `virtkit.errors`.

use crate::error::CoreError;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

fn build(py: Python<'_>, err: &CoreError) -> PyResult<PyErr> {
    let errors = py.import("virtkit.errors")?;
    let message = err.to_string();
    let kwargs = PyDict::new(py);
    let class = match err {
        CoreError::InvalidUuid { .. } => "InvalidUUIDError",
        CoreError::SexprSyntax {
            offset, expected, ..
        } => {
            kwargs.set_item("offset", *offset)?;
            kwargs.set_item("expected", *expected)?;
            "SExprSyntaxError"
        }
        CoreError::SexprValue { path, .. } => {
            kwargs.set_item("path", path)?;
            "SExprValueError"
        }
        CoreError::InvalidArgument(_) => "InvalidArgumentError",
        CoreError::System { call, errno, .. } => {
            kwargs.set_item("errno", *errno)?;
            kwargs.set_item("str1", *call)?;
            "VirtSystemError"
        }
        CoreError::Xen { call, errno, .. } => {
            kwargs.set_item("errno", *errno)?;
            kwargs.set_item("str1", *call)?;
            "XenCallError"
        }
        // libvirt reports unparsable /proc data as an internal error.
        CoreError::ProcFormat { path, .. } => {
            kwargs.set_item("str1", path)?;
            "VirtError"
        }
    };
    let instance = errors.getattr(class)?.call((message,), Some(&kwargs))?;
    Ok(PyErr::from_value(instance))
}

impl From<CoreError> for PyErr {
    fn from(err: CoreError) -> PyErr {
        Python::attach(|py| {
            build(py, &err).unwrap_or_else(|import_failure| {
                // virtkit.errors could not be imported: never lose the message.
                let e = PyRuntimeError::new_err(err.to_string());
                e.set_cause(py, Some(import_failure));
                e
            })
        })
    }
}
