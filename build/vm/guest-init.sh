#!/bin/sh
# /init of the QEMU USB test guest (built into the initramfs by build-image.sh).
# Mounts the kernel filesystems, loads the modules in dependency order with the parameters given on
# the kernel command line (busybox insmod does not read `module.param=` from it), then serves the
# host's commands on the second serial port (ttyS1). It does NOT touch USB authorisation: setting
# default-deny is the agent's job, and the test checks that the agent does it.
#
# Protocol on ttyS1 (raw, no echo): the host writes `<id> <base64 of a sh command>\n`; the guest
# runs it with `sh -c` and answers `@@BEGIN <id>\n<output>@@END <id> <exit code>\n`.
export PATH=/bin:/sbin:/usr/bin
export HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mkdir -p /var/lib /mnt/a /mnt/b /dev/pts
ln -sf /proc/self/fd /dev/fd

# Module parameters from the command line: `usb_storage.delay_use=0` -> insmod usb-storage.ko delay_use=0
CMDLINE="$(cat /proc/cmdline)"
while read -r ko; do
  module="$(basename "$ko" .ko | tr - _)"
  params=""
  for word in $CMDLINE; do
    case "$word" in
      "$module".*=*) params="$params ${word#"$module".}" ;;
    esac
  done
  # shellcheck disable=SC2086
  insmod "$ko" $params || echo "init: insmod $ko$params failed"
done < /etc/modules.order

ip link set lo up 2>/dev/null
echo "init: modules loaded; serving commands on ttyS1"

stty -F /dev/ttyS1 raw -echo 115200 2>/dev/null || echo "init: stty ttyS1 failed"
while IFS= read -r line; do
  id="${line%% *}"
  encoded="${line#* }"
  [ -n "$id" ] && [ "$id" != "$line" ] || continue
  command="$(printf '%s' "$encoded" | base64 -d 2>/dev/null)" || continue
  sh -c "$command" > /tmp/.out 2>&1 < /dev/null
  rc=$?
  printf '@@BEGIN %s\n' "$id"
  cat /tmp/.out
  printf '@@END %s %s\n' "$id" "$rc"
done < /dev/ttyS1 > /dev/ttyS1
echo "init: command channel closed; powering off"
poweroff -f
