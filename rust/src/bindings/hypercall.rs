//! `XenHypervisor` and its result classes in `virtkit._core`: hypercalls to
//! Xen (rust/src/hypercall/). Every call releases the GIL; results are small
//! frozen classes built once per call.

use crate::error::CoreError;
use crate::hypercall::{self as core, Hypervisor};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PyList};
use std::sync::RwLock;

/// One domain as Xen describes it (a snapshot of `xen_domctl_getdomaininfo`).
#[pyclass(frozen, module = "virtkit._core", name = "XenDomainInfo")]
pub struct XenDomainInfo {
    info: core::DomainInfo,
    page_kib: u64,
}

#[pymethods]
impl XenDomainInfo {
    /// The domain id.
    #[getter]
    fn domid(&self) -> u16 {
        self.info.domid
    }
    /// The domain's UUID (its handle), 16 raw bytes.
    #[getter]
    fn uuid<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.info.handle)
    }
    /// libvirt's virDomainState number: 0 no state (runnable), 1 running,
    /// 2 blocked, 3 paused, 4 shutting down (dying), 5 shut off (shut down,
    /// not destroyed yet), 6 crashed.
    #[getter]
    fn state(&self) -> u8 {
        self.info.state() as u8
    }
    /// The raw XEN_DOMINF_* flags.
    #[getter]
    fn flags(&self) -> u32 {
        self.info.flags
    }
    /// Xen's shutdown reason (0 poweroff, 1 reboot, 2 suspend, 3 crash,
    /// 4 watchdog, 5 soft reset) once the domain has shut down, else None.
    #[getter]
    fn shutdown_reason(&self) -> Option<u8> {
        self.info.shutdown_reason()
    }
    /// Whether it is an HVM or PVH guest.
    #[getter]
    fn hvm(&self) -> bool {
        self.info.is_hvm()
    }
    /// Pages the domain holds now.
    #[getter]
    fn tot_pages(&self) -> u64 {
        self.info.tot_pages
    }
    /// The most pages it may hold.
    #[getter]
    fn max_pages(&self) -> u64 {
        self.info.max_pages
    }
    /// Memory it holds now, KiB.
    #[getter]
    fn memory_kib(&self) -> u64 {
        self.info.tot_pages.saturating_mul(self.page_kib)
    }
    /// The most memory it may hold, KiB.
    #[getter]
    fn max_memory_kib(&self) -> u64 {
        self.info.max_pages.saturating_mul(self.page_kib)
    }
    /// vCPUs online now.
    #[getter]
    fn online_vcpus(&self) -> u32 {
        self.info.nr_online_vcpus
    }
    /// vCPUs it has (max_vcpu_id + 1).
    #[getter]
    fn vcpus(&self) -> u32 {
        self.info.nr_vcpus()
    }
    /// CPU time of all its vCPUs, nanoseconds.
    #[getter]
    fn cpu_time_ns(&self) -> u64 {
        self.info.cpu_time_ns
    }
    /// The XSM security label.
    #[getter]
    fn ssidref(&self) -> u32 {
        self.info.ssidref
    }
    /// The CPU pool it runs in.
    #[getter]
    fn cpupool(&self) -> u32 {
        self.info.cpupool
    }

    fn __repr__(&self) -> String {
        format!(
            "XenDomainInfo(domid={}, state={}, flags={:#x}, memory_kib={}, max_memory_kib={}, \
             online_vcpus={}, cpu_time_ns={})",
            self.info.domid,
            self.info.state() as u8,
            self.info.flags,
            self.memory_kib(),
            self.max_memory_kib(),
            self.info.nr_online_vcpus,
            self.info.cpu_time_ns
        )
    }
}

/// One vCPU of a domain (getvcpuinfo and its hard affinity).
#[pyclass(frozen, module = "virtkit._core", name = "XenVcpuInfo")]
pub struct XenVcpuInfo {
    /// The vCPU number.
    #[pyo3(get)]
    vcpu: u32,
    /// Online (not hot-unplugged).
    #[pyo3(get)]
    online: bool,
    /// Blocked waiting for an event.
    #[pyo3(get)]
    blocked: bool,
    /// Running on a physical CPU right now.
    #[pyo3(get)]
    running: bool,
    /// CPU time, nanoseconds.
    #[pyo3(get)]
    cpu_time_ns: u64,
    /// The physical CPU it is (or last was) on.
    #[pyo3(get)]
    cpu: u32,
    /// Physical CPUs it may run on (hard affinity), ascending.
    #[pyo3(get)]
    affinity: Vec<u32>,
}

