//! Xen's public hypercall ABI, for the calls virtkit makes: the privcmd
//! request, the `xen_sysctl` and `xen_domctl` envelopes and the payloads of
//! the sub-operations used.
//!
//! Written from Xen's public headers (`xen/include/public/{xen,version,
//! domctl,sysctl}.h`, Xen 4.13 to 4.22, and Linux's uapi `xen/privcmd.h`).
//! Every structure is `#[repr(C)]` with its padding spelled out, so a value
//! is plain data with no uninitialised byte; sizes and field offsets are
//! asserted at compile time against what the C compiler lays out for x86-64
//! (the numbers in the asserts were measured with `offsetof`/`sizeof` on the
//! headers of each release).
//!
//! Two payloads changed layout in the releases we support, so both layouts
//! are kept and [`crate::hypercall::versions`] says which one a hypervisor
//! uses:
//!
//! * `xen_domctl_getdomaininfo` (also the record of `getdomaininfolist`):
//!   104 bytes up to Xen 4.15, 112 from 4.16 (`gpaddr_bits` and 7 bytes of
//!   padding inserted before `arch_config`).
//! * `xen_sysctl_physinfo`: 104 bytes up to Xen 4.16, 112 from 4.17
//!   (`arch_capabilities` and a pad inserted before `total_pages`).

use std::mem::{offset_of, size_of};

// ---------------------------------------------------------------- hypercalls

/// `__HYPERVISOR_xen_version`.
pub const HYPERVISOR_XEN_VERSION: u64 = 17;
/// `__HYPERVISOR_sysctl`.
pub const HYPERVISOR_SYSCTL: u64 = 35;
/// `__HYPERVISOR_domctl`.
pub const HYPERVISOR_DOMCTL: u64 = 36;

/// `XENVER_version`: returns `(major << 16) | minor`.
pub const XENVER_VERSION: u64 = 0;
/// `XENVER_extraversion`: fills a `xen_extraversion_t` (16 chars, NUL-padded).
pub const XENVER_EXTRAVERSION: u64 = 1;
/// `XENVER_pagesize`: returns Xen's page size in bytes.
pub const XENVER_PAGESIZE: u64 = 7;
/// Size of `xen_extraversion_t`.
pub const XEN_EXTRAVERSION_LEN: usize = 16;

// sysctl sub-operations (`XEN_SYSCTL_*`).
/// `XEN_SYSCTL_physinfo`.
pub const SYSCTL_PHYSINFO: u32 = 3;
/// `XEN_SYSCTL_getdomaininfolist`.
pub const SYSCTL_GETDOMAININFOLIST: u32 = 6;

// domctl sub-operations (`XEN_DOMCTL_*`).
/// `XEN_DOMCTL_destroydomain`.
pub const DOMCTL_DESTROYDOMAIN: u32 = 2;
/// `XEN_DOMCTL_pausedomain`.
pub const DOMCTL_PAUSEDOMAIN: u32 = 3;
/// `XEN_DOMCTL_unpausedomain`.
pub const DOMCTL_UNPAUSEDOMAIN: u32 = 4;
/// `XEN_DOMCTL_getdomaininfo`.
pub const DOMCTL_GETDOMAININFO: u32 = 5;
/// `XEN_DOMCTL_setvcpuaffinity`.
pub const DOMCTL_SETVCPUAFFINITY: u32 = 9;
/// `XEN_DOMCTL_max_mem`.
pub const DOMCTL_MAX_MEM: u32 = 11;
/// `XEN_DOMCTL_getvcpuinfo`.
pub const DOMCTL_GETVCPUINFO: u32 = 14;
/// `XEN_DOMCTL_getvcpuaffinity`.
pub const DOMCTL_GETVCPUAFFINITY: u32 = 25;

/// `DOMID_FIRST_RESERVED`: domain ids from here on are special (`DOMID_SELF`...).
pub const DOMID_FIRST_RESERVED: u16 = 0x7FF0;

