//! The hypercalls virtkit makes, as typed operations on an open [`Hypervisor`].
//!
//! Every operation writes its `xen_domctl` / `xen_sysctl` into the handle's
//! hypercall buffer (and any array the call points to right behind it), makes
//! one privcmd hypercall and reads the answer back. One buffer per handle,
//! behind a mutex: calls on one handle are serialised, as with libxc's
//! per-handle buffer cache. Nothing here panics on what Xen answers.

use std::sync::Mutex;

use nix::errno::Errno;

use super::abi::{self, Domctl, DomctlPayload, Sysctl, SysctlPayload};
use super::privcmd::{HypercallBuffer, Privcmd};
use super::versions::{self, DomainInfoLayout, Interface, PhysinfoLayout};
use crate::error::{CoreError, CoreResult};

/// Where arrays go in the buffer: right after the (at most 144-byte) op.
const DATA_OFFSET: usize = 256;
/// Start with room for this many domain info records.
const INITIAL_DOMAINS: usize = 64;
/// Every domain id below DOMID_FIRST_RESERVED: the most a list can hold.
const MAX_DOMAINS: usize = abi::DOMID_FIRST_RESERVED as usize;

/// Xen's version: `major.minor` and the extra string (e.g. `.5` or `.7-pre`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XenVersion {
    pub major: u32,
    pub minor: u32,
    pub extra: String,
}

/// Host facts from sysctl `physinfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhysInfo {
    pub threads_per_core: u32,
    pub cores_per_socket: u32,
    /// CPUs online now.
    pub nr_cpus: u32,
    /// Largest possible CPU id.
    pub max_cpu_id: u32,
    /// NUMA nodes online.
    pub nr_nodes: u32,
    pub max_node_id: u32,
    pub cpu_khz: u32,
    /// `XEN_SYSCTL_PHYSCAP_*` bits (hvm 1, pv 2, directio 4, hap 8, shadow 16...).
    pub capabilities: u32,
    pub total_pages: u64,
    pub free_pages: u64,
    pub scrub_pages: u64,
    /// Xen's page size in bytes.
    pub page_size: u64,
}

impl PhysInfo {
    /// Total memory in KiB.
    pub fn total_kib(&self) -> u64 {
        self.total_pages.saturating_mul(self.page_size) / 1024
    }

    /// Free memory in KiB.
    pub fn free_kib(&self) -> u64 {
        self.free_pages.saturating_mul(self.page_size) / 1024
    }
}

/// A domain's run state, numbered as libvirt's `virDomainState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RunState {
    /// Runnable, neither running nor blocked right now (libvirt: "no state";
    /// the Python layer reports it as running).
    NoState = 0,
    Running = 1,
    Blocked = 2,
    Paused = 3,
    /// Being destroyed (dying).
    ShuttingDown = 4,
    /// Shut down, not yet destroyed by the toolstack.
    Shutoff = 5,
    /// Shut down with reason crash.
    Crashed = 6,
}

/// One domain as Xen describes it (`xen_domctl_getdomaininfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DomainInfo {
    pub domid: u16,
    /// `XEN_DOMINF_*` bits and the shutdown reason (bits 16-23).
    pub flags: u32,
    pub tot_pages: u64,
    pub max_pages: u64,
    pub outstanding_pages: u64,
    pub shr_pages: u64,
    pub paged_pages: u64,
    /// CPU time of all vCPUs, nanoseconds.
    pub cpu_time_ns: u64,
    pub nr_online_vcpus: u32,
    /// Largest vCPU id (`u32::MAX`: no vCPU).
    pub max_vcpu_id: u32,
    pub ssidref: u32,
    /// The domain handle: its UUID.
    pub handle: [u8; 16],
    pub cpupool: u32,
}

impl DomainInfo {
    fn from_416(d: &abi::DomainInfo416) -> DomainInfo {
        DomainInfo {
            domid: d.domain,
            flags: d.flags,
            tot_pages: d.tot_pages,
            max_pages: d.max_pages,
            outstanding_pages: d.outstanding_pages,
            shr_pages: d.shr_pages,
            paged_pages: d.paged_pages,
            cpu_time_ns: d.cpu_time,
            nr_online_vcpus: d.nr_online_vcpus,
            max_vcpu_id: d.max_vcpu_id,
            ssidref: d.ssidref,
            handle: d.handle,
            cpupool: d.cpupool,
        }
    }