impl From<core::VcpuInfo> for XenVcpuInfo {
    fn from(v: core::VcpuInfo) -> Self {
        XenVcpuInfo {
            vcpu: v.vcpu,
            online: v.online,
            blocked: v.blocked,
            running: v.running,
            cpu_time_ns: v.cpu_time_ns,
            cpu: v.cpu,
            affinity: v.affinity,
        }
    }
}

#[pymethods]
impl XenVcpuInfo {
    fn __repr__(&self) -> String {
        format!(
            "XenVcpuInfo(vcpu={}, online={}, blocked={}, running={}, cpu_time_ns={}, cpu={}, affinity={:?})",
            self.vcpu,
            py_bool(self.online),
            py_bool(self.blocked),
            py_bool(self.running),
            self.cpu_time_ns,
            self.cpu,
            self.affinity
        )
    }
}

fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// The host as Xen describes it (sysctl physinfo).
#[pyclass(frozen, module = "virtkit._core", name = "XenPhysInfo")]
pub struct XenPhysInfo {
    #[pyo3(get)]
    threads_per_core: u32,
    #[pyo3(get)]
    cores_per_socket: u32,
    /// CPUs online.
    #[pyo3(get)]
    nr_cpus: u32,
    #[pyo3(get)]
    max_cpu_id: u32,
    /// NUMA nodes online.
    #[pyo3(get)]
    nr_nodes: u32,
    #[pyo3(get)]
    max_node_id: u32,
    #[pyo3(get)]
    cpu_khz: u32,
    /// XEN_SYSCTL_PHYSCAP_* bits (hvm 1, pv 2, directio 4, hap 8, shadow 16).
    #[pyo3(get)]
    capabilities: u32,
    #[pyo3(get)]
    total_pages: u64,
    #[pyo3(get)]
    free_pages: u64,
    #[pyo3(get)]
    scrub_pages: u64,
    /// Xen's page size, bytes.
    #[pyo3(get)]
    page_size: u64,
    /// Total memory, KiB.
    #[pyo3(get)]
    total_kib: u64,
    /// Free memory, KiB.
    #[pyo3(get)]
    free_kib: u64,
}

impl From<core::PhysInfo> for XenPhysInfo {
    fn from(p: core::PhysInfo) -> Self {
        XenPhysInfo {
            threads_per_core: p.threads_per_core,
            cores_per_socket: p.cores_per_socket,
            nr_cpus: p.nr_cpus,
            max_cpu_id: p.max_cpu_id,
            nr_nodes: p.nr_nodes,
            max_node_id: p.max_node_id,
            cpu_khz: p.cpu_khz,
            capabilities: p.capabilities,
            total_pages: p.total_pages,
            free_pages: p.free_pages,
            scrub_pages: p.scrub_pages,
            page_size: p.page_size,
            total_kib: p.total_kib(),
            free_kib: p.free_kib(),
        }
    }
}

#[pymethods]
impl XenPhysInfo {
    fn __repr__(&self) -> String {
        format!(
            "XenPhysInfo(nr_cpus={}, cores_per_socket={}, threads_per_core={}, nr_nodes={}, \
             cpu_khz={}, total_kib={}, free_kib={})",
            self.nr_cpus,
            self.cores_per_socket,
            self.threads_per_core,
            self.nr_nodes,
            self.cpu_khz,
            self.total_kib,
            self.free_kib
        )
    }
}

/// A handle on the hypervisor: Linux's privcmd device in dom0, with the
/// interface versions detected when it opened. Every method releases the GIL.
#[pyclass(frozen, module = "virtkit._core", name = "XenHypervisor")]
pub struct XenHypervisor {
    inner: RwLock<Option<Hypervisor>>,
}

fn closed() -> PyErr {
    CoreError::System {
        call: "privcmd",
        errno: nix::libc::EBADF,
        message: "the hypervisor handle is closed".to_string(),
    }
    .into()
}

/// A domain id or vCPU number: an int that fits u32 (others become a value
/// the core refuses with InvalidArgumentError).
fn number(value: &Bound<'_, PyAny>) -> PyResult<u32> {
    match value.extract::<u32>() {
        Err(_) if value.is_instance_of::<PyInt>() => Ok(u32::MAX),
        other => other,
    }
}