// `XEN_DOMINF_*` bits of `xen_domctl_getdomaininfo.flags`.
/// The domain is being destroyed.
pub const DOMINF_DYING: u32 = 1 << 0;
/// An HVM (or PVH) guest rather than PV.
pub const DOMINF_HVM_GUEST: u32 = 1 << 1;
/// The guest has shut down (the reason is in bits 16-23).
pub const DOMINF_SHUTDOWN: u32 = 1 << 2;
/// Paused by the toolstack.
pub const DOMINF_PAUSED: u32 = 1 << 3;
/// Every vCPU is blocked waiting for an event.
pub const DOMINF_BLOCKED: u32 = 1 << 4;
/// A vCPU is running on a physical CPU right now.
pub const DOMINF_RUNNING: u32 = 1 << 5;
/// Being debugged.
pub const DOMINF_DEBUGGED: u32 = 1 << 6;
/// The domain is a xenstore stub domain.
pub const DOMINF_XS_DOMAIN: u32 = 1 << 7;
/// Hardware-assisted paging.
pub const DOMINF_HAP: u32 = 1 << 8;
/// Shift of the shutdown reason (`SHUTDOWN_*`) within `flags`.
pub const DOMINF_SHUTDOWN_SHIFT: u32 = 16;
/// Mask of the shutdown reason after shifting.
pub const DOMINF_SHUTDOWN_MASK: u32 = 0xff;

// `SHUTDOWN_*` codes (xen/include/public/sched.h).
/// Powered off.
pub const SHUTDOWN_POWEROFF: u8 = 0;
/// Asked to reboot.
pub const SHUTDOWN_REBOOT: u8 = 1;
/// Suspended (save / migration).
pub const SHUTDOWN_SUSPEND: u8 = 2;
/// Crashed.
pub const SHUTDOWN_CRASH: u8 = 3;
/// Watchdog fired.
pub const SHUTDOWN_WATCHDOG: u8 = 4;
/// Soft reset.
pub const SHUTDOWN_SOFT_RESET: u8 = 5;

// `XEN_VCPUAFFINITY_*` flags.
/// Get or set the hard affinity (where the vCPU may run at all).
pub const VCPUAFFINITY_HARD: u32 = 1 << 0;
/// Get or set the soft affinity (where it prefers to run).
pub const VCPUAFFINITY_SOFT: u32 = 1 << 1;

// ---------------------------------------------------------------- privcmd

/// Linux's `struct privcmd_hypercall` (uapi `xen/privcmd.h`): the hypercall
/// number and five arguments, whatever the caller's word size.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrivcmdHypercall {
    pub op: u64,
    pub arg: [u64; 5],
}

// ---------------------------------------------------------------- shared pieces

/// `struct xenctl_bitmap`: a guest handle (a user-space address, always 64
/// bits wide) to `nr_bits` bits, bit N of byte N/8 for CPU N.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XenctlBitmap {
    pub bitmap: u64,
    pub nr_bits: u32,
    pub _pad: u32,
}

/// x86's `struct xen_arch_domainconfig` (the tail of a domain info record).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArchDomainConfig {
    pub emulation_flags: u32,
    pub misc_flags: u32,
}

// ---------------------------------------------------------------- sysctl payloads

/// `struct xen_sysctl_physinfo` from Xen 4.17 on (sysctl 0x15 and later).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Physinfo417 {
    pub threads_per_core: u32,
    pub cores_per_socket: u32,
    pub nr_cpus: u32,
    pub max_cpu_id: u32,
    pub nr_nodes: u32,
    pub max_node_id: u32,
    pub cpu_khz: u32,
    pub capabilities: u32,
    pub arch_capabilities: u32,
    pub _pad: u32,
    pub total_pages: u64,
    pub free_pages: u64,
    pub scrub_pages: u64,
    pub outstanding_pages: u64,
    pub max_mfn: u64,
    pub hw_cap: [u32; 8],
}

/// `struct xen_sysctl_physinfo` of Xen 4.13 to 4.16 (no `arch_capabilities`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Physinfo413 {
    pub threads_per_core: u32,
    pub cores_per_socket: u32,
    pub nr_cpus: u32,
    pub max_cpu_id: u32,
    pub nr_nodes: u32,
    pub max_node_id: u32,
    pub cpu_khz: u32,
    pub capabilities: u32,
    pub total_pages: u64,
    pub free_pages: u64,
    pub scrub_pages: u64,
    pub outstanding_pages: u64,
    pub max_mfn: u64,
    pub hw_cap: [u32; 8],
}