    fn from_413(d: &abi::DomainInfo413) -> DomainInfo {
        DomainInfo {
            domid: d.domain,
            flags: d.flags,
            tot_pages: d.tot_pages,
            max_pages: d.max_pages,
            outstanding_pages: d.outstanding_pages,
            shr_pages: d.shr_pages,
            paged_pages: d.paged_pages,
            cpu_time_ns: d.cpu_time,
            nr_online_vcpus: d.nr_online_vcpus,
            max_vcpu_id: d.max_vcpu_id,
            ssidref: d.ssidref,
            handle: d.handle,
            cpupool: d.cpupool,
        }
    }

    /// The shutdown reason (`SHUTDOWN_*`: poweroff 0, reboot 1, suspend 2,
    /// crash 3, watchdog 4, soft_reset 5) when the domain has shut down.
    pub fn shutdown_reason(&self) -> Option<u8> {
        let reason = ((self.flags >> abi::DOMINF_SHUTDOWN_SHIFT) & abi::DOMINF_SHUTDOWN_MASK) as u8;
        (self.flags & abi::DOMINF_SHUTDOWN != 0).then_some(reason)
    }

    /// The state, as libvirt's Xen driver read the flags: crashed (shut down
    /// for a crash), dying, shut down, paused, blocked, running, in that order.
    pub fn state(&self) -> RunState {
        let f = self.flags;
        if self.shutdown_reason() == Some(abi::SHUTDOWN_CRASH) {
            RunState::Crashed
        } else if f & abi::DOMINF_DYING != 0 {
            RunState::ShuttingDown
        } else if f & abi::DOMINF_SHUTDOWN != 0 {
            RunState::Shutoff
        } else if f & abi::DOMINF_PAUSED != 0 {
            RunState::Paused
        } else if f & abi::DOMINF_BLOCKED != 0 {
            RunState::Blocked
        } else if f & abi::DOMINF_RUNNING != 0 {
            RunState::Running
        } else {
            RunState::NoState
        }
    }

    /// An HVM or PVH guest.
    pub fn is_hvm(&self) -> bool {
        self.flags & abi::DOMINF_HVM_GUEST != 0
    }

    /// Number of vCPUs (`max_vcpu_id + 1`; 0 when it has none).
    pub fn nr_vcpus(&self) -> u32 {
        self.max_vcpu_id.wrapping_add(1)
    }
}

/// One vCPU (`getvcpuinfo` and its hard affinity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VcpuInfo {
    pub vcpu: u32,
    pub online: bool,
    pub blocked: bool,
    pub running: bool,
    /// CPU time, nanoseconds.
    pub cpu_time_ns: u64,
    /// The physical CPU it is (or was last) on.
    pub cpu: u32,
    /// Physical CPUs it may run on (hard affinity), ascending.
    pub affinity: Vec<u32>,
}

/// An open connection to the hypervisor: privcmd, the detected interface
/// versions and one hypercall buffer.
#[derive(Debug)]
pub struct Hypervisor {
    privcmd: Privcmd,
    interface: Interface,
    version: (u32, u32),
    page_size: u64,
    /// Bits in a CPU bitmap: `max_cpu_id + 1` from physinfo.
    cpu_bits: u32,
    buffer: Mutex<HypercallBuffer>,
}

fn xen_err(call: &'static str, errno: Errno, message: String) -> CoreError {
    CoreError::Xen {
        call,
        errno: errno as i32,
        message,
    }
}

fn check_domid(domid: u32) -> CoreResult<u16> {
    u16::try_from(domid)
        .ok()
        .filter(|&d| d < abi::DOMID_FIRST_RESERVED)
        .ok_or_else(|| {
            CoreError::InvalidArgument(format!(
                "a domain id is a number from 0 to {}, not {domid}",
                abi::DOMID_FIRST_RESERVED - 1
            ))
        })
}

/// Run one sysctl with `version` in `buffer`.
fn sysctl_in(
    privcmd: &Privcmd,
    buffer: &HypercallBuffer,
    version: u32,
    cmd: u32,
    u: SysctlPayload,
) -> Result<SysctlPayload, Errno> {
    let op = buffer.as_mut_ptr().cast::<Sysctl>();
    // SAFETY: the buffer is page aligned and at least a page long, larger than
    // a Sysctl (136 bytes); it is ours while the caller holds it.
    unsafe {
        op.write(Sysctl {
            cmd,
            interface_version: version,
            u,
        })
    };
    privcmd.hypercall(abi::HYPERVISOR_SYSCTL, [op as u64, 0, 0, 0, 0])?;
    // SAFETY: as above; Xen wrote a Sysctl back (plain data: any bytes are valid).
    Ok(unsafe { op.read() }.u)
}