impl XenHypervisor {
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&Hypervisor) -> Result<T, CoreError> + Send,
    ) -> PyResult<T> {
        let result = py.detach(|| {
            let guard = self.inner.read().unwrap_or_else(|e| e.into_inner());
            guard.as_ref().map(f)
        });
        match result {
            None => Err(closed()),
            Some(r) => Ok(r?),
        }
    }

    fn page_kib(h: &Hypervisor) -> u64 {
        (h.page_size() / 1024).max(1)
    }
}

#[pymethods]
impl XenHypervisor {
    /// Open /dev/xen/privcmd (or /proc/xen/privcmd) and detect the domctl and
    /// sysctl interface versions (xen-protocols.md section 3): the table's
    /// entry for the running release first, then every version it knows.
    /// ``prefer=(domctl, sysctl)`` is tried before anything else.
    ///
    /// Raises VirtSystemError (errno ENOENT) when this is not a Xen dom0,
    /// EACCES without root; XenCallError when Xen refuses the probes (errno
    /// EACCES: an interface version not in the table).
    #[staticmethod]
    #[pyo3(signature = (*, prefer=None))]
    fn open(py: Python<'_>, prefer: Option<(u32, u32)>) -> PyResult<XenHypervisor> {
        let hv = py.detach(|| Hypervisor::open(prefer))?;
        Ok(XenHypervisor {
            inner: RwLock::new(Some(hv)),
        })
    }

    /// Close the privcmd device; later calls raise VirtSystemError (EBADF).
    fn close(&self, py: Python<'_>) {
        let taken = py.detach(|| self.inner.write().unwrap_or_else(|e| e.into_inner()).take());
        drop(taken);
    }

    /// The domctl interface version in use.
    #[getter]
    fn domctl_version(&self, py: Python<'_>) -> PyResult<u32> {
        self.with(py, |h| Ok(h.interface().domctl))
    }

    /// The sysctl interface version in use.
    #[getter]
    fn sysctl_version(&self, py: Python<'_>) -> PyResult<u32> {
        self.with(py, |h| Ok(h.interface().sysctl))
    }

    /// The release of the version table the interface matched ("4.17"), or
    /// None when the versions matched no entry's pair.
    #[getter]
    fn release(&self, py: Python<'_>) -> PyResult<Option<String>> {
        self.with(py, |h| {
            Ok(h.interface()
                .release
                .map(|r| format!("{}.{}", r.major, r.minor)))
        })
    }

    /// Every probe detection made: (``"sysctl"`` or ``"domctl"``, version,
    /// errno; 0 = accepted), in order.
    #[getter]
    fn probes(&self, py: Python<'_>) -> PyResult<Vec<(&'static str, u32, i32)>> {
        self.with(py, |h| {
            Ok(h.interface()
                .probes
                .iter()
                .map(|p| (p.kind.name(), p.version, p.errno))
                .collect())
        })
    }

    /// Xen's page size in bytes.
    #[getter]
    fn page_size(&self, py: Python<'_>) -> PyResult<u64> {
        self.with(py, |h| Ok(h.page_size()))
    }

    /// Whether hypercall buffers come from /dev/xen/hypercall (else locked
    /// anonymous pages).
    #[getter]
    fn buffer_device(&self, py: Python<'_>) -> PyResult<bool> {
        self.with(py, |h| Ok(h.uses_buffer_device()))
    }

    /// ``(major, minor, extra)``, e.g. ``(4, 17, ".5")`` (xen_version).
    fn xen_version(&self, py: Python<'_>) -> PyResult<(u32, u32, String)> {
        let v = self.with(py, |h| h.xen_version())?;
        Ok((v.major, v.minor, v.extra))
    }

    /// The host's CPUs and memory (sysctl physinfo).
    fn physinfo(&self, py: Python<'_>) -> PyResult<XenPhysInfo> {
        Ok(self.with(py, |h| h.physinfo())?.into())
    }

    /// Every domain, ordered by id, in one hypercall (sysctl getdomaininfolist).
    fn domain_list(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        let (infos, page_kib) = self.with(py, |h| Ok((h.domain_list()?, Self::page_kib(h))))?;
        let items = infos
            .into_iter()
            .map(|info| Py::new(py, XenDomainInfo { info, page_kib }))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(PyList::new(py, items)?.unbind())
    }

