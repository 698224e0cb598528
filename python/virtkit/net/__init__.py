"""Virtual networks on Linux: bridges, taps, dnsmasq, nftables.

One module per concept:

=========================  ===============================================================
:mod:`~.manager`           :class:`NetworkManager`: definitions, life cycle, crash recovery,
                           dnsmasq supervision, the default network; the contract's
                           network operations
:mod:`~.backend`           :class:`NetworkBackend`: a driver mixin forwarding the contract's
                           network operations to a manager (how the QEMU driver serves them)
:mod:`~.validate`          checks before anything is touched (document, then host)
:mod:`~.bridge`            the network's bridge (rtnetlink, pyroute2)
:mod:`~.tap`               guests' tap devices on a bridge
:mod:`~.dnsmasq`           DHCP and DNS: configuration, supervised process, leases
:mod:`~.nftables`          one firewall table per network, applied atomically
:mod:`~.sysctl`            IP forwarding
:mod:`~.store`             definitions, autostart marks and status files on disk
:mod:`~.netlink`           the one place pyroute2 is imported
=========================  ===============================================================

Everything acts on the network namespace of the calling process. Nothing here
is imported by ``import virtkit``; pyroute2 is imported on first use.
"""
