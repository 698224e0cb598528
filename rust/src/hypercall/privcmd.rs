//! Linux's privcmd device: the way a dom0 process makes hypercalls.
//!
//! `ioctl(fd, IOCTL_PRIVCMD_HYPERCALL, &privcmd_hypercall)` on
//! `/dev/xen/privcmd` (older kernels: `/proc/xen/privcmd`) runs the hypercall
//! and returns its result; a negative result comes back as `-1`/`errno`.
//!
//! Whatever the hypervisor reads or writes through a pointer argument must
//! stay in place, present and unshared for the whole call (Xen copies from and
//! to the caller's virtual addresses while the kernel is inside the ioctl).
//! Like Xen's own libxencall, virtkit takes such memory from
//! `/dev/xen/hypercall` (Linux 4.18 and later: pages the kernel keeps locked
//! and never moves) and, without that device, from anonymous pages that are
//! `mlock`ed, kept out of children (`MADV_DONTFORK`) and touched once so that
//! none is shared copy-on-write.

use std::fs::{File, OpenOptions};
use std::num::NonZeroUsize;
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::NonNull;

use nix::errno::Errno;
use nix::sys::mman::{self, MapFlags, MmapAdvise, ProtFlags};

use super::abi::PrivcmdHypercall;
use crate::error::{CoreError, CoreResult};

/// The privcmd device of current kernels, then the one of older ones.
pub const PRIVCMD_PATHS: [&str; 2] = ["/dev/xen/privcmd", "/proc/xen/privcmd"];
/// The hypercall buffer device (Linux 4.18 and later).
pub const HYPERCALL_BUFFER_DEVICE: &str = "/dev/xen/hypercall";

/// `IOCTL_PRIVCMD_HYPERCALL` = `_IOC(_IOC_NONE, 'P', 0, sizeof(struct
/// privcmd_hypercall))`: direction none (the kernel copies the request
/// itself), type 'P' (0x50), number 0, size 48 in bits 16-29.
pub const IOCTL_PRIVCMD_HYPERCALL: u64 = nix::ioc!(
    nix::sys::ioctl::NONE,
    b'P',
    0,
    std::mem::size_of::<PrivcmdHypercall>()
) as u64;

nix::ioctl_readwrite_bad!(
    /// The privcmd hypercall ioctl; returns the hypercall's (non-negative) result.
    privcmd_hypercall_ioctl,
    nix::ioc!(nix::sys::ioctl::NONE, b'P', 0, std::mem::size_of::<PrivcmdHypercall>()),
    PrivcmdHypercall
);

/// An open privcmd device (and the hypercall buffer device, when present).
#[derive(Debug)]
pub struct Privcmd {
    fd: OwnedFd,
    bufdev: Option<OwnedFd>,
    path: &'static str,
}

fn open_rw(path: &str) -> std::io::Result<File> {
    // std opens with O_CLOEXEC.
    OpenOptions::new().read(true).write(true).open(path)
}

impl Privcmd {
    /// Open the privcmd device ([`PRIVCMD_PATHS`], the second only when the
    /// first does not exist) and [`HYPERCALL_BUFFER_DEVICE`] if present.
    ///
    /// Errors (`CoreError::System`): `ENOENT` when there is no privcmd device
    /// (not running on Xen, or xenfs/xen-privcmd not loaded), `EACCES` when
    /// the caller may not open it (root is needed).
    pub fn open() -> CoreResult<Privcmd> {
        Self::open_paths(&PRIVCMD_PATHS, HYPERCALL_BUFFER_DEVICE)
    }

