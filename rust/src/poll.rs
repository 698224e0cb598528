//! Polling processes through `/proc`, many at once: what the QEMU driver asks
//! about every domain's QEMU process (CPU time, state, resident memory) and
//! about each of its threads (CPU time, the CPU it last ran on, its name —
//! QEMU names vCPU threads `CPU 0/KVM` or `CPU 0/TCG` — and its affinity).
//!
//! Sources (proc(5)): `/proc/PID/stat` for the process (its `utime` and
//! `stime` sum every thread, live or exited; `rss` is the same counter as
//! `statm`'s resident and `status`'s `VmRSS`, so no second file is read) and
//! `/proc/PID/task/TID/stat` for each thread (its `comm` is the thread's
//! name, the same text as `task/TID/comm`), plus one `sched_getaffinity` per
//! thread. Times are in clock ticks (`sysconf(_SC_CLK_TCK)`, 100 per second
//! on Linux), converted to nanoseconds: their resolution is one tick.
//!
//! A process that does not exist, or vanishes while it is read, is `None`; a
//! thread that vanishes is left out. Unreadable or malformed data is an error
//! for that process only. One buffer serves every read of a [`Poller`], and
//! parsing allocates only the names it returns.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read};
use std::sync::OnceLock;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{sysconf, SysconfVar};

use crate::affinity;
use crate::error::{CoreError, CoreResult};

/// One thread of a polled process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadStats {
    /// Thread id (the main thread's equals the process id).
    pub tid: i32,
    /// The thread's name (`comm`, at most 15 bytes; lossy UTF-8).
    pub name: String,
    /// Scheduler state letter (`R`, `S`, `D`, `Z`, `T`, `t`, `X`, `I`...).
    pub state: char,
    /// CPU time, user plus system, in nanoseconds.
    pub cpu_time_ns: u64,
    /// The CPU the thread last ran on (field 39, `processor`).
    pub processor: u32,
    /// The CPUs the thread may run on, ascending.
    pub affinity: Vec<u32>,
}

/// One polled process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessStats {
    /// Process id.
    pub pid: i32,
    /// The process's name (its main thread's `comm`).
    pub name: String,
    /// Scheduler state letter of the main thread (`Z` for a zombie).
    pub state: char,
    /// CPU time of all threads, user plus system, in nanoseconds.
    pub cpu_time_ns: u64,
    /// User part of `cpu_time_ns`.
    pub user_time_ns: u64,
    /// System part of `cpu_time_ns`.
    pub system_time_ns: u64,
    /// When the process started, in nanoseconds since boot: with `pid`, it
    /// tells a process from a later one that reuses its id.
    pub start_time_ns: u64,
    /// Resident memory in KiB.
    pub rss_kib: u64,
    /// The live threads, in the order the kernel lists them (creation order,
    /// the main thread first).
    pub threads: Vec<ThreadStats>,
}

/// The fields of one `/proc/PID/stat` (or `task/TID/stat`) line that the
/// poller uses, borrowed from the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatLine<'a> {
    /// Field 1: process or thread id.
    pub id: i32,
    /// Field 2: the name, without its parentheses (raw bytes: any byte but
    /// NUL may appear, parentheses, blanks and newlines included).
    pub comm: &'a [u8],
    /// Field 3: the state letter.
    pub state: u8,
    /// Field 14, in clock ticks.
    pub utime: u64,
    /// Field 15, in clock ticks.
    pub stime: u64,
    /// Field 22, in clock ticks since boot.
    pub starttime: u64,
    /// Field 24, in pages.
    pub rss_pages: u64,
    /// Field 39.
    pub processor: u32,
}

