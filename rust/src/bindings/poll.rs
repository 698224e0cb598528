//! `ProcessStats`, `ThreadStats`, `poll_processes` and the thread affinity
//! functions of `virtkit._core`.
//!
//! The stats are frozen classes holding plain Rust values: building one is a
//! single allocation, and a field becomes a Python object only when it is
//! read. (A tuple would build every int and str up front, most of which a
//! poll loop never looks at.)

use crate::affinity;
use crate::error::CoreError;
use crate::poll::{self as core, Poller};
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyList, PyString, PyTuple};

/// One thread of a polled process (a snapshot).
#[pyclass(frozen, module = "virtkit._core", name = "ThreadStats")]
pub struct ThreadStats {
    /// Thread id (the main thread's equals the process id).
    #[pyo3(get)]
    tid: i32,
    /// The thread's name (comm), e.g. `CPU 0/KVM` for a QEMU vCPU thread.
    #[pyo3(get)]
    name: String,
    /// Scheduler state letter (R, S, D, Z, T...).
    #[pyo3(get)]
    state: char,
    /// CPU time, user plus system, in nanoseconds (one-tick resolution).
    #[pyo3(get)]
    cpu_time_ns: u64,
    /// The CPU the thread last ran on.
    #[pyo3(get)]
    processor: u32,
    /// The CPUs the thread may run on, ascending (a new list on each read).
    #[pyo3(get)]
    affinity: Vec<u32>,
}

#[pymethods]
impl ThreadStats {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "ThreadStats(tid={}, name={}, state='{}', cpu_time_ns={}, processor={}, affinity={:?})",
            self.tid,
            py_repr(py, &self.name)?,
            self.state,
            self.cpu_time_ns,
            self.processor,
            self.affinity
        ))
    }
}

/// Python's repr of a str (names may hold quotes and control characters).
fn py_repr(py: Python<'_>, s: &str) -> PyResult<String> {
    Ok(PyString::new(py, s).repr()?.to_cow()?.into_owned())
}

impl From<core::ThreadStats> for ThreadStats {
    fn from(t: core::ThreadStats) -> Self {
        ThreadStats {
            tid: t.tid,
            name: t.name,
            state: t.state,
            cpu_time_ns: t.cpu_time_ns,
            processor: t.processor,
            affinity: t.affinity,
        }
    }
}

/// One polled process (a snapshot).
#[pyclass(frozen, module = "virtkit._core", name = "ProcessStats")]
pub struct ProcessStats {
    /// Process id.
    #[pyo3(get)]
    pid: i32,
    /// The process's name (its main thread's comm).
    #[pyo3(get)]
    name: String,
    /// Scheduler state letter of the main thread (Z for a zombie).
    #[pyo3(get)]
    state: char,
    /// CPU time of all threads, user plus system, in nanoseconds.
    #[pyo3(get)]
    cpu_time_ns: u64,
    /// User part of cpu_time_ns.
    #[pyo3(get)]
    user_time_ns: u64,
    /// System part of cpu_time_ns.
    #[pyo3(get)]
    system_time_ns: u64,
    /// Start time in nanoseconds since boot: tells a process from a later one
    /// reusing its pid.
    #[pyo3(get)]
    start_time_ns: u64,
    /// Resident memory in KiB.
    #[pyo3(get)]
    rss_kib: u64,
    /// The live threads, main thread first.
    #[pyo3(get)]
    threads: Py<PyTuple>,
}

#[pymethods]
impl ProcessStats {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "ProcessStats(pid={}, name={}, state='{}', cpu_time_ns={}, rss_kib={}, threads={})",
            self.pid,
            py_repr(py, &self.name)?,
            self.state,
            self.cpu_time_ns,
            self.rss_kib,
            self.threads.bind(py).len()
        ))
    }
}

fn process_stats(py: Python<'_>, p: core::ProcessStats) -> PyResult<ProcessStats> {
    let threads = p
        .threads
        .into_iter()
        .map(|t| Py::new(py, ThreadStats::from(t)))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(ProcessStats {
        pid: p.pid,
        name: p.name,
        state: p.state,
        cpu_time_ns: p.cpu_time_ns,
        user_time_ns: p.user_time_ns,
        system_time_ns: p.system_time_ns,
        start_time_ns: p.start_time_ns,
        rss_kib: p.rss_kib,
        threads: PyTuple::new(py, threads)?.unbind(),
    })
}