/// Run one domctl with `version` in `buffer`.
fn domctl_in(
    privcmd: &Privcmd,
    buffer: &HypercallBuffer,
    version: u32,
    cmd: u32,
    domain: u16,
    u: DomctlPayload,
) -> Result<Domctl, Errno> {
    let op = buffer.as_mut_ptr().cast::<Domctl>();
    // SAFETY: page-aligned buffer of at least a page, larger than a Domctl
    // (144 bytes); it is ours while the caller holds it.
    unsafe {
        op.write(Domctl {
            cmd,
            interface_version: version,
            domain,
            _pad: [0; 3],
            u,
        })
    };
    privcmd.hypercall(abi::HYPERVISOR_DOMCTL, [op as u64, 0, 0, 0, 0])?;
    // SAFETY: as above; plain data.
    Ok(unsafe { op.read() })
}

fn read_physinfo(layout: PhysinfoLayout, u: &SysctlPayload, page_size: u64) -> PhysInfo {
    match layout {
        PhysinfoLayout::Xen417 => {
            // SAFETY: every field of the union is plain integers; the bytes
            // were initialised (zeroed, then written by Xen).
            let p = unsafe { u.physinfo417 };
            PhysInfo {
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
                page_size,
            }
        }
        PhysinfoLayout::Xen413 => {
            // SAFETY: as above.
            let p = unsafe { u.physinfo413 };
            PhysInfo {
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
                page_size,
            }
        }
    }
}

/// Decode `count` domain info records of `layout` from `bytes`.
pub fn decode_domain_infos(
    layout: DomainInfoLayout,
    bytes: &[u8],
    count: usize,
) -> Vec<DomainInfo> {
    let size = layout.size();
    bytes
        .chunks_exact(size)
        .take(count)
        .map(|chunk| match layout {
            // SAFETY: the chunk is exactly size_of::<DomainInfo416>() bytes of
            // initialised memory and the type is plain data; read_unaligned
            // needs no alignment.
            DomainInfoLayout::Xen416 => DomainInfo::from_416(unsafe {
                &chunk.as_ptr().cast::<abi::DomainInfo416>().read_unaligned()
            }),
            // SAFETY: as above for the 104-byte layout.
            DomainInfoLayout::Xen413 => DomainInfo::from_413(unsafe {
                &chunk.as_ptr().cast::<abi::DomainInfo413>().read_unaligned()
            }),
        })
        .collect()
}

/// Bitmap bytes (bit N of byte N/8) for `cpus`, `bits` wide; EINVAL for a
/// CPU at or beyond `bits` or an empty list.
fn cpu_bitmap(cpus: &[u32], bits: u32) -> Result<Vec<u8>, String> {
    if cpus.is_empty() {
        return Err("no CPU given".to_string());
    }
    let mut map = vec![0u8; bits.div_ceil(8) as usize];
    for &cpu in cpus {
        if cpu >= bits {
            return Err(format!(
                "CPU {cpu} does not exist (the host's CPUs are 0-{})",
                bits.saturating_sub(1)
            ));
        }
        map[(cpu / 8) as usize] |= 1 << (cpu % 8);
    }
    Ok(map)
}

fn cpus_of_bitmap(map: &[u8], bits: u32) -> Vec<u32> {
    (0..bits)
        .filter(|&cpu| {
            map.get((cpu / 8) as usize)
                .is_some_and(|byte| byte & (1 << (cpu % 8)) != 0)
        })
        .collect()
}

impl Hypervisor {
    /// Open privcmd, ask Xen its version and page size, detect the interface
    /// versions ([`versions::detect`]) and read the host's CPU count.
    ///
    /// `prefer` (domctl, sysctl) is tried first (see `detect`).
    ///
    /// Errors: `System` (ENOENT: not on Xen / no privcmd; EACCES: not
    /// root); `Xen` for a refused hypercall or an interface version that is
    /// not in the table.
    pub fn open(prefer: Option<(u32, u32)>) -> CoreResult<Hypervisor> {
        Self::open_with(Privcmd::open()?, prefer)
    }

