//! Which `domctl` and `sysctl` interface versions a hypervisor speaks.
//!
//! Xen refuses a `domctl` or `sysctl` whose `interface_version` is not the
//! one it was built with, with `EACCES` (measured on Xen 4.17: sysctl physinfo
//! with 0x15 returns 0, with 0x14 -13), and the toolstack is built for one
//! exact release. virtkit is not: it carries the table below and finds, when a
//! connection opens, which entry the running hypervisor answers to.
//!
//! Detection ([`detect`]): `xen_version` names the release; its entry's
//! versions are tried first (one sysctl `physinfo`, one domctl
//! `getdomaininfo` of domain 0). If either is refused with `EACCES`, every
//! other version of the table is tried, newest first. A hypervisor that
//! refuses them all is newer (or older) than the table: that is a clear
//! [`CoreError::Xen`] error, and the Xen driver serves what it can through
//! xenstore and the toolstack.
//!
//! # Sources
//!
//! The numbers are `XEN_DOMCTL_INTERFACE_VERSION` in
//! `xen/include/public/domctl.h` and `XEN_SYSCTL_INTERFACE_VERSION` in
//! `xen/include/public/sysctl.h` of xen-project/xen at each release tag,
//! read from the tagged trees (the commit each tag names is given per entry);
//! each value was checked to be the same at the newest point release of the
//! series (4.14.6, 4.16.7, 4.17.7, 4.18.6, 4.19.6, 4.20.4). The 4.17 pair is
//! also the measured one (`../shared/reference/xen-nested-host.md`) and the
//! one Debian 12's `libxen-dev` 4.17.7 headers define. Which distributions
//! ship a release is why it is in the table, not a fact the code relies on.

use nix::errno::Errno;

use crate::error::{CoreError, CoreResult};

/// One Xen release series and the interface versions it was built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    /// Major version (`xen_version() >> 16`).
    pub major: u32,
    /// Minor version (`xen_version() & 0xffff`).
    pub minor: u32,
    /// `XEN_DOMCTL_INTERFACE_VERSION`.
    pub domctl: u32,
    /// `XEN_SYSCTL_INTERFACE_VERSION`.
    pub sysctl: u32,
    /// Who ships it (why the entry is here).
    pub shipped_by: &'static str,
}

/// Every release virtkit's hypercalls know, oldest first.
pub const RELEASES: &[Release] = &[
    // RELEASE-4.14.0 = 456957aaa1391e0dfa969e2dd97b87c51a79444e (4.14.6 same).
    Release {
        major: 4,
        minor: 14,
        domctl: 0x12,
        sysctl: 0x13,
        shipped_by: "Debian 11 (bullseye, LTS)",
    },
    // RELEASE-4.15.0 = e25aa9939ae0cd8317605be3d5c5611b76bc4ab4 (4.15.5 same).
    Release {
        major: 4,
        minor: 15,
        domctl: 0x13,
        sysctl: 0x13,
        shipped_by: "upstream security support ended; kept as the step between 4.14 and 4.16",
    },
    // RELEASE-4.16.0 = b0b4661fa3cba995e433b94ea569c90f65a3e5fc (4.16.7 same).
    Release {
        major: 4,
        minor: 16,
        domctl: 0x14,
        sysctl: 0x14,
        shipped_by: "Ubuntu 22.04 LTS",
    },
    // RELEASE-4.17.0 = 11560248ffda3f00f20bbdf3ae088af474f7f2a3 (4.17.7 same;
    // measured in the nested test host).
    Release {
        major: 4,
        minor: 17,
        domctl: 0x15,
        sysctl: 0x15,
        shipped_by: "Debian 12 (bookworm), Ubuntu 24.04 LTS",
    },
    // RELEASE-4.18.0 = d75f1e9b74314cea91ce435730d4e3539ecca77d (4.18.6 same).
    Release {
        major: 4,
        minor: 18,
        domctl: 0x16,
        sysctl: 0x15,
        shipped_by: "openSUSE Leap / SLES 15 SP6",
    },
    // RELEASE-4.19.0 = 026c9fa29716b0ff0f8b7c687908e71ba29cf239 (4.19.6 same).
    Release {
        major: 4,
        minor: 19,
        domctl: 0x17,
        sysctl: 0x15,
        shipped_by: "Fedora, Alpine, Arch",
    },
    // RELEASE-4.20.0 = 3ad5d648cda5add395f49fc3704b2552aae734f7 (4.20.4 same).
    Release {
        major: 4,
        minor: 20,
        domctl: 0x17,
        sysctl: 0x15,
        shipped_by: "Debian 13 (trixie)",
    },
    // RELEASE-4.21.0 = 06af9ef22996cecc2024a2e6523cec77a655581e.
    Release {
        major: 4,
        minor: 21,
        domctl: 0x17,
        sysctl: 0x16,
        shipped_by: "current upstream stable",
    },
    // RELEASE-4.22.0 = d45d5687f1441495f4ee20d5e9940066c5fa5beb.
    Release {
        major: 4,
        minor: 22,
        domctl: 0x18,
        sysctl: 0x16,
        shipped_by: "current upstream release",
    },
];