    /// [`Privcmd::open`] with other device paths (for tests).
    pub fn open_paths(paths: &[&'static str], bufdev: &str) -> CoreResult<Privcmd> {
        let mut last: Option<(&'static str, std::io::Error)> = None;
        for &path in paths {
            match open_rw(path) {
                Ok(file) => {
                    let bufdev = match open_rw(bufdev) {
                        Ok(f) => Some(OwnedFd::from(f)),
                        Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => None,
                        Err(e) => {
                            return Err(CoreError::from_io(
                                "open",
                                &e,
                                format!("cannot open the hypercall buffer device {bufdev}"),
                            ))
                        }
                    };
                    return Ok(Privcmd {
                        fd: OwnedFd::from(file),
                        bufdev,
                        path,
                    });
                }
                Err(e) => {
                    let errno = e.raw_os_error().unwrap_or(nix::libc::EIO);
                    let missing = [nix::libc::ENOENT, nix::libc::ENXIO, nix::libc::ENODEV];
                    let next = missing.contains(&errno);
                    last = Some((path, e));
                    if !next {
                        break;
                    }
                }
            }
        }
        let (path, err) = match last {
            Some(last) => last,
            None => {
                return Err(CoreError::InvalidArgument(
                    "no privcmd device path given".to_string(),
                ))
            }
        };
        let errno = err.raw_os_error().unwrap_or(nix::libc::EIO);
        let message = if [nix::libc::ENOENT, nix::libc::ENXIO, nix::libc::ENODEV].contains(&errno) {
            format!(
                "cannot open Xen's privileged command interface ({}): this host is not a Xen \
                 control domain (dom0), or xenfs and the xen-privcmd module are not loaded",
                paths.join(", ")
            )
        } else {
            format!("cannot open Xen's privileged command interface {path}")
        };
        Err(CoreError::from_io("open", &err, message))
    }

    /// The device that was opened.
    pub fn path(&self) -> &'static str {
        self.path
    }

    /// Whether hypercall buffers come from `/dev/xen/hypercall`.
    pub fn has_buffer_device(&self) -> bool {
        self.bufdev.is_some()
    }

    /// Make hypercall `op` with `args`; its non-negative result, or the errno
    /// of a negative one.
    ///
    /// Pointer arguments must point into a [`HypercallBuffer`] that holds the
    /// structures the hypercall reads and writes.
    pub fn hypercall(&self, op: u64, args: [u64; 5]) -> Result<i64, Errno> {
        let mut call = PrivcmdHypercall { op, arg: args };
        // SAFETY: `call` is a valid privcmd_hypercall that lives across the
        // ioctl; the kernel copies it in. What the hypercall itself accesses
        // through pointer arguments is the caller's contract (see above).
        let rc = unsafe { privcmd_hypercall_ioctl(self.fd.as_raw_fd(), &mut call) }?;
        Ok(i64::from(rc))
    }

    /// A hypercall-safe buffer of at least `len` bytes (whole pages, zeroed).
    pub fn alloc(&self, len: usize) -> CoreResult<HypercallBuffer> {
        HypercallBuffer::new(self.bufdev.as_ref(), len)
    }
}

/// Memory the hypervisor may read and write during a hypercall: page
/// aligned, whole pages, zero-filled when made, unmapped on drop.
#[derive(Debug)]
pub struct HypercallBuffer {
    ptr: NonNull<nix::libc::c_void>,
    len: usize,
    from_device: bool,
}

// SAFETY: the buffer owns its mapping exclusively; nothing in it is tied to
// the thread that made it.
unsafe impl Send for HypercallBuffer {}

fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n > 0)
        .unwrap_or(4096)
}

