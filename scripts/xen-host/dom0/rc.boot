#!/bin/sh
# Boot script of the nested Xen host's dom0 (busybox init's sysinit action).
# There is no systemd or sysvinit here: this script mounts what the kernel did
# not, loads the Xen and virtio modules, starts Xen's daemons through Debian's
# own /etc/init.d/xen and prints VIRTKIT-DOM0-READY, which the harness waits for
# (xenstored and xenconsoled are up then).
#
# Kernel command-line options read here:
#   virtkit.xenstored=oxenstored|xenstored   the xenstore daemon (default oxenstored)
#   virtkit.share                            mount the 9p share tagged virtkit.share on /mnt/host
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

mounted() { grep -q " $1 " /proc/mounts 2>/dev/null; }

mounted /proc || mount -t proc proc /proc
mounted /sys || mount -t sysfs sysfs /sys
mounted /dev || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
# What udev (absent here) would add to devtmpfs.
ln -sfn /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mounted /dev/pts || mount -t devpts -o gid=5,mode=620 devpts /dev/pts
mounted /dev/shm || mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mounted /run || mount -t tmpfs -o mode=755,size=64m tmpfs /run
mkdir -p /run/lock
mounted /tmp || mount -t tmpfs -o mode=1777 tmpfs /tmp
grep -q '^/dev/vda / ext4 rw' /proc/mounts || mount -o remount,rw /
read -r up _ </proc/uptime
echo "VIRTKIT-DOM0-INIT uptime=$up"
hostname -F /etc/hostname
busybox ip link set lo up

xenstored=oxenstored
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        virtkit.xenstored=*) xenstored=${arg#*=} ;;
    esac
done
case "$xenstored" in
    oxenstored|xenstored) ;;
    *) echo "VIRTKIT-DOM0-WARN unknown virtkit.xenstored=$xenstored, using oxenstored"
       xenstored=oxenstored ;;
esac
# /etc/default/xen.virtkit is the image's copy of the file without any choice
# of daemon; the choice made at this boot is appended to a fresh copy.
cp /etc/default/xen.virtkit /etc/default/xen
echo "XENSTORED=/usr/sbin/$xenstored" >>/etc/default/xen

# One modprobe for all (each process start costs under TCG). 9p: the host's
# share, mounted at /mnt/host (the harness moves files through it).
modprobe -q -a xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs virtio_console 9pnet_virtio 9p ||
    echo "VIRTKIT-DOM0-WARN modprobe failed"
mkdir -p /mnt/host
if grep -qw virtkit.share /proc/cmdline; then
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,access=any virtkit.share /mnt/host ||
        echo "VIRTKIT-DOM0-WARN cannot mount the host's share on /mnt/host"
fi
mkdir -p /var/log/xen/console /var/lib/xen /var/run/xen
# The harness installs virtkit and its dependencies here at every boot: tar
# writes their ~1700 files into tmpfs in half the time it takes on ext4 here.
site=/usr/local/lib/python3.11/dist-packages
mkdir -p "$site"
mount -t tmpfs -o mode=755,size=256m tmpfs "$site"

read -r up _ </proc/uptime
echo "VIRTKIT-DOM0-MODULES uptime=$up"

# Xen's daemons come up in the background, so that busybox init starts the
# agent (a Python start-up of a few seconds) meanwhile.
(
    /etc/init.d/xen start </dev/null || echo "VIRTKIT-DOM0-WARN /etc/init.d/xen start failed"
    read -r up _ </proc/uptime
    version=$(cat /sys/hypervisor/version/major).$(cat /sys/hypervisor/version/minor)
    version=$version$(cat /sys/hypervisor/version/extra)
    echo "VIRTKIT-DOM0-READY uptime=$up xenstored=$xenstored xen=$version"
    # Back ends for guests with disks and NICs, not needed before.
    modprobe -q -a xen-blkback xen-netback || echo "VIRTKIT-DOM0-WARN modprobe of the back ends failed"
) &