/// The table's entry for Xen `major.minor`, if any.
pub fn release(major: u32, minor: u32) -> Option<&'static Release> {
    RELEASES
        .iter()
        .find(|r| r.major == major && r.minor == minor)
}

/// Layout of `xen_domctl_getdomaininfo` (and of getdomaininfolist records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainInfoLayout {
    /// Xen 4.13-4.15 (domctl 0x12, 0x13): 104 bytes.
    Xen413,
    /// Xen 4.16 and later (domctl 0x14 on): 112 bytes, `gpaddr_bits` added.
    Xen416,
}

impl DomainInfoLayout {
    /// The layout a hypervisor with domctl interface `version` uses.
    pub fn for_domctl(version: u32) -> DomainInfoLayout {
        if version >= 0x14 {
            DomainInfoLayout::Xen416
        } else {
            DomainInfoLayout::Xen413
        }
    }

    /// Size of one record.
    pub fn size(self) -> usize {
        match self {
            DomainInfoLayout::Xen413 => std::mem::size_of::<super::abi::DomainInfo413>(),
            DomainInfoLayout::Xen416 => std::mem::size_of::<super::abi::DomainInfo416>(),
        }
    }
}

/// Layout of `xen_sysctl_physinfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhysinfoLayout {
    /// Xen 4.13-4.16 (sysctl 0x12-0x14): 104 bytes.
    Xen413,
    /// Xen 4.17 and later (sysctl 0x15 on): 112 bytes, `arch_capabilities` added.
    Xen417,
}

impl PhysinfoLayout {
    /// The layout a hypervisor with sysctl interface `version` uses.
    pub fn for_sysctl(version: u32) -> PhysinfoLayout {
        if version >= 0x15 {
            PhysinfoLayout::Xen417
        } else {
            PhysinfoLayout::Xen413
        }
    }
}

/// Which interface a probe tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `__HYPERVISOR_sysctl` (probed with `physinfo`).
    Sysctl,
    /// `__HYPERVISOR_domctl` (probed with `getdomaininfo` of domain 0).
    Domctl,
}

impl Kind {
    /// `sysctl` or `domctl`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Sysctl => "sysctl",
            Kind::Domctl => "domctl",
        }
    }
}

/// One attempt of detection: the version tried and what Xen said (0: accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub kind: Kind,
    pub version: u32,
    pub errno: i32,
}

/// The interface a hypervisor answered to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// The domctl interface version in use.
    pub domctl: u32,
    /// The sysctl interface version in use.
    pub sysctl: u32,
    /// The table's entry for the running release (None: versions matched an
    /// entry of another release, e.g. a point release the table lacks).
    pub release: Option<&'static Release>,
    /// Every attempt detection made, in order.
    pub probes: Vec<Probe>,
}

impl Interface {
    /// Layout of the domain info records.
    pub fn domain_info_layout(&self) -> DomainInfoLayout {
        DomainInfoLayout::for_domctl(self.domctl)
    }

    /// Layout of physinfo.
    pub fn physinfo_layout(&self) -> PhysinfoLayout {
        PhysinfoLayout::for_sysctl(self.sysctl)
    }
}