    /// One domain (domctl getdomaininfo). Raises XenCallError with errno
    /// ESRCH when there is no such domain, InvalidArgumentError for an id
    /// outside 0..0x7fef.
    fn domain_info(&self, py: Python<'_>, domid: &Bound<'_, PyAny>) -> PyResult<XenDomainInfo> {
        let domid = number(domid)?;
        let (info, page_kib) = self.with(py, |h| Ok((h.domain_info(domid)?, Self::page_kib(h))))?;
        Ok(XenDomainInfo { info, page_kib })
    }

    /// Pause every vCPU of the domain (domctl pausedomain).
    fn pause(&self, py: Python<'_>, domid: &Bound<'_, PyAny>) -> PyResult<()> {
        let domid = number(domid)?;
        self.with(py, |h| h.pause(domid))
    }

    /// Let a paused domain run again (domctl unpausedomain).
    fn unpause(&self, py: Python<'_>, domid: &Bound<'_, PyAny>) -> PyResult<()> {
        let domid = number(domid)?;
        self.with(py, |h| h.unpause(domid))
    }

    /// Destroy the domain at once (domctl destroydomain). The toolstack's
    /// clean-up (backends, xenstore entries) is not done: that is xl's job.
    fn destroy(&self, py: Python<'_>, domid: &Bound<'_, PyAny>) -> PyResult<()> {
        let domid = number(domid)?;
        self.with(py, |h| h.destroy(domid))
    }

    /// Set the most memory the domain may have, in KiB (domctl max_mem).
    fn set_max_mem(&self, py: Python<'_>, domid: &Bound<'_, PyAny>, kib: u64) -> PyResult<()> {
        let domid = number(domid)?;
        self.with(py, |h| h.set_max_mem(domid, kib))
    }

    /// The CPUs vCPU ``vcpu`` may run on (hard affinity), ascending.
    fn get_vcpu_affinity(
        &self,
        py: Python<'_>,
        domid: &Bound<'_, PyAny>,
        vcpu: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<u32>> {
        let (domid, vcpu) = (number(domid)?, number(vcpu)?);
        self.with(py, |h| h.vcpu_affinity(domid, vcpu))
    }

    /// Pin vCPU ``vcpu`` to ``cpus`` (hard affinity); returns the affinity
    /// in effect. XenCallError (EINVAL) for an empty list or a CPU the host
    /// does not have, before Xen is asked.
    fn set_vcpu_affinity(
        &self,
        py: Python<'_>,
        domid: &Bound<'_, PyAny>,
        vcpu: &Bound<'_, PyAny>,
        cpus: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<u32>> {
        let (domid, vcpu) = (number(domid)?, number(vcpu)?);
        let cpus = cpus
            .try_iter()?
            .map(|c| number(&c?))
            .collect::<PyResult<Vec<u32>>>()?;
        self.with(py, |h| h.set_vcpu_affinity(domid, vcpu, &cpus))
    }

    /// One vCPU: state, CPU time, CPU, affinity (domctl getvcpuinfo,
    /// getvcpuaffinity).
    fn vcpu_info(
        &self,
        py: Python<'_>,
        domid: &Bound<'_, PyAny>,
        vcpu: &Bound<'_, PyAny>,
    ) -> PyResult<XenVcpuInfo> {
        let (domid, vcpu) = (number(domid)?, number(vcpu)?);
        Ok(self.with(py, |h| h.vcpu_info(domid, vcpu))?.into())
    }

    /// Every vCPU of the domain, in one call.
    fn vcpu_infos(&self, py: Python<'_>, domid: &Bound<'_, PyAny>) -> PyResult<Vec<XenVcpuInfo>> {
        let domid = number(domid)?;
        let infos = self.with(py, |h| h.vcpu_infos(domid))?;
        Ok(infos.into_iter().map(XenVcpuInfo::from).collect())
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        self.with(py, |h| {
            let i = h.interface();
            Ok(format!(
                "XenHypervisor(xen={}.{}, domctl={:#x}, sysctl={:#x})",
                h.version().0,
                h.version().1,
                i.domctl,
                i.sysctl
            ))
        })
        .unwrap_or_else(|_| "XenHypervisor(closed)".to_string())
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<XenHypervisor>()?;
    m.add_class::<XenDomainInfo>()?;
    m.add_class::<XenVcpuInfo>()?;
    m.add_class::<XenPhysInfo>()?;
    Ok(())
}
