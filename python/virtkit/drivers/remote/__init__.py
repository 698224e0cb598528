"""virtkit's remote driver: libvirt's remote protocol (see README.md in this directory)."""