/// `struct xen_sysctl_getdomaininfolist`: IN the first domain id and the
/// capacity of `buffer` (records of `xen_domctl_getdomaininfo`), OUT how
/// many records were written.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GetDomainInfoList {
    pub first_domain: u16,
    pub _pad0: u16,
    pub max_domains: u32,
    pub buffer: u64,
    pub num_domains: u32,
    pub _pad1: u32,
}

/// The union of `struct xen_sysctl` (128 bytes: `uint8_t pad[128]`).
#[repr(C)]
#[derive(Clone, Copy)]
pub union SysctlPayload {
    pub physinfo417: Physinfo417,
    pub physinfo413: Physinfo413,
    pub getdomaininfolist: GetDomainInfoList,
    pub pad: [u8; 128],
}

impl Default for SysctlPayload {
    fn default() -> Self {
        SysctlPayload { pad: [0; 128] }
    }
}

/// `struct xen_sysctl`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Sysctl {
    pub cmd: u32,
    pub interface_version: u32,
    pub u: SysctlPayload,
}

// ---------------------------------------------------------------- domctl payloads

/// `struct xen_domctl_getdomaininfo` from Xen 4.16 on (domctl 0x14 and later).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DomainInfo416 {
    pub domain: u16,
    pub _pad1: u16,
    pub flags: u32,
    pub tot_pages: u64,
    pub max_pages: u64,
    pub outstanding_pages: u64,
    pub shr_pages: u64,
    pub paged_pages: u64,
    pub shared_info_frame: u64,
    pub cpu_time: u64,
    pub nr_online_vcpus: u32,
    pub max_vcpu_id: u32,
    pub ssidref: u32,
    pub handle: [u8; 16],
    pub cpupool: u32,
    pub gpaddr_bits: u8,
    pub _pad2: [u8; 7],
    pub arch_config: ArchDomainConfig,
}

/// `struct xen_domctl_getdomaininfo` of Xen 4.13 to 4.15 (no `gpaddr_bits`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DomainInfo413 {
    pub domain: u16,
    pub _pad1: u16,
    pub flags: u32,
    pub tot_pages: u64,
    pub max_pages: u64,
    pub outstanding_pages: u64,
    pub shr_pages: u64,
    pub paged_pages: u64,
    pub shared_info_frame: u64,
    pub cpu_time: u64,
    pub nr_online_vcpus: u32,
    pub max_vcpu_id: u32,
    pub ssidref: u32,
    pub handle: [u8; 16],
    pub cpupool: u32,
    pub arch_config: ArchDomainConfig,
}

/// `struct xen_domctl_max_mem`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaxMem {
    pub max_memkb: u64,
}

/// `struct xen_domctl_vcpuaffinity`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VcpuAffinity {
    pub vcpu: u32,
    pub flags: u32,
    pub cpumap_hard: XenctlBitmap,
    pub cpumap_soft: XenctlBitmap,
}

/// `struct xen_domctl_getvcpuinfo`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GetVcpuInfo {
    pub vcpu: u32,
    pub online: u8,
    pub blocked: u8,
    pub running: u8,
    pub _pad0: u8,
    pub cpu_time: u64,
    pub cpu: u32,
    pub _pad1: u32,
}

/// The union of `struct xen_domctl` (128 bytes: `uint8_t pad[128]`).
#[repr(C)]
#[derive(Clone, Copy)]
pub union DomctlPayload {
    pub getdomaininfo416: DomainInfo416,
    pub getdomaininfo413: DomainInfo413,
    pub max_mem: MaxMem,
    pub vcpuaffinity: VcpuAffinity,
    pub getvcpuinfo: GetVcpuInfo,
    pub pad: [u8; 128],
}

impl Default for DomctlPayload {
    fn default() -> Self {
        DomctlPayload { pad: [0; 128] }
    }
}

/// `struct xen_domctl`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Domctl {
    pub cmd: u32,
    pub interface_version: u32,
    pub domain: u16,
    pub _pad: [u16; 3],
    pub u: DomctlPayload,
}