fn parse_dec(field: &[u8]) -> Option<u64> {
    if field.is_empty() || field.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in field {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// Parse one stat line (proc(5)). The name is delimited by the first `(` and
/// the *last* `)`: it may itself contain both, and blanks. Every field after
/// it is one blank apart.
pub fn parse_stat(line: &[u8]) -> Result<StatLine<'_>, &'static str> {
    let open = line
        .iter()
        .position(|&b| b == b'(')
        .ok_or("no '(' opening the name")?;
    let close = line
        .iter()
        .rposition(|&b| b == b')')
        .filter(|&close| close > open)
        .ok_or("no ')' closing the name")?;
    let id = line[..open]
        .strip_suffix(b" ")
        .and_then(parse_dec)
        .and_then(|id| i32::try_from(id).ok())
        .ok_or("malformed id before the name")?;
    let comm = &line[open + 1..close];
    let rest = line[close + 1..]
        .strip_prefix(b" ")
        .ok_or("no blank after the name")?;
    let rest = rest.strip_suffix(b"\n").unwrap_or(rest);

    let mut fields = rest.split(|&b| b == b' ');
    // Field numbers as proc(5) counts them; `fields` starts at field 3.
    let mut next_field = 3;
    let mut field = |number: usize| -> Option<&[u8]> {
        let skip = number - next_field;
        next_field = number + 1;
        fields.nth(skip)
    };
    let state = match field(3) {
        Some(&[s]) if s.is_ascii_alphabetic() => s,
        _ => return Err("malformed state (field 3)"),
    };
    let mut number = |n: usize, what: &'static str| field(n).and_then(parse_dec).ok_or(what);
    let utime = number(14, "malformed utime (field 14)")?;
    let stime = number(15, "malformed stime (field 15)")?;
    let starttime = number(22, "malformed starttime (field 22)")?;
    let rss_pages = number(24, "malformed rss (field 24)")?;
    let processor = number(39, "malformed processor (field 39)")?;
    let processor = u32::try_from(processor).map_err(|_| "malformed processor (field 39)")?;
    Ok(StatLine {
        id,
        comm,
        state,
        utime,
        stime,
        starttime,
        rss_pages,
        processor,
    })
}

/// Host constants the conversions need, read once per process.
#[derive(Debug, Clone, Copy)]
struct Units {
    /// Clock ticks per second.
    ticks_per_second: u64,
    /// Page size in KiB.
    page_kib: u64,
}

fn units() -> CoreResult<Units> {
    static UNITS: OnceLock<Units> = OnceLock::new();
    if let Some(units) = UNITS.get() {
        return Ok(*units);
    }
    let positive = |var: SysconfVar, name: &str| -> CoreResult<u64> {
        match sysconf(var) {
            Ok(Some(v)) if v > 0 => Ok(v as u64),
            Ok(_) => Err(CoreError::system(
                "sysconf",
                Errno::EINVAL,
                format!("sysconf({name}) gave no value"),
            )),
            Err(e) => Err(CoreError::system("sysconf", e, format!("sysconf({name})"))),
        }
    };
    let units = Units {
        ticks_per_second: positive(SysconfVar::CLK_TCK, "_SC_CLK_TCK")?,
        page_kib: (positive(SysconfVar::PAGE_SIZE, "_SC_PAGE_SIZE")? / 1024).max(1),
    };
    Ok(*UNITS.get_or_init(|| units))
}

impl Units {
    fn ns(&self, ticks: u64) -> u64 {
        let ns = u128::from(ticks) * 1_000_000_000 / u128::from(self.ticks_per_second);
        u64::try_from(ns).unwrap_or(u64::MAX)
    }
}

/// Read a whole `/proc` file into `buf` (grown as needed, never shrunk);
/// return its length. `/proc` stat files are `seq_file`s that hand out their
/// whole record in one `read` when the buffer can hold it, so a read that
/// leaves room ends the file without a second, empty `read`.
fn read_proc(mut file: File, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize((buf.len() * 2).max(1024), 0);
        }
        match file.read(&mut buf[len..]) {
            Ok(0) => return Ok(len),
            Ok(n) => {
                len += n;
                if len < buf.len() {
                    return Ok(len);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// `ENOENT` when opening, `ESRCH` when reading: the process or thread is gone.
fn is_gone(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(nix::libc::ENOENT | nix::libc::ESRCH)
    )
}

/// Reads `/proc` for many processes, reusing its buffers from one to the next.
#[derive(Debug)]
pub struct Poller {
    units: Units,
    cpu_limit: usize,
    buf: Vec<u8>,
    path: String,
    tids: Vec<i32>,
}

impl Poller {
    /// A poller; fails only if `sysconf` cannot give the clock tick rate or
    /// the page size.
    pub fn new() -> CoreResult<Poller> {
        Ok(Poller {
            units: units()?,
            cpu_limit: affinity::cpu_limit(),
            buf: vec![0; 1024],
            path: String::with_capacity(64),
            tids: Vec::with_capacity(16),
        })
    }

    /// Poll each of `pids`, in order; see [`Poller::poll`].
    pub fn poll_many(&mut self, pids: &[i32]) -> Vec<CoreResult<Option<ProcessStats>>> {
        pids.iter().map(|&pid| self.poll(pid)).collect()
    }

    /// The stats of process `pid`, `None` when it does not exist or vanishes
    /// while it is read.
    ///
    /// Errors: `InvalidArgument` for `pid <= 0`; `ProcFormat` for a stat line
    /// that cannot be parsed; `System` for a `/proc` file that exists but
    /// cannot be read, or an affinity that cannot be read for a reason other
    /// than the thread being gone.
    pub fn poll(&mut self, pid: i32) -> CoreResult<Option<ProcessStats>> {
        if pid <= 0 {
            return Err(CoreError::InvalidArgument(format!(
                "a process id is a positive number, not {pid}"
            )));
        }
        self.set_path(format_args!("/proc/{pid}/stat"));
        let Some(len) = self.read(None)? else {
            return Ok(None);
        };
        let line = parse_stat(&self.buf[..len]).map_err(|reason| self.format_error(reason))?;
        let units = self.units;
        let user_time_ns = units.ns(line.utime);
        let system_time_ns = units.ns(line.stime);
        let mut stats = ProcessStats {
            pid,
            name: String::from_utf8_lossy(line.comm).into_owned(),
            state: char::from(line.state),
            cpu_time_ns: user_time_ns.saturating_add(system_time_ns),
            user_time_ns,
            system_time_ns,
            start_time_ns: units.ns(line.starttime),
            rss_kib: line.rss_pages.saturating_mul(units.page_kib),
            threads: Vec::new(),
        };

        let Some(tasks) = self.list_threads(pid)? else {
            return Ok(None);
        };
        stats.threads.reserve_exact(self.tids.len());
        for i in 0..self.tids.len() {
            let tid = self.tids[i];
            if let Some(thread) = self.poll_thread(&tasks, pid, tid)? {
                stats.threads.push(thread);
            }
        }
        // Even a zombie lists its main thread: no thread at all means the
        // process was reaped after its stat line was read.
        if stats.threads.is_empty() {
            return Ok(None);
        }
        Ok(Some(stats))
    }

    /// One thread, its stat file opened relative to the process's open task
    /// directory (which spares the kernel a path walk per thread).
    fn poll_thread(&mut self, tasks: &Dir, pid: i32, tid: i32) -> CoreResult<Option<ThreadStats>> {
        self.set_path(format_args!("/proc/{pid}/task/"));
        let relative = self.path.len();
        let _ = write!(self.path, "{tid}/stat");
        let Some(len) = self.read(Some((tasks, relative)))? else {
            return Ok(None);
        };
        let line = parse_stat(&self.buf[..len]).map_err(|reason| self.format_error(reason))?;
        let affinity = match affinity::raw_affinity(tid) {
            Ok(set) => affinity::cpus_in(&set, self.cpu_limit),
            Err(Errno::ESRCH) => return Ok(None),
            Err(e) => {
                return Err(CoreError::system(
                    "sched_getaffinity",
                    e,
                    format!("cannot get the CPU affinity of thread {tid} of process {pid}"),
                ))
            }
        };
        Ok(Some(ThreadStats {
            tid,
            name: String::from_utf8_lossy(line.comm).into_owned(),
            state: char::from(line.state),
            cpu_time_ns: self.units.ns(line.utime.saturating_add(line.stime)),
            processor: line.processor,
            affinity,
        }))
    }

    /// Fill `self.tids` from `/proc/PID/task` and return that directory,
    /// still open; `None` when the process is gone.
    fn list_threads(&mut self, pid: i32) -> CoreResult<Option<Dir>> {
        self.tids.clear();
        self.set_path(format_args!("/proc/{pid}/task"));
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let mut tasks = match Dir::open(self.path.as_str(), flags, Mode::empty()) {
            Ok(tasks) => tasks,
            Err(Errno::ENOENT | Errno::ESRCH) => return Ok(None),
            Err(e) => return Err(self.sys_error("open", e.into())),
        };
        for entry in tasks.iter() {
            let entry = match entry {
                Ok(entry) => entry,
                Err(Errno::ENOENT | Errno::ESRCH) => return Ok(None),
                Err(e) => return Err(self.sys_error("readdir", e.into())),
            };
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let tid = parse_dec(name)
                .and_then(|tid| i32::try_from(tid).ok())
                .ok_or_else(|| self.format_error("an entry that is not a thread id"))?;
            self.tids.push(tid);
        }
        Ok(Some(tasks))
    }

    fn set_path(&mut self, args: std::fmt::Arguments<'_>) {
        self.path.clear();
        // Writing into a String cannot fail.
        let _ = self.path.write_fmt(args);
    }

    /// Read `self.path` into the buffer; `None` when it is gone. With
    /// `(dir, start)`, the file is opened relative to `dir`, by the part of
    /// the path from byte `start` on.
    fn read(&mut self, at: Option<(&Dir, usize)>) -> CoreResult<Option<usize>> {
        let opened = match at {
            None => File::open(&self.path).map_err(|e| ("open", e)),
            Some((dir, start)) => {
                let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC;
                openat(dir, &self.path[start..], flags, Mode::empty())
                    .map(File::from)
                    .map_err(|e| ("openat", e.into()))
            }
        };
        let read = opened.and_then(|file| read_proc(file, &mut self.buf).map_err(|e| ("read", e)));
        match read {
            Ok(len) => Ok(Some(len)),
            Err((_, e)) if is_gone(&e) => Ok(None),
            Err((call, e)) => Err(self.sys_error(call, e)),
        }
    }

    fn sys_error(&self, call: &'static str, err: io::Error) -> CoreError {
        CoreError::from_io(call, &err, format!("cannot read {}", self.path))
    }

    fn format_error(&self, reason: &'static str) -> CoreError {
        CoreError::ProcFormat {
            path: self.path.clone(),
            reason,
        }
    }
}

/// Poll every process of `pids` with a fresh [`Poller`].
pub fn poll_processes(pids: &[i32]) -> CoreResult<Vec<CoreResult<Option<ProcessStats>>>> {
    Ok(Poller::new()?.poll_many(pids))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// A stat line as Linux 6.x prints it, with `comm` and a few fields
    /// substituted.
    fn line(comm: &str, state: char, utime: u64, stime: u64, processor: u32) -> String {
        format!(
            "4242 ({comm}) {state} 1 4242 4242 0 -1 4194560 9163 0 1 0 {utime} {stime} 0 0 20 0 \
             4 0 123456 1073741824 2048 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 \
             {processor} 0 0 0 77 0 0 0 0 0 0 0 0 0\n"
        )
    }

    #[test]
    fn parses_a_plain_line() {
        let text = line("qemu-system-x86", 'S', 250, 40, 1);
        let stat = parse_stat(text.as_bytes()).unwrap();
        assert_eq!(
            stat,
            StatLine {
                id: 4242,
                comm: b"qemu-system-x86",
                state: b'S',
                utime: 250,
                stime: 40,
                starttime: 123456,
                rss_pages: 2048,
                processor: 1,
            }
        );
    }

    #[test]
    fn names_with_blanks_and_parentheses() {
        for comm in [
            "CPU 0/KVM",
            "CPU 12/TCG",
            "a) b (c",
            ") S 1 2 3",
            "((()))",
            "x)",
            "",
            " ",
            "tab\there",
            "new\nline",
        ] {
            let text = line(comm, 'R', 7, 3, 0);
            let stat = parse_stat(text.as_bytes()).unwrap_or_else(|e| panic!("{comm:?}: {e}"));
            assert_eq!(stat.comm, comm.as_bytes());
            assert_eq!((stat.state, stat.utime, stat.stime), (b'R', 7, 3));
        }
    }

    #[test]
    fn non_utf8_names_survive_as_bytes() {
        let mut text = b"7 (\xff\xfe) S".to_vec();
        text.extend_from_slice(&line("x", 'S', 1, 2, 0).as_bytes()[10..]);
        let stat = parse_stat(&text).unwrap();
        assert_eq!(stat.comm, b"\xff\xfe");
    }

    #[test]
    fn refuses_malformed_lines() {
        let good = line("qemu", 'S', 1, 2, 3);
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "no '('"),
            ("4242 qemu S 1".into(), "no '('"),
            ("4242 (qemu S 1".into(), "no ')'"),
            (")4242 (qemu".into(), "no ')'"),
            (good.replacen("4242 ", "", 1), "malformed id"),
            (good.replacen("4242", "-42", 1), "malformed id"),
            (good.replacen("4242", "99999999999", 1), "malformed id"),
            (good.replacen(") S", ")S", 1), "no blank"),
            (good.replacen(") S", ") 5", 1), "malformed state"),
            (good.replacen(") S", ") SS", 1), "malformed state"),
            (good.replacen(" 1 2 0 0 20", " x 2 0 0 20", 1), "utime"),
            (good.replacen(" 1 2 0 0 20", " 1  2 0 0 20", 1), "stime"),
            (good.replacen(" 1 2 0 0 20", " 1 -2 0 0 20", 1), "stime"),
            (
                good[..good.find(" 123456").unwrap()].to_string(),
                "starttime",
            ),
            (
                good[..good.find(" 17 3 ").unwrap() + 4].to_string(),
                "processor",
            ),
            (good.replacen(" 17 3 ", " 17 99999999999 ", 1), "processor"),
        ];
        for (text, why) in cases {
            let err = parse_stat(text.as_bytes()).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err:?}, expected {why:?}");
        }
    }

    #[test]
    fn a_line_may_end_at_the_last_field_needed() {
        // Old kernels printed fewer fields; all that is needed is up to 39.
        let good = line("q", 'S', 1, 2, 3);
        let cut = &good[..good.find(" 17 3 ").unwrap() + 5];
        assert_eq!(parse_stat(cut.as_bytes()).unwrap().processor, 3);
        // A missing final newline is fine too.
        assert!(parse_stat(good.trim_end().as_bytes()).is_ok());
    }

    #[test]
    fn converts_ticks_to_nanoseconds() {
        let hz100 = Units {
            ticks_per_second: 100,
            page_kib: 4,
        };
        assert_eq!(hz100.ns(3), 30_000_000);
        let odd = Units {
            ticks_per_second: 300,
            page_kib: 4,
        };
        assert_eq!(odd.ns(1), 3_333_333);
        assert_eq!(hz100.ns(u64::MAX), u64::MAX);
    }

    fn own_pid() -> i32 {
        std::process::id() as i32
    }

    #[test]
    fn polls_the_test_process_itself() {
        let stop = Arc::new(AtomicBool::new(false));
        let spinner = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("CPU 0/TCG".into())
                .spawn(move || {
                    let tid = nix::unistd::gettid().as_raw();
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                    tid
                })
                .unwrap()
        };
        let mut poller = Poller::new().unwrap();
        let first = poller.poll(own_pid()).unwrap().expect("we exist");
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut later = first.clone();
        while later.cpu_time_ns <= first.cpu_time_ns + 20_000_000 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            later = poller.poll(own_pid()).unwrap().expect("we exist");
        }
        stop.store(true, Ordering::Relaxed);
        let spinner_tid = spinner.join().unwrap();
        let me = nix::unistd::gettid().as_raw();

        assert_eq!(later.pid, own_pid());
        let poller_thread = later.threads.iter().find(|t| t.tid == me).unwrap();
        assert_eq!(poller_thread.state, 'R', "the polling thread is running");
        assert!(later.cpu_time_ns > first.cpu_time_ns, "CPU time grows");
        assert_eq!(later.cpu_time_ns, later.user_time_ns + later.system_time_ns);
        assert_eq!(later.start_time_ns, first.start_time_ns);
        assert!(later.rss_kib > 100, "{} KiB resident", later.rss_kib);
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let vm_rss: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap();
        let (lo, hi) = (vm_rss.min(later.rss_kib), vm_rss.max(later.rss_kib));
        assert!(
            hi - lo < hi / 4 + 1024,
            "rss {} KiB vs VmRSS {vm_rss} KiB",
            later.rss_kib
        );

        assert_eq!(
            later.threads[0].tid,
            own_pid(),
            "the main thread comes first"
        );
        let spun = later
            .threads
            .iter()
            .find(|t| t.tid == spinner_tid)
            .expect("the spinning thread is listed");
        assert_eq!(spun.name, "CPU 0/TCG");
        assert!(spun.cpu_time_ns > 0);
        let online = affinity::online_cpus().unwrap();
        for thread in &later.threads {
            assert!(online.contains(&thread.processor), "{thread:?}");
            assert!(!thread.affinity.is_empty(), "{thread:?}");
            assert!(
                thread.affinity.iter().all(|c| online.contains(c)),
                "{thread:?}"
            );
        }
    }

    #[test]
    fn missing_processes_are_none_and_bad_pids_errors() {
        let mut poller = Poller::new().unwrap();
        // pid_max is at most 2^22.
        assert_eq!(poller.poll(i32::MAX).unwrap(), None);
        assert!(matches!(poller.poll(0), Err(CoreError::InvalidArgument(_))));
        let all = poll_processes(&[own_pid(), i32::MAX, -1, own_pid()]).unwrap();
        assert!(matches!(all[0], Ok(Some(_))));
        assert!(matches!(all[1], Ok(None)));
        assert!(all[2].is_err());
        assert!(
            matches!(all[3], Ok(Some(_))),
            "one bad pid spoils nothing else"
        );
    }

    #[test]
    fn a_reaped_child_is_gone() {
        let mut child = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let mut poller = Poller::new().unwrap();
        // A vfork-based spawn returns before the kernel renames the child.
        let deadline = Instant::now() + Duration::from_secs(5);
        let alive = loop {
            let alive = poller.poll(pid).unwrap().expect("the child runs");
            if alive.name == "sleep" || Instant::now() > deadline {
                break alive;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        assert_eq!(alive.name, "sleep");
        assert_eq!(alive.threads.len(), 1);
        child.kill().unwrap();
        // Killed but not reaped: a zombie, still listed with its main thread.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let zombie = poller.poll(pid).unwrap().expect("not reaped yet");
            if zombie.state == 'Z' {
                assert_eq!(zombie.rss_kib, 0);
                break;
            }
            assert!(Instant::now() < deadline, "never became a zombie");
            std::thread::sleep(Duration::from_millis(5));
        }
        child.wait().unwrap();
        assert_eq!(poller.poll(pid).unwrap(), None);
    }
}
