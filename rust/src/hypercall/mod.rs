//! Hypercalls to Xen through Linux's privcmd device, without Xen's libraries.
//!
//! - [`abi`]: the structures of Xen's public ABI that the calls use, with
//!   their sizes and offsets asserted;
//! - [`privcmd`]: the device, the `IOCTL_PRIVCMD_HYPERCALL` ioctl and
//!   hypercall-safe buffers (`/dev/xen/hypercall`, or locked pages);
//! - [`versions`]: the table of `domctl`/`sysctl` interface versions per Xen
//!   release and their detection when a handle opens;
//! - [`ops`]: [`Hypervisor`], the operations (version, host facts, every
//!   domain's info in one call, one domain's info, pause, unpause, destroy,
//!   maximum memory, vCPU affinity and info).
//!
//! Pure Rust: `cargo test` runs the layout, table and error-path tests on any
//! machine; the calls themselves are tested inside the nested Xen host
//! (`tests/xenhost/test_hypercall.py`).

pub mod abi;
pub mod ops;
pub mod privcmd;
pub mod versions;

pub use ops::{DomainInfo, Hypervisor, PhysInfo, RunState, VcpuInfo, XenVersion};