    /// [`Hypervisor::open`] on an already open privcmd.
    pub fn open_with(privcmd: Privcmd, prefer: Option<(u32, u32)>) -> CoreResult<Hypervisor> {
        let buffer =
            privcmd.alloc(DATA_OFFSET + INITIAL_DOMAINS * DomainInfoLayout::Xen416.size())?;
        let raw = privcmd
            .hypercall(
                abi::HYPERVISOR_XEN_VERSION,
                [abi::XENVER_VERSION, 0, 0, 0, 0],
            )
            .map_err(|e| xen_err("xen_version", e, "cannot ask Xen its version".to_string()))?;
        let version = ((raw >> 16) as u32 & 0xffff, raw as u32 & 0xffff);
        let page_size = privcmd
            .hypercall(
                abi::HYPERVISOR_XEN_VERSION,
                [abi::XENVER_PAGESIZE, 0, 0, 0, 0],
            )
            .ok()
            .and_then(|n| u64::try_from(n).ok())
            .filter(|&n| n >= 1024)
            .unwrap_or(4096);
        let mut physinfo: Option<(u32, SysctlPayload)> = None;
        let interface = {
            let mut try_sysctl = |v: u32| {
                let u = sysctl_in(
                    &privcmd,
                    &buffer,
                    v,
                    abi::SYSCTL_PHYSINFO,
                    SysctlPayload::default(),
                )?;
                physinfo = Some((v, u));
                Ok(())
            };
            let mut try_domctl = |v: u32| {
                domctl_in(
                    &privcmd,
                    &buffer,
                    v,
                    abi::DOMCTL_GETDOMAININFO,
                    0,
                    DomctlPayload::default(),
                )
                .map(drop)
            };
            versions::detect(version, prefer, &mut try_sysctl, &mut try_domctl)?
        };
        let cpu_bits = physinfo
            .map(|(v, u)| read_physinfo(versions::PhysinfoLayout::for_sysctl(v), &u, page_size))
            .map_or(1, |p| p.max_cpu_id.saturating_add(1).max(p.nr_cpus).max(1));
        Ok(Hypervisor {
            privcmd,
            interface,
            version,
            page_size,
            cpu_bits,
            buffer: Mutex::new(buffer),
        })
    }

    /// The detected interface.
    pub fn interface(&self) -> &Interface {
        &self.interface
    }

    /// Xen's page size in bytes.
    pub fn page_size(&self) -> u64 {
        self.page_size
    }

    /// Bits of the CPU bitmaps (one past the largest possible CPU id).
    pub fn cpu_bits(&self) -> u32 {
        self.cpu_bits
    }