// ---------------------------------------------------------------- layout checks
// Sizes and offsets as the C compiler lays out Xen's headers on x86-64.

const _: () = assert!(size_of::<PrivcmdHypercall>() == 48);
const _: () = assert!(size_of::<XenctlBitmap>() == 16);
const _: () = assert!(offset_of!(XenctlBitmap, nr_bits) == 8);
const _: () = assert!(size_of::<ArchDomainConfig>() == 8);

const _: () = assert!(size_of::<Physinfo417>() == 112);
const _: () = assert!(offset_of!(Physinfo417, cpu_khz) == 24);
const _: () = assert!(offset_of!(Physinfo417, capabilities) == 28);
const _: () = assert!(offset_of!(Physinfo417, total_pages) == 40);
const _: () = assert!(offset_of!(Physinfo417, free_pages) == 48);
const _: () = assert!(offset_of!(Physinfo417, max_mfn) == 72);
const _: () = assert!(offset_of!(Physinfo417, hw_cap) == 80);
const _: () = assert!(size_of::<Physinfo413>() == 104);
const _: () = assert!(offset_of!(Physinfo413, total_pages) == 32);
const _: () = assert!(offset_of!(Physinfo413, max_mfn) == 64);
const _: () = assert!(offset_of!(Physinfo413, hw_cap) == 72);

const _: () = assert!(size_of::<GetDomainInfoList>() == 24);
const _: () = assert!(offset_of!(GetDomainInfoList, max_domains) == 4);
const _: () = assert!(offset_of!(GetDomainInfoList, buffer) == 8);
const _: () = assert!(offset_of!(GetDomainInfoList, num_domains) == 16);

const _: () = assert!(size_of::<SysctlPayload>() == 128);
const _: () = assert!(size_of::<Sysctl>() == 136);
const _: () = assert!(offset_of!(Sysctl, interface_version) == 4);
const _: () = assert!(offset_of!(Sysctl, u) == 8);

const _: () = assert!(size_of::<DomainInfo416>() == 112);
const _: () = assert!(offset_of!(DomainInfo416, flags) == 4);
const _: () = assert!(offset_of!(DomainInfo416, tot_pages) == 8);
const _: () = assert!(offset_of!(DomainInfo416, max_pages) == 16);
const _: () = assert!(offset_of!(DomainInfo416, shared_info_frame) == 48);
const _: () = assert!(offset_of!(DomainInfo416, cpu_time) == 56);
const _: () = assert!(offset_of!(DomainInfo416, nr_online_vcpus) == 64);
const _: () = assert!(offset_of!(DomainInfo416, max_vcpu_id) == 68);
const _: () = assert!(offset_of!(DomainInfo416, ssidref) == 72);
const _: () = assert!(offset_of!(DomainInfo416, handle) == 76);
const _: () = assert!(offset_of!(DomainInfo416, cpupool) == 92);
const _: () = assert!(offset_of!(DomainInfo416, gpaddr_bits) == 96);
const _: () = assert!(offset_of!(DomainInfo416, arch_config) == 104);
const _: () = assert!(size_of::<DomainInfo413>() == 104);
const _: () = assert!(offset_of!(DomainInfo413, handle) == 76);
const _: () = assert!(offset_of!(DomainInfo413, cpupool) == 92);
const _: () = assert!(offset_of!(DomainInfo413, arch_config) == 96);

const _: () = assert!(size_of::<MaxMem>() == 8);
const _: () = assert!(size_of::<VcpuAffinity>() == 40);
const _: () = assert!(offset_of!(VcpuAffinity, cpumap_hard) == 8);
const _: () = assert!(offset_of!(VcpuAffinity, cpumap_soft) == 24);
const _: () = assert!(size_of::<GetVcpuInfo>() == 24);
const _: () = assert!(offset_of!(GetVcpuInfo, online) == 4);
const _: () = assert!(offset_of!(GetVcpuInfo, running) == 6);
const _: () = assert!(offset_of!(GetVcpuInfo, cpu_time) == 8);
const _: () = assert!(offset_of!(GetVcpuInfo, cpu) == 16);

