//! CPU affinity of threads, for vCPU pinning: which CPUs a thread may run on,
//! read and set through `sched_getaffinity(2)` / `sched_setaffinity(2)`.
//!
//! CPUs are plain numbers, as the kernel numbers them (`/sys/devices/system/cpu/cpuN`).
//! The calls take a `cpu_set_t` of glibc's size (`CPU_SETSIZE`, 1024 CPUs);
//! hosts with more CPUs are not supported.
//!
//! Setting refuses, with `EINVAL` and before calling the kernel, every CPU
//! that is not online (`/sys/devices/system/cpu/online`): the kernel itself
//! only refuses a set with *no* usable CPU and silently drops the others,
//! which would turn a typo in a pinning into a quietly different pinning. The
//! kernel still intersects the set with the thread's cpuset cgroup; read the
//! affinity back to see what was applied.

use std::sync::OnceLock;

use nix::errno::Errno;
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

use crate::error::{CoreError, CoreResult};

/// The CPUs that are online now (a CPU list such as `0-3,6`).
pub const ONLINE_PATH: &str = "/sys/devices/system/cpu/online";
/// Every CPU the kernel could ever bring online (fixed at boot).
pub const POSSIBLE_PATH: &str = "/sys/devices/system/cpu/possible";

/// Largest CPU number a CPU list may name; guards against absurd ranges.
const MAX_CPU: u32 = 1 << 20;

/// Parse a kernel CPU list (`0-3,6,8-9`, blanks and a final newline allowed;
/// empty text is the empty list) into ascending, distinct CPU numbers.
pub fn parse_cpulist(text: &str) -> Result<Vec<u32>, String> {
    let mut cpus = Vec::new();
    let text = text.trim();
    if text.is_empty() {
        return Ok(cpus);
    }
    for item in text.split(',') {
        let item = item.trim();
        let number = |s: &str| -> Result<u32, String> {
            match s.trim().parse::<u32>() {
                Ok(n) if n <= MAX_CPU => Ok(n),
                _ => Err(format!("malformed CPU list {text:?}: bad CPU number {s:?}")),
            }
        };
        let (lo, hi) = match item.split_once('-') {
            Some((lo, hi)) => (number(lo)?, number(hi)?),
            None => {
                let n = number(item)?;
                (n, n)
            }
        };
        if hi < lo {
            return Err(format!("malformed CPU list {text:?}: bad range {item:?}"));
        }
        cpus.extend(lo..=hi);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// The shortest kernel spelling of a CPU list (`0-3,6`), for messages.
pub fn format_cpulist(cpus: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        let mut end = start;
        while i + 1 < cpus.len() && cpus[i + 1] == end + 1 {
            i += 1;
            end = cpus[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}-{end}"));
        }
        i += 1;
    }
    out
}

fn read_cpulist(path: &str) -> CoreResult<Vec<u32>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CoreError::from_io("read", &e, format!("cannot read {path}")))?;
    parse_cpulist(&text).map_err(|_| CoreError::ProcFormat {
        path: path.to_string(),
        reason: "not a CPU list",
    })
}

/// The CPUs that are online now, ascending.
pub fn online_cpus() -> CoreResult<Vec<u32>> {
    read_cpulist(ONLINE_PATH)
}

/// One past the highest CPU number this host can ever have, capped at the
/// size of a `CpuSet`: how far a `CpuSet` needs scanning. Read once.
pub(crate) fn cpu_limit() -> usize {
    static LIMIT: OnceLock<usize> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        let all = CpuSet::count();
        match read_cpulist(POSSIBLE_PATH) {
            Ok(cpus) => cpus.last().map_or(all, |&max| (max as usize + 1).min(all)),
            // No sysfs (an unusual container): scan the whole set.
            Err(_) => all,
        }
    })
}

/// The CPUs set in `set`, ascending, looking at the first `limit` only.
pub(crate) fn cpus_in(set: &CpuSet, limit: usize) -> Vec<u32> {
    (0..limit)
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .map(|cpu| cpu as u32)
        .collect()
}

fn check_tid(tid: i32) -> CoreResult<()> {
    if tid <= 0 {
        return Err(CoreError::InvalidArgument(format!(
            "a thread id is a positive number, not {tid}"
        )));
    }
    Ok(())
}

/// The raw affinity mask of `tid` (`Errno::ESRCH` when the thread is gone).
pub(crate) fn raw_affinity(tid: i32) -> Result<CpuSet, Errno> {
    sched_getaffinity(Pid::from_raw(tid))
}

/// The CPUs thread `tid` may run on, ascending.
///
/// Errors: `InvalidArgument` for `tid <= 0`; `System` with `ESRCH` when no
/// such thread exists.
pub fn get_thread_affinity(tid: i32) -> CoreResult<Vec<u32>> {
    check_tid(tid)?;
    let set = raw_affinity(tid).map_err(|e| {
        CoreError::system(
            "sched_getaffinity",
            e,
            format!("cannot get the CPU affinity of thread {tid}"),
        )
    })?;
    Ok(cpus_in(&set, cpu_limit()))
}