    /// Whether hypercall buffers come from `/dev/xen/hypercall` (else locked anonymous pages).
    pub fn uses_buffer_device(&self) -> bool {
        self.privcmd.has_buffer_device()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HypercallBuffer> {
        // A poisoned lock only means another call panicked; the buffer holds
        // nothing that outlives a call.
        self.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sysctl(
        &self,
        buffer: &HypercallBuffer,
        cmd: u32,
        u: SysctlPayload,
    ) -> Result<SysctlPayload, Errno> {
        sysctl_in(&self.privcmd, buffer, self.interface.sysctl, cmd, u)
    }

    fn domctl(
        &self,
        buffer: &HypercallBuffer,
        cmd: u32,
        domid: u16,
        u: DomctlPayload,
    ) -> Result<Domctl, Errno> {
        domctl_in(&self.privcmd, buffer, self.interface.domctl, cmd, domid, u)
    }

    /// Make sure the buffer holds `DATA_OFFSET + data` bytes (grown, never shrunk).
    fn ensure(&self, buffer: &mut HypercallBuffer, data: usize) -> CoreResult<()> {
        let needed = DATA_OFFSET + data;
        if buffer.len() < needed {
            *buffer = self.privcmd.alloc(needed)?;
        }
        Ok(())
    }

    /// `xen_version`: major, minor and the extra version string.
    pub fn xen_version(&self) -> CoreResult<XenVersion> {
        let buffer = self.lock();
        let raw = self
            .privcmd
            .hypercall(
                abi::HYPERVISOR_XEN_VERSION,
                [abi::XENVER_VERSION, 0, 0, 0, 0],
            )
            .map_err(|e| xen_err("xen_version", e, "cannot ask Xen its version".to_string()))?;
        let extra_ptr = buffer.as_mut_ptr();
        // SAFETY: the first 16 bytes of our page-sized buffer.
        unsafe { extra_ptr.write_bytes(0, abi::XEN_EXTRAVERSION_LEN) };
        self.privcmd
            .hypercall(
                abi::HYPERVISOR_XEN_VERSION,
                [abi::XENVER_EXTRAVERSION, buffer.address(), 0, 0, 0],
            )
            .map_err(|e| {
                xen_err(
                    "xen_version",
                    e,
                    "cannot ask Xen its extra version".to_string(),
                )
            })?;
        // SAFETY: 16 initialised bytes of the buffer.
        let bytes = unsafe { std::slice::from_raw_parts(extra_ptr, abi::XEN_EXTRAVERSION_LEN) };
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        Ok(XenVersion {
            major: (raw >> 16) as u32 & 0xffff,
            minor: raw as u32 & 0xffff,
            extra: String::from_utf8_lossy(&bytes[..end]).into_owned(),
        })
    }

    /// `(major, minor)` as read when the handle opened.
    pub fn version(&self) -> (u32, u32) {
        self.version
    }

    /// sysctl `physinfo`.
    pub fn physinfo(&self) -> CoreResult<PhysInfo> {
        let buffer = self.lock();
        let u = self
            .sysctl(&buffer, abi::SYSCTL_PHYSINFO, SysctlPayload::default())
            .map_err(|e| {
                xen_err(
                    "sysctl physinfo",
                    e,
                    "cannot read the host's facts".to_string(),
                )
            })?;
        Ok(read_physinfo(
            self.interface.physinfo_layout(),
            &u,
            self.page_size,
        ))
    }

    /// sysctl `getdomaininfolist`: every domain, in domain id order, in one
    /// hypercall (the buffer grows, and the call is repeated, only when the
    /// domains outnumber the records it holds).
    pub fn domain_list(&self) -> CoreResult<Vec<DomainInfo>> {
        let layout = self.interface.domain_info_layout();
        let size = layout.size();
        let mut buffer = self.lock();
        loop {
            let capacity = ((buffer.len() - DATA_OFFSET) / size).min(MAX_DOMAINS);
            let mut u = SysctlPayload::default();
            u.getdomaininfolist = abi::GetDomainInfoList {
                first_domain: 0,
                max_domains: capacity as u32,
                buffer: buffer.address() + DATA_OFFSET as u64,
                ..Default::default()
            };
            let out = self
                .sysctl(&buffer, abi::SYSCTL_GETDOMAININFOLIST, u)
                .map_err(|e| {
                    xen_err(
                        "sysctl getdomaininfolist",
                        e,
                        "cannot list the domains".to_string(),
                    )
                })?;
            // SAFETY: plain-data union, initialised bytes.
            let count = (unsafe { out.getdomaininfolist }.num_domains as usize).min(capacity);
            if count == capacity && capacity < MAX_DOMAINS {
                let more = (capacity * 2).min(MAX_DOMAINS);
                self.ensure(&mut buffer, more * size)?;
                continue;
            }
            // SAFETY: DATA_OFFSET + capacity * size <= len: initialised
            // bytes of the buffer, which we hold.
            let bytes = unsafe {
                std::slice::from_raw_parts(buffer.as_mut_ptr().add(DATA_OFFSET), count * size)
            };
            return Ok(decode_domain_infos(layout, bytes, count));
        }
    }

    /// domctl `getdomaininfo` of `domid`. Errors: `Xen` with `ESRCH` when no
    /// such domain exists (Xen before 4.18 answers with the next domain up:
    /// that is reported as ESRCH too).
    pub fn domain_info(&self, domid: u32) -> CoreResult<DomainInfo> {
        let dom = check_domid(domid)?;
        let buffer = self.lock();
        let op = self
            .domctl(
                &buffer,
                abi::DOMCTL_GETDOMAININFO,
                dom,
                DomctlPayload::default(),
            )
            .map_err(|e| {
                xen_err(
                    "domctl getdomaininfo",
                    e,
                    format!("cannot read domain {domid}"),
                )
            })?;
        let info = match self.interface.domain_info_layout() {
            // SAFETY: plain-data union, initialised bytes.
            DomainInfoLayout::Xen416 => DomainInfo::from_416(unsafe { &op.u.getdomaininfo416 }),
            // SAFETY: as above.
            DomainInfoLayout::Xen413 => DomainInfo::from_413(unsafe { &op.u.getdomaininfo413 }),
        };
        if info.domid != dom {
            return Err(xen_err(
                "domctl getdomaininfo",
                Errno::ESRCH,
                format!("cannot read domain {domid}"),
            ));
        }
        Ok(info)
    }

    fn simple_domctl(
        &self,
        cmd: u32,
        call: &'static str,
        what: &str,
        domid: u32,
    ) -> CoreResult<()> {
        let dom = check_domid(domid)?;
        let buffer = self.lock();
        self.domctl(&buffer, cmd, dom, DomctlPayload::default())
            .map(drop)
            .map_err(|e| xen_err(call, e, format!("cannot {what} domain {domid}")))
    }

    /// domctl `pausedomain`.
    pub fn pause(&self, domid: u32) -> CoreResult<()> {
        self.simple_domctl(
            abi::DOMCTL_PAUSEDOMAIN,
            "domctl pausedomain",
            "pause",
            domid,
        )
    }

    /// domctl `unpausedomain`.
    pub fn unpause(&self, domid: u32) -> CoreResult<()> {
        self.simple_domctl(
            abi::DOMCTL_UNPAUSEDOMAIN,
            "domctl unpausedomain",
            "unpause",
            domid,
        )
    }

    /// domctl `destroydomain`: the domain dies at once (Xen may answer
    /// `EAGAIN` while it releases memory: the call is repeated then, as libxc
    /// does).
    pub fn destroy(&self, domid: u32) -> CoreResult<()> {
        let dom = check_domid(domid)?;
        let buffer = self.lock();
        loop {
            match self.domctl(
                &buffer,
                abi::DOMCTL_DESTROYDOMAIN,
                dom,
                DomctlPayload::default(),
            ) {
                Ok(_) => return Ok(()),
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
                Err(e) => {
                    return Err(xen_err(
                        "domctl destroydomain",
                        e,
                        format!("cannot destroy domain {domid}"),
                    ))
                }
            }
        }
    }

    /// domctl `max_mem`: the most memory the domain may have, in KiB.
    pub fn set_max_mem(&self, domid: u32, kib: u64) -> CoreResult<()> {
        let dom = check_domid(domid)?;
        let buffer = self.lock();
        let mut u = DomctlPayload::default();
        u.max_mem = abi::MaxMem { max_memkb: kib };
        self.domctl(&buffer, abi::DOMCTL_MAX_MEM, dom, u)
            .map(drop)
            .map_err(|e| {
                xen_err(
                    "domctl max_mem",
                    e,
                    format!("cannot set the maximum memory of domain {domid} to {kib} KiB"),
                )
            })
    }

    fn affinity_call(
        &self,
        buffer: &HypercallBuffer,
        cmd: u32,
        dom: u16,
        vcpu: u32,
        map: Option<&[u8]>,
    ) -> Result<Vec<u32>, Errno> {
        let bytes = self.cpu_bits.div_ceil(8) as usize;
        let data = buffer.as_mut_ptr().wrapping_add(DATA_OFFSET);
        // SAFETY: DATA_OFFSET + bytes fits the buffer (ensured by the caller).
        unsafe {
            data.write_bytes(0, bytes);
            if let Some(map) = map {
                data.copy_from_nonoverlapping(map.as_ptr(), map.len().min(bytes));
            }
        }
        let mut u = DomctlPayload::default();
        u.vcpuaffinity = abi::VcpuAffinity {
            vcpu,
            flags: abi::VCPUAFFINITY_HARD,
            cpumap_hard: abi::XenctlBitmap {
                bitmap: buffer.address() + DATA_OFFSET as u64,
                nr_bits: self.cpu_bits,
                _pad: 0,
            },
            cpumap_soft: abi::XenctlBitmap::default(),
        };
        self.domctl(buffer, cmd, dom, u)?;
        // SAFETY: `bytes` initialised bytes at `data`, inside the buffer.
        let out = unsafe { std::slice::from_raw_parts(data, bytes) };
        Ok(cpus_of_bitmap(out, self.cpu_bits))
    }

    fn affinity_room(&self, buffer: &mut HypercallBuffer) -> CoreResult<()> {
        self.ensure(buffer, self.cpu_bits.div_ceil(8) as usize)
    }

    /// domctl `getvcpuaffinity` (hard): the CPUs vCPU `vcpu` may run on.
    pub fn vcpu_affinity(&self, domid: u32, vcpu: u32) -> CoreResult<Vec<u32>> {
        let dom = check_domid(domid)?;
        let mut buffer = self.lock();
        self.affinity_room(&mut buffer)?;
        self.affinity_call(&buffer, abi::DOMCTL_GETVCPUAFFINITY, dom, vcpu, None)
            .map_err(|e| {
                xen_err(
                    "domctl getvcpuaffinity",
                    e,
                    format!("cannot read the affinity of vCPU {vcpu} of domain {domid}"),
                )
            })
    }

    /// domctl `setvcpuaffinity` (hard): pin vCPU `vcpu` to `cpus`; returns the
    /// affinity in effect (Xen intersects it with the CPU pool's online CPUs).
    /// A CPU beyond the host's, or an empty list, is refused with `EINVAL`
    /// before Xen is asked.
    pub fn set_vcpu_affinity(&self, domid: u32, vcpu: u32, cpus: &[u32]) -> CoreResult<Vec<u32>> {
        let dom = check_domid(domid)?;
        let what = || format!("cannot pin vCPU {vcpu} of domain {domid}");
        let map = cpu_bitmap(cpus, self.cpu_bits).map_err(|why| {
            xen_err(
                "domctl setvcpuaffinity",
                Errno::EINVAL,
                format!("{}: {why}", what()),
            )
        })?;
        let mut buffer = self.lock();
        self.affinity_room(&mut buffer)?;
        self.affinity_call(&buffer, abi::DOMCTL_SETVCPUAFFINITY, dom, vcpu, Some(&map))
            .map_err(|e| xen_err("domctl setvcpuaffinity", e, what()))
    }

    fn vcpu_info_locked(
        &self,
        buffer: &HypercallBuffer,
        dom: u16,
        vcpu: u32,
    ) -> CoreResult<VcpuInfo> {
        let domid = dom;
        let mut u = DomctlPayload::default();
        u.getvcpuinfo = abi::GetVcpuInfo {
            vcpu,
            ..Default::default()
        };
        let op = self
            .domctl(buffer, abi::DOMCTL_GETVCPUINFO, dom, u)
            .map_err(|e| {
                xen_err(
                    "domctl getvcpuinfo",
                    e,
                    format!("cannot read vCPU {vcpu} of domain {domid}"),
                )
            })?;
        // SAFETY: plain-data union, initialised bytes.
        let v = unsafe { op.u.getvcpuinfo };
        let affinity = self
            .affinity_call(buffer, abi::DOMCTL_GETVCPUAFFINITY, dom, vcpu, None)
            .map_err(|e| {
                xen_err(
                    "domctl getvcpuaffinity",
                    e,
                    format!("cannot read the affinity of vCPU {vcpu} of domain {domid}"),
                )
            })?;
        Ok(VcpuInfo {
            vcpu,
            online: v.online != 0,
            blocked: v.blocked != 0,
            running: v.running != 0,
            cpu_time_ns: v.cpu_time,
            cpu: v.cpu,
            affinity,
        })
    }

    /// domctl `getvcpuinfo` and `getvcpuaffinity` of one vCPU.
    pub fn vcpu_info(&self, domid: u32, vcpu: u32) -> CoreResult<VcpuInfo> {
        let dom = check_domid(domid)?;
        let mut buffer = self.lock();
        self.affinity_room(&mut buffer)?;
        self.vcpu_info_locked(&buffer, dom, vcpu)
    }

    /// Every vCPU of a domain (0 to `max_vcpu_id`), in one go.
    pub fn vcpu_infos(&self, domid: u32) -> CoreResult<Vec<VcpuInfo>> {
        let info = self.domain_info(domid)?;
        let dom = info.domid;
        let mut buffer = self.lock();
        self.affinity_room(&mut buffer)?;
        (0..info.nr_vcpus())
            .map(|vcpu| self.vcpu_info_locked(&buffer, dom, vcpu))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(flags: u32) -> DomainInfo {
        DomainInfo {
            domid: 1,
            flags,
            tot_pages: 0,
            max_pages: 0,
            outstanding_pages: 0,
            shr_pages: 0,
            paged_pages: 0,
            cpu_time_ns: 0,
            nr_online_vcpus: 1,
            max_vcpu_id: 0,
            ssidref: 0,
            handle: [0; 16],
            cpupool: 0,
        }
    }

    #[test]
    fn states_follow_libvirts_priority() {
        let crash = abi::DOMINF_SHUTDOWN | (3 << abi::DOMINF_SHUTDOWN_SHIFT);
        assert_eq!(info(crash | abi::DOMINF_DYING).state(), RunState::Crashed);
        assert_eq!(
            info(abi::DOMINF_DYING | abi::DOMINF_PAUSED).state(),
            RunState::ShuttingDown
        );
        assert_eq!(info(abi::DOMINF_SHUTDOWN).state(), RunState::Shutoff);
        assert_eq!(
            info(abi::DOMINF_SHUTDOWN).shutdown_reason(),
            Some(abi::SHUTDOWN_POWEROFF)
        );
        assert_eq!(
            info(abi::DOMINF_PAUSED | abi::DOMINF_BLOCKED).state(),
            RunState::Paused
        );
        assert_eq!(info(abi::DOMINF_BLOCKED).state(), RunState::Blocked);
        assert_eq!(
            info(abi::DOMINF_RUNNING | abi::DOMINF_HVM_GUEST).state(),
            RunState::Running
        );
        assert!(info(abi::DOMINF_HVM_GUEST).is_hvm());
        assert_eq!(info(0).state(), RunState::NoState);
        assert_eq!(info(abi::DOMINF_RUNNING).shutdown_reason(), None);
        assert_eq!(RunState::Crashed as u8, 6);
        assert_eq!(RunState::Paused as u8, 3);
    }

    #[test]
    fn vcpu_count_handles_no_vcpu() {
        let mut i = info(0);
        i.max_vcpu_id = u32::MAX;
        assert_eq!(i.nr_vcpus(), 0);
        i.max_vcpu_id = 3;
        assert_eq!(i.nr_vcpus(), 4);
    }

    fn record_416(domain: u16, flags: u32, tot_pages: u64, uuid_byte: u8) -> abi::DomainInfo416 {
        abi::DomainInfo416 {
            domain,
            flags,
            tot_pages,
            max_pages: tot_pages + 256,
            cpu_time: 1_000_000_007,
            nr_online_vcpus: 2,
            max_vcpu_id: 1,
            handle: [uuid_byte; 16],
            gpaddr_bits: 40,
            ..Default::default()
        }
    }

    fn as_bytes<T: Copy>(v: &T) -> Vec<u8> {
        // SAFETY: abi structs are plain data without implicit padding.
        unsafe {
            std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>())
        }
        .to_vec()
    }

    #[test]
    fn records_decode_in_both_layouts() {
        let mut bytes = Vec::new();
        bytes.extend(as_bytes(&record_416(0, abi::DOMINF_RUNNING, 131072, 0)));
        bytes.extend(as_bytes(&record_416(7, abi::DOMINF_PAUSED, 32768, 0xab)));
        bytes.extend(vec![0xff; 112]); // beyond the count: ignored
        let got = decode_domain_infos(DomainInfoLayout::Xen416, &bytes, 2);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].domid, got[0].state()), (0, RunState::Running));
        assert_eq!((got[1].domid, got[1].state()), (7, RunState::Paused));
        assert_eq!(got[1].tot_pages, 32768);
        assert_eq!(got[1].max_pages, 32768 + 256);
        assert_eq!(got[1].handle, [0xab; 16]);
        assert_eq!(got[1].cpu_time_ns, 1_000_000_007);