impl HypercallBuffer {
    fn new(bufdev: Option<&OwnedFd>, len: usize) -> CoreResult<HypercallBuffer> {
        let page = page_size();
        let pages = len.max(1).div_ceil(page);
        let size = pages.checked_mul(page).ok_or_else(|| {
            CoreError::InvalidArgument(format!("hypercall buffer of {len} bytes"))
        })?;
        // size > 0: pages >= 1 and page > 0.
        let length = NonZeroUsize::new(size)
            .ok_or_else(|| CoreError::InvalidArgument("empty hypercall buffer".to_string()))?;
        let prot = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
        match bufdev {
            Some(fd) => {
                // SAFETY: a new shared mapping of the buffer device at an
                // address the kernel picks; nothing else refers to it.
                let ptr = unsafe { mman::mmap(None, length, prot, MapFlags::MAP_SHARED, fd, 0) }
                    .map_err(|e| {
                        CoreError::system(
                            "mmap",
                            e,
                            format!("cannot map {size} bytes of {HYPERCALL_BUFFER_DEVICE}"),
                        )
                    })?;
                Ok(HypercallBuffer {
                    ptr,
                    len: size,
                    from_device: true,
                })
            }
            None => {
                // SAFETY: a new private anonymous mapping; nothing else refers to it.
                let ptr =
                    unsafe { mman::mmap_anonymous(None, length, prot, MapFlags::MAP_PRIVATE) }
                        .map_err(|e| {
                            CoreError::system("mmap", e, format!("cannot map {size} bytes"))
                        })?;
                let buffer = HypercallBuffer {
                    ptr,
                    len: size,
                    from_device: false,
                };
                // SAFETY: the range is exactly the mapping made above.
                unsafe { mman::madvise(ptr, size, MmapAdvise::MADV_DONTFORK) }.map_err(|e| {
                    CoreError::system(
                        "madvise",
                        e,
                        "cannot keep a hypercall buffer out of children".to_string(),
                    )
                })?;
                // SAFETY: as above; locking keeps the pages resident.
                unsafe { mman::mlock(ptr, size) }.map_err(|e| {
                    CoreError::system(
                        "mlock",
                        e,
                        format!("cannot lock a {size}-byte hypercall buffer in memory"),
                    )
                })?;
                // Touch every page: a copy-on-write page shared with a child
                // forked before MADV_DONTFORK must become ours now.
                for offset in (0..size).step_by(page) {
                    // SAFETY: offset < size, inside the writable mapping.
                    unsafe { buffer.as_mut_ptr().add(offset).write_volatile(0) };
                }
                Ok(buffer)
            }
        }
    }

    /// Start of the buffer.
    pub fn as_mut_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr().cast::<u8>()
    }

    /// The buffer's address as a hypercall argument or guest handle.
    pub fn address(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    /// Size in bytes (whole pages).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true (a buffer holds a page at least); for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the pages come from `/dev/xen/hypercall`.
    pub fn from_device(&self) -> bool {
        self.from_device
    }
}

impl Drop for HypercallBuffer {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, of exactly this length, unmapped
        // once; no reference into it outlives the buffer.
        let _ = unsafe { mman::munmap(self.ptr, self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_number_is_linux_uapi_s() {
        // _IOC(_IOC_NONE=0, 'P'=0x50, 0, 48): size 48 << 16 | 'P' << 8.
        assert_eq!(IOCTL_PRIVCMD_HYPERCALL, 0x0030_5000);
        assert_eq!(IOCTL_PRIVCMD_HYPERCALL >> 30, 0, "direction _IOC_NONE");
    }

    #[test]
    fn no_device_is_a_clear_error() {
        let err = Privcmd::open_paths(
            &["/nonexistent/xen/privcmd", "/nonexistent/proc/xen/privcmd"],
            "/nonexistent/xen/hypercall",
        )
        .unwrap_err();
        assert_eq!(err.errno(), Some(nix::libc::ENOENT));
        let text = err.to_string();
        assert!(text.contains("not a Xen control domain"), "{text}");
        assert!(text.contains("/nonexistent/proc/xen/privcmd"), "{text}");
    }

    #[test]
    fn another_open_error_is_reported_for_its_path() {
        // A directory cannot be opened read-write: EISDIR, no fallback.
        let err = Privcmd::open_paths(&["/", "/nonexistent"], "/nonexistent").unwrap_err();
        assert_eq!(err.errno(), Some(nix::libc::EISDIR));
        assert!(err.to_string().contains("interface /:"), "{err}");
    }

    #[test]
    fn this_machine_has_no_xen() {
        // The development machine and CI are not dom0s.
        if std::path::Path::new("/dev/xen/privcmd").exists()
            || std::path::Path::new("/proc/xen/privcmd").exists()
        {
            return;
        }
        assert_eq!(
            Privcmd::open().unwrap_err().errno(),
            Some(nix::libc::ENOENT)
        );
    }

    #[test]
    fn locked_anonymous_buffers_are_whole_zeroed_pages() {
        let buffer = HypercallBuffer::new(None, 5000).unwrap();
        assert!(!buffer.from_device());
        assert_eq!(buffer.len() % page_size(), 0);
        assert!(buffer.len() >= 5000);
        assert_eq!(buffer.address() % page_size() as u64, 0);
        // SAFETY: reading the buffer's own, initialised bytes.
        let bytes = unsafe { std::slice::from_raw_parts(buffer.as_mut_ptr(), buffer.len()) };
        assert!(bytes.iter().all(|&b| b == 0));
    }
}