/// Let thread `tid` run on exactly the CPUs `cpus` (in any order, repeats
/// allowed).
///
/// Errors: `InvalidArgument` for `tid <= 0`; `System` with `EINVAL` for an
/// empty list or a CPU that does not exist or is offline (nothing is changed
/// then), `ESRCH` when no such thread exists, `EPERM` for another user's
/// thread without `CAP_SYS_NICE`.
pub fn set_thread_affinity(tid: i32, cpus: &[i64]) -> CoreResult<()> {
    check_tid(tid)?;
    let einval = |message: String| CoreError::system("sched_setaffinity", Errno::EINVAL, message);
    if cpus.is_empty() {
        return Err(einval(format!(
            "cannot set the CPU affinity of thread {tid}: no CPU given"
        )));
    }
    // Without sysfs the check is left to the kernel.
    let online = online_cpus().ok();
    let mut set = CpuSet::new();
    for &cpu in cpus {
        let known = usize::try_from(cpu).ok().filter(|&c| c < CpuSet::count());
        let Some(index) = known else {
            return Err(einval(format!(
                "cannot set the CPU affinity of thread {tid}: CPU {cpu} does not exist"
            )));
        };
        if let Some(online) = &online {
            if online.binary_search(&(index as u32)).is_err() {
                return Err(einval(format!(
                    "cannot set the CPU affinity of thread {tid}: CPU {cpu} does not exist \
                     or is offline (online CPUs: {})",
                    format_cpulist(online)
                )));
            }
        }
        set.set(index)
            .map_err(|e| CoreError::system("sched_setaffinity", e, format!("CPU {cpu}")))?;
    }
    sched_setaffinity(Pid::from_raw(tid), &set).map_err(|e| {
        CoreError::system(
            "sched_setaffinity",
            e,
            format!("cannot set the CPU affinity of thread {tid}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpulists_parse() {
        assert_eq!(parse_cpulist("0-3,6\n").unwrap(), vec![0, 1, 2, 3, 6]);
        assert_eq!(parse_cpulist("0").unwrap(), vec![0]);
        assert_eq!(parse_cpulist("").unwrap(), Vec::<u32>::new());
        assert_eq!(parse_cpulist(" 4-5, 0 ,5").unwrap(), vec![0, 4, 5]);
        for bad in ["a", "1-", "-1", "3-1", "1,,2", "0-99999999", "1 2"] {
            assert!(parse_cpulist(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn cpulists_format() {
        assert_eq!(format_cpulist(&[0, 1, 2, 3, 6]), "0-3,6");
        assert_eq!(format_cpulist(&[1]), "1");
        assert_eq!(format_cpulist(&[]), "");
        assert_eq!(format_cpulist(&[0, 2, 3, 5, 6, 7]), "0,2-3,5-7");
    }

    fn own_tid() -> i32 {
        nix::unistd::gettid().as_raw()
    }

    #[test]
    fn own_affinity_is_within_the_online_cpus() {
        let mine = get_thread_affinity(own_tid()).unwrap();
        let online = online_cpus().unwrap();
        assert!(!mine.is_empty());
        assert!(
            mine.iter().all(|c| online.contains(c)),
            "{mine:?} vs {online:?}"
        );
    }

    #[test]
    fn set_and_read_back_on_a_thread_of_our_own() {
        // A thread of its own, so that the test runner's threads keep theirs.
        let first = *online_cpus().unwrap().first().unwrap();
        std::thread::spawn(move || {
            let tid = own_tid();
            set_thread_affinity(tid, &[i64::from(first), i64::from(first)]).unwrap();
            assert_eq!(get_thread_affinity(tid).unwrap(), vec![first]);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn refusals() {
        let tid = own_tid();
        let before = get_thread_affinity(tid).unwrap();
        let beyond = i64::from(*online_cpus().unwrap().last().unwrap()) + 1;
        for cpus in [&[][..], &[-1], &[100_000], &[0, 4095], &[0, beyond]] {
            let err = set_thread_affinity(tid, cpus).unwrap_err();
            assert_eq!(err.errno(), Some(nix::libc::EINVAL), "{cpus:?}: {err}");
        }
        assert_eq!(
            get_thread_affinity(tid).unwrap(),
            before,
            "a refusal changed nothing"
        );
        assert!(matches!(
            get_thread_affinity(0),
            Err(CoreError::InvalidArgument(_))
        ));
        assert!(matches!(
            set_thread_affinity(-5, &[0]),
            Err(CoreError::InvalidArgument(_))
        ));
        // pid_max is at most 2^22: this thread cannot exist.
        let err = get_thread_affinity(i32::MAX).unwrap_err();
        assert_eq!(err.errno(), Some(nix::libc::ESRCH));
        assert!(err.to_string().contains("No such process"), "{err}");
    }
}
