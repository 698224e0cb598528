/*
 * xen_libvirt_vme_shim.c: an LD_PRELOAD library for the benchmark peer only.
 *
 * What it does: it wraps libxenlight's libxl_get_physinfo(). After the real
 * function has filled in the physinfo, it sets bit 1 of hw_cap[0] (CPUID leaf
 * 1, EDX: VME, virtual-8086 mode extensions) when word 0 is not empty. Nothing
 * else is touched: no other field, no other call.
 *
 * Why: benches/peers/xen_libvirt.py measures libvirt 9.0's libxl driver
 * (Debian 12's libvirt-daemon-driver-xen) inside the nested Xen host, whose
 * CPU is QEMU's TCG "qemu64" model. That model has no VME, so Xen's
 * physinfo.hw_cap word 0 (CPUID.1.EDX) lacks bit 1. When libvirtd loads the
 * libxl driver it builds its capabilities (libxlCapsInitHost ->
 * libxlCapsInitCPU in src/libxl/libxl_capabilities.c): it turns hw_cap into
 * CPUID data and decodes it against libvirt's x86 CPU models. For a host CPU a
 * model is only a candidate when the host has every feature of the model, and
 * every x86 model libvirt knows includes vme, so no model fits ("Cannot find
 * suitable CPU model for given data"), libxlCapsInitCPU fails and with it the
 * whole driver: libvirtd then has no xen:/// at all. With the bit set, the
 * decode finds a model and the driver starts. Guests are unaffected: hw_cap is
 * only the description libvirt reads, not what Xen offers to domains.
 *
 * How: libvirtd loads the driver module with dlopen(), and the module calls
 * libxl_get_physinfo through its PLT; a preloaded definition comes first in
 * the lookup. The real function is found in libxenlight itself (dlopen of its
 * soname, which is already loaded by then), because RTLD_NEXT does not see
 * libraries that a later dlopen() brought in.
 *
 * Build (xen_libvirt.py does it on the host, into the cache): cc -shared -fPIC
 * -O2 -I<libxen-dev's include dir> -DXENLIGHT_SONAME='"libxenlight.so.4.17"'
 * -o xen_libvirt_vme_shim.so xen_libvirt_vme_shim.c -ldl, with the libxl.h of
 * the libxen-dev version that matches dom0's Xen (the struct layout comes from
 * that header).
 */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include <libxl.h>

#ifndef XENLIGHT_SONAME
#error "define XENLIGHT_SONAME, e.g. -DXENLIGHT_SONAME='\"libxenlight.so.4.17\"'"
#endif

#define HWCAP_WORD_CPUID1_EDX 0
#define CPUID1_EDX_VME (1u << 1)

typedef int (*physinfo_fn)(libxl_ctx *, libxl_physinfo *);

int libxl_get_physinfo(libxl_ctx *ctx, libxl_physinfo *physinfo)
{
    static physinfo_fn real;
    int rc;

    if (!real) {
        void *lib = dlopen(XENLIGHT_SONAME, RTLD_LAZY | RTLD_LOCAL);

        if (lib)
            real = (physinfo_fn)dlsym(lib, "libxl_get_physinfo");
        if (!real) {
            fprintf(stderr, "xen_libvirt_vme_shim: no libxl_get_physinfo in %s: %s\n",
                    XENLIGHT_SONAME, dlerror());
            abort();
        }
    }
    rc = real(ctx, physinfo);
    /* An all-zero word 0 means "no x86 CPUID data" (ARM); leave it alone. */
    if (rc == 0 && physinfo->hw_cap[HWCAP_WORD_CPUID1_EDX])
        physinfo->hw_cap[HWCAP_WORD_CPUID1_EDX] |= CPUID1_EDX_VME;
    return rc;
}