/// The versions to try for one interface: `preferred` first (in order), then
/// the table's distinct versions, newest first.
pub fn candidates(kind: Kind, preferred: &[u32]) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::new();
    let mut table: Vec<u32> = RELEASES
        .iter()
        .map(|r| match kind {
            Kind::Sysctl => r.sysctl,
            Kind::Domctl => r.domctl,
        })
        .collect();
    table.sort_unstable_by(|a, b| b.cmp(a));
    for v in preferred.iter().copied().chain(table) {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

fn hex_list(versions: &[u32]) -> String {
    versions
        .iter()
        .map(|v| format!("{v:#x}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Find the first version of `versions` that `attempt` does not refuse with
/// `EACCES`; every attempt is recorded in `probes`. Other errors stop the
/// search (they are not about the version).
fn find(
    kind: Kind,
    versions: &[u32],
    probes: &mut Vec<Probe>,
    xen: (u32, u32),
    attempt: &mut dyn FnMut(u32) -> Result<(), Errno>,
) -> CoreResult<u32> {
    for &version in versions {
        match attempt(version) {
            Ok(()) => {
                probes.push(Probe {
                    kind,
                    version,
                    errno: 0,
                });
                return Ok(version);
            }
            Err(Errno::EACCES) => probes.push(Probe {
                kind,
                version,
                errno: Errno::EACCES as i32,
            }),
            Err(errno) => {
                let what = match kind {
                    Kind::Sysctl => "sysctl physinfo",
                    Kind::Domctl => "domctl getdomaininfo of domain 0",
                };
                return Err(CoreError::Xen {
                    call: kind.name(),
                    errno: errno as i32,
                    message: format!(
                        "cannot detect the {} interface of Xen {}.{}: {what} with version {version:#x} failed",
                        kind.name(),
                        xen.0,
                        xen.1
                    ),
                });
            }
        }
    }
    Err(CoreError::Xen {
        call: kind.name(),
        errno: Errno::EACCES as i32,
        message: format!(
            "Xen {}.{} refuses every {} interface version virtkit knows ({}): this release is \
             not in virtkit's table (rust/src/hypercall/versions.rs); hypercalls are unavailable, \
             xenstore and the toolstack can still serve",
            xen.0,
            xen.1,
            kind.name(),
            hex_list(versions)
        ),
    })
}

/// Detect the interface of Xen `xen` (major, minor from `xen_version`).
///
/// `try_sysctl(v)` / `try_domctl(v)` make one probing call with version `v`.
/// `prefer` (domctl, sysctl) is tried before anything else (for tests: a
/// wrong pair shows the `EACCES` path on a real hypervisor).
pub fn detect(
    xen: (u32, u32),
    prefer: Option<(u32, u32)>,
    try_sysctl: &mut dyn FnMut(u32) -> Result<(), Errno>,
    try_domctl: &mut dyn FnMut(u32) -> Result<(), Errno>,
) -> CoreResult<Interface> {
    let known = release(xen.0, xen.1);
    let mut pref_sysctl = Vec::new();
    let mut pref_domctl = Vec::new();
    if let Some((d, s)) = prefer {
        pref_domctl.push(d);
        pref_sysctl.push(s);
    }
    if let Some(r) = known {
        pref_domctl.push(r.domctl);
        pref_sysctl.push(r.sysctl);
    }
    let mut probes = Vec::new();
    let sysctl = find(
        Kind::Sysctl,
        &candidates(Kind::Sysctl, &pref_sysctl),
        &mut probes,
        xen,
        try_sysctl,
    )?;
    let domctl = find(
        Kind::Domctl,
        &candidates(Kind::Domctl, &pref_domctl),
        &mut probes,
        xen,
        try_domctl,
    )?;
    let release = known
        .filter(|r| r.domctl == domctl && r.sysctl == sysctl)
        .or_else(|| {
            RELEASES
                .iter()
                .find(|r| r.domctl == domctl && r.sysctl == sysctl)
        });
    Ok(Interface {
        domctl,
        sysctl,
        release,
        probes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_holds_the_measured_4_17_pair() {
        let r = release(4, 17).unwrap();
        assert_eq!((r.domctl, r.sysctl), (0x15, 0x15));
        assert_eq!(
            (
                release(4, 14).unwrap().domctl,
                release(4, 14).unwrap().sysctl
            ),
            (0x12, 0x13)
        );
        assert_eq!(release(4, 19).unwrap().domctl, 0x17);
        assert!(release(3, 4).is_none());
    }

    #[test]
    fn the_table_is_ordered_and_versions_never_go_back() {
        for pair in RELEASES.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            assert!((a.major, a.minor) < (b.major, b.minor), "{a:?} {b:?}");
            assert!(a.domctl <= b.domctl && a.sysctl <= b.sysctl, "{a:?} {b:?}");
        }
    }

    #[test]
    fn layouts_follow_the_versions() {
        assert_eq!(DomainInfoLayout::for_domctl(0x12), DomainInfoLayout::Xen413);
        assert_eq!(DomainInfoLayout::for_domctl(0x13), DomainInfoLayout::Xen413);
        assert_eq!(DomainInfoLayout::for_domctl(0x14), DomainInfoLayout::Xen416);
        assert_eq!(DomainInfoLayout::for_domctl(0x17), DomainInfoLayout::Xen416);
        assert_eq!(DomainInfoLayout::Xen413.size(), 104);
        assert_eq!(DomainInfoLayout::Xen416.size(), 112);
        assert_eq!(PhysinfoLayout::for_sysctl(0x14), PhysinfoLayout::Xen413);
        assert_eq!(PhysinfoLayout::for_sysctl(0x15), PhysinfoLayout::Xen417);
        assert_eq!(PhysinfoLayout::for_sysctl(0x16), PhysinfoLayout::Xen417);
    }

    #[test]
    fn candidates_put_the_preferred_first_without_repeats() {
        assert_eq!(
            candidates(Kind::Sysctl, &[0x15]),
            vec![0x15, 0x16, 0x14, 0x13]
        );
        assert_eq!(
            candidates(Kind::Domctl, &[]),
            vec![0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12]
        );
    }

    /// A fake hypervisor that accepts exactly one version of each interface.
    fn accepting(v: u32) -> impl FnMut(u32) -> Result<(), Errno> {
        move |tried| {
            if tried == v {
                Ok(())
            } else {
                Err(Errno::EACCES)
            }
        }
    }

    #[test]
    fn a_known_release_costs_one_call_per_interface() {
        let iface = detect((4, 17), None, &mut accepting(0x15), &mut accepting(0x15)).unwrap();
        assert_eq!((iface.domctl, iface.sysctl), (0x15, 0x15));
        assert_eq!(iface.release.unwrap().minor, 17);
        assert_eq!(iface.probes.len(), 2);
        assert_eq!(iface.domain_info_layout(), DomainInfoLayout::Xen416);
        assert_eq!(iface.physinfo_layout(), PhysinfoLayout::Xen417);
    }

    #[test]
    fn a_wrong_preference_is_refused_with_eacces_then_found() {
        let iface = detect(
            (4, 17),
            Some((0x14, 0x14)),
            &mut accepting(0x15),
            &mut accepting(0x15),
        )
        .unwrap();
        assert_eq!((iface.domctl, iface.sysctl), (0x15, 0x15));
        let eacces = Errno::EACCES as i32;
        assert_eq!(
            iface.probes,
            vec![
                Probe {
                    kind: Kind::Sysctl,
                    version: 0x14,
                    errno: eacces
                },
                Probe {
                    kind: Kind::Sysctl,
                    version: 0x15,
                    errno: 0
                },
                Probe {
                    kind: Kind::Domctl,
                    version: 0x14,
                    errno: eacces
                },
                Probe {
                    kind: Kind::Domctl,
                    version: 0x15,
                    errno: 0
                },
            ]
        );
    }

    #[test]
    fn an_unlisted_point_release_is_found_by_trial() {
        // A 4.99 that kept 4.19's versions: found, named after the entry it matches.
        let iface = detect((4, 99), None, &mut accepting(0x15), &mut accepting(0x17)).unwrap();
        assert_eq!((iface.domctl, iface.sysctl), (0x17, 0x15));
        assert_eq!(iface.release.unwrap().minor, 19);
    }

    #[test]
    fn an_unknown_interface_is_a_clear_error() {
        let err = detect((4, 30), None, &mut accepting(0x40), &mut accepting(0x40)).unwrap_err();
        assert_eq!(err.errno(), Some(Errno::EACCES as i32));
        let text = err.to_string();
        assert!(
            text.contains("Xen 4.30 refuses every sysctl interface version"),
            "{text}"
        );
        assert!(text.contains("0x16, 0x15, 0x14, 0x13"), "{text}");
        assert!(text.contains("xenstore"), "{text}");
        // Only sysctl was tried: detection stops at the first interface it cannot find.
        let err = detect((4, 30), None, &mut accepting(0x15), &mut accepting(0x40)).unwrap_err();
        assert!(err.to_string().contains("domctl"), "{err}");
    }

    #[test]
    fn another_error_stops_detection() {
        let mut eperm = |_| Err(Errno::EPERM);
        let err = detect((4, 17), None, &mut eperm, &mut accepting(0x15)).unwrap_err();
        assert_eq!(err.errno(), Some(Errno::EPERM as i32));
        assert!(err.to_string().contains("sysctl physinfo"), "{err}");
    }
}