const _: () = assert!(size_of::<DomctlPayload>() == 128);
const _: () = assert!(size_of::<Domctl>() == 144);
const _: () = assert!(offset_of!(Domctl, interface_version) == 4);
const _: () = assert!(offset_of!(Domctl, domain) == 8);
const _: () = assert!(offset_of!(Domctl, u) == 16);

// Every u64 and guest handle sits on an 8-byte boundary (the ABI's
// `uint64_aligned_t`), so the envelopes are 8-aligned too.
const _: () = assert!(std::mem::align_of::<Domctl>() == 8);
const _: () = assert!(std::mem::align_of::<Sysctl>() == 8);
const _: () = assert!(std::mem::align_of::<DomainInfo413>() == 8);

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes of a plain-data value (every type here has no implicit padding).
    fn bytes_of<T: Copy>(value: &T) -> Vec<u8> {
        // SAFETY: T is one of this module's repr(C) structs whose padding is
        // spelled out as fields, so all size_of::<T>() bytes are initialised.
        unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) }
            .to_vec()
    }

    #[test]
    fn domctl_envelope_places_the_header_fields() {
        let mut op = Domctl {
            cmd: DOMCTL_GETDOMAININFO,
            interface_version: 0x15,
            domain: 0x1234,
            ..Domctl::default()
        };
        op.u.max_mem = MaxMem {
            max_memkb: 0x0102_0304_0506_0708,
        };
        let b = bytes_of(&op);
        assert_eq!(b.len(), 144);
        assert_eq!(&b[0..4], &5u32.to_ne_bytes());
        assert_eq!(&b[4..8], &0x15u32.to_ne_bytes());
        assert_eq!(&b[8..10], &0x1234u16.to_ne_bytes());
        assert_eq!(&b[10..16], &[0; 6]);
        assert_eq!(&b[16..24], &0x0102_0304_0506_0708u64.to_ne_bytes());
        assert!(b[24..].iter().all(|&x| x == 0));
    }

    #[test]
    fn sysctl_envelope_places_the_payload_at_8() {
        let mut op = Sysctl {
            cmd: SYSCTL_GETDOMAININFOLIST,
            interface_version: 0x15,
            ..Sysctl::default()
        };
        op.u.getdomaininfolist = GetDomainInfoList {
            first_domain: 7,
            max_domains: 64,
            buffer: 0xdead_b000,
            ..GetDomainInfoList::default()
        };
        let b = bytes_of(&op);
        assert_eq!(b.len(), 136);
        assert_eq!(&b[8..10], &7u16.to_ne_bytes());
        assert_eq!(&b[12..16], &64u32.to_ne_bytes());
        assert_eq!(&b[16..24], &0xdead_b000u64.to_ne_bytes());
    }

    #[test]
    fn the_two_domain_info_layouts_share_their_head() {
        // Up to `cpupool` both layouts agree; only the tail moved.
        assert_eq!(
            offset_of!(DomainInfo413, cpupool),
            offset_of!(DomainInfo416, cpupool)
        );
        assert_eq!(
            offset_of!(DomainInfo413, cpu_time),
            offset_of!(DomainInfo416, cpu_time)
        );
        assert_eq!(
            offset_of!(Physinfo413, capabilities),
            offset_of!(Physinfo417, capabilities)
        );
    }

    #[test]
    fn flag_bits_and_shutdown_field() {
        let flags = DOMINF_SHUTDOWN | (u32::from(SHUTDOWN_CRASH) << DOMINF_SHUTDOWN_SHIFT);
        assert_eq!(
            (flags >> DOMINF_SHUTDOWN_SHIFT) & DOMINF_SHUTDOWN_MASK,
            u32::from(SHUTDOWN_CRASH)
        );
        assert_eq!(DOMINF_HAP, 0x100);
        let all = [
            DOMINF_DYING,
            DOMINF_HVM_GUEST,
            DOMINF_SHUTDOWN,
            DOMINF_PAUSED,
            DOMINF_BLOCKED,
            DOMINF_RUNNING,
            DOMINF_DEBUGGED,
            DOMINF_XS_DOMAIN,
            DOMINF_HAP,
        ];
        assert_eq!(all.iter().fold(0, |a, b| a | b), 0x1ff);
    }
}