        let old = abi::DomainInfo413 {
            domain: 3,
            flags: abi::DOMINF_BLOCKED,
            tot_pages: 5,
            handle: [9; 16],
            cpupool: 2,
            ..Default::default()
        };
        let mut bytes = as_bytes(&old);
        bytes.extend(as_bytes(&old));
        let got = decode_domain_infos(DomainInfoLayout::Xen413, &bytes, 5);
        assert_eq!(got.len(), 2, "never more records than bytes");
        assert_eq!(
            (got[0].domid, got[0].handle, got[0].cpupool),
            (3, [9; 16], 2)
        );
        // A truncated record is not read.
        assert!(decode_domain_infos(DomainInfoLayout::Xen416, &[0; 100], 1).is_empty());
    }

    #[test]
    fn cpu_bitmaps() {
        assert_eq!(cpu_bitmap(&[0, 2, 9], 16).unwrap(), vec![0b101, 0b10]);
        assert_eq!(cpus_of_bitmap(&[0b101, 0b10], 16), vec![0, 2, 9]);
        assert_eq!(cpus_of_bitmap(&[0xff], 3), vec![0, 1, 2]);
        assert_eq!(cpus_of_bitmap(&[], 8), Vec::<u32>::new());
        assert!(cpu_bitmap(&[], 8).unwrap_err().contains("no CPU"));
        assert!(cpu_bitmap(&[2], 2)
            .unwrap_err()
            .contains("CPU 2 does not exist (the host's CPUs are 0-1)"));
    }

    #[test]
    fn domain_ids_are_checked() {
        assert_eq!(check_domid(0).unwrap(), 0);
        assert_eq!(check_domid(0x7fef).unwrap(), 0x7fef);
        for bad in [0x7ff0, 0xffff, 0x1_0000, u32::MAX] {
            assert!(
                matches!(check_domid(bad), Err(CoreError::InvalidArgument(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn physinfo_of_both_layouts() {
        let mut u = SysctlPayload::default();
        u.physinfo417 = abi::Physinfo417 {
            nr_cpus: 2,
            max_cpu_id: 1,
            cpu_khz: 2_000_000,
            total_pages: 393_216,
            free_pages: 262_144,
            ..Default::default()
        };
        let p = read_physinfo(PhysinfoLayout::Xen417, &u, 4096);
        assert_eq!(
            (p.nr_cpus, p.total_kib(), p.free_kib()),
            (2, 1_572_864, 1_048_576)
        );
        let mut u = SysctlPayload::default();
        u.physinfo413 = abi::Physinfo413 {
            nr_cpus: 4,
            total_pages: 1024,
            ..Default::default()
        };
        let p = read_physinfo(PhysinfoLayout::Xen413, &u, 4096);
        assert_eq!((p.nr_cpus, p.total_kib()), (4, 4096));
    }

    #[test]
    fn opening_without_xen_is_a_clear_error_not_a_panic() {
        if std::path::Path::new("/dev/xen/privcmd").exists()
            || std::path::Path::new("/proc/xen/privcmd").exists()
        {
            return;
        }
        let err = Hypervisor::open(None).unwrap_err();
        assert_eq!(err.errno(), Some(nix::libc::ENOENT));
        assert!(
            err.to_string().contains("not a Xen control domain"),
            "{err}"
        );
    }
}