/// A process or thread id: a positive int that fits a `pid_t`.
fn id_of(value: &Bound<'_, PyAny>, what: &str) -> PyResult<i32> {
    if value.is_instance_of::<PyInt>() {
        if let Ok(id) = value.extract::<i32>() {
            if id > 0 {
                return Ok(id);
            }
        }
        return Err(CoreError::InvalidArgument(format!(
            "a {what} id is a positive number that fits a pid_t, not {value}"
        ))
        .into());
    }
    // Not an int at all: the usual TypeError.
    value.extract()
}

/// A CPU number; ints beyond i64 become one that cannot exist, so that they
/// are refused like every other CPU that does not exist.
fn cpu_of(value: &Bound<'_, PyAny>) -> PyResult<i64> {
    match value.extract::<i64>() {
        Err(_) if value.is_instance_of::<PyInt>() => Ok(i64::MAX),
        other => other,
    }
}

/// Stats of every process in `pids`, read from /proc with the GIL released
/// (proc(5): /proc/PID/stat, /proc/PID/task/TID/stat; sched_getaffinity(2)).
///
/// One slot per pid, in order: a ProcessStats; None when the process does not
/// exist (or vanishes while it is read); or, when its /proc data cannot be
/// read or parsed, the VirtError instance (not raised) for that pid alone.
/// Raises InvalidArgumentError for an id that is not a positive pid_t.
#[pyfunction]
fn poll_processes(py: Python<'_>, pids: &Bound<'_, PyAny>) -> PyResult<Py<PyList>> {
    let pids = pids
        .try_iter()?
        .map(|pid| id_of(&pid?, "process"))
        .collect::<PyResult<Vec<i32>>>()?;
    let results = py.detach(|| Poller::new().map(|mut poller| poller.poll_many(&pids)))?;
    let slots = results
        .into_iter()
        .map(|result| -> PyResult<Py<PyAny>> {
            Ok(match result {
                Ok(Some(stats)) => Py::new(py, process_stats(py, stats)?)?.into_any(),
                Ok(None) => py.None(),
                Err(err) => PyErr::from(err).into_value(py).into_any(),
            })
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok(PyList::new(py, slots)?.unbind())
}

/// The CPUs thread `tid` may run on, ascending (sched_getaffinity(2)).
///
/// Raises VirtSystemError (errno ESRCH) when no such thread exists,
/// InvalidArgumentError for an id that is not a positive pid_t.
#[pyfunction]
fn get_thread_affinity(py: Python<'_>, tid: &Bound<'_, PyAny>) -> PyResult<Vec<u32>> {
    let tid = id_of(tid, "thread")?;
    Ok(py.detach(|| affinity::get_thread_affinity(tid))?)
}

/// Let thread `tid` run on exactly the CPUs in `cpus` (sched_setaffinity(2)).
///
/// Raises VirtSystemError with errno EINVAL, changing nothing, when `cpus` is
/// empty or names a CPU that does not exist or is offline; ESRCH when no such
/// thread exists; EPERM without the right to change it.
#[pyfunction]
fn set_thread_affinity(
    py: Python<'_>,
    tid: &Bound<'_, PyAny>,
    cpus: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let tid = id_of(tid, "thread")?;
    let cpus = cpus
        .try_iter()?
        .map(|cpu| cpu_of(&cpu?))
        .collect::<PyResult<Vec<i64>>>()?;
    Ok(py.detach(|| affinity::set_thread_affinity(tid, &cpus))?)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ProcessStats>()?;
    m.add_class::<ThreadStats>()?;
    m.add_function(wrap_pyfunction!(poll_processes, m)?)?;
    m.add_function(wrap_pyfunction!(get_thread_affinity, m)?)?;
    m.add_function(wrap_pyfunction!(set_thread_affinity, m)?)?;
    Ok(())
}
