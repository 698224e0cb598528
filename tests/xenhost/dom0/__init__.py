"""Tests that run *inside* dom0 of the nested Xen host, as root, with pytest there.

They are not collected on the machine running the suite (their files are
named ``dom0_*.py``, not ``test_*.py``): ``tests/xenhost/test_dom0.py`` copies
this directory (and ``tests/conformance``) into dom0, runs pytest there against
``xen:///`` and reports each dom0 test's outcome. Helpers: :mod:`.guests`.
"""
