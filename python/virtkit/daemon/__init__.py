"""``virtkitd``: the daemon that serves libvirt's remote protocol for one URI.

- :mod:`~virtkit.daemon.main`: the command line and the daemon's life
  (lock, sockets, signals, idle exit, detaching);
- :mod:`~virtkit.daemon.paths`: where a session or system daemon keeps its
  sockets, state and configuration;
- :mod:`~virtkit.daemon.backends`: the driver behind the daemon (``--driver``);
- :mod:`~virtkit.daemon.handler`: procedures -> contract operations;
- :mod:`~virtkit.daemon.launcher`: how the library starts a session daemon.

This package imports nothing itself: ``import virtkit`` stays fast.
"""
