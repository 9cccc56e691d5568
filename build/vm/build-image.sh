#!/usr/bin/env bash
# Builds the guest for the QEMU USB test (test/vm/): a Debian 6.1 kernel and an initramfs holding
# busybox, this machine's node binary with its shared libraries, the built agent (dist/agent,
# dist/shared) and the production packages it imports (winston, zod, usb and what they need).
#
# Everything comes from Debian's apt (kernel .deb via `apt-get download`, busybox-static and node
# already installed on this machine) and the checkout's node_modules (from the npm registry).
# Nothing is downloaded from anywhere else and nothing binary is committed.
#
# The result is cached in $SEKIMORI_VM_CACHE (default <repo>/.vm-cache), keyed by a hash of its
# inputs; a warm run only hashes and prints. Output (stdout, last line): the image directory, which
# holds `vmlinux` (uncompressed, boots faster under TCG than the bzImage), `initrd.cpio` and
# `manifest.txt`.
#
# Needs: apt-get, dpkg, kmod (depmod, modprobe), cpio, xz-utils, busybox-static, and `npm run build`
# done before (dist/agent/cli.js).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SELF="$ROOT/build/vm/build-image.sh"
INIT="$ROOT/build/vm/guest-init.sh"
CACHE="${SEKIMORI_VM_CACHE:-$ROOT/.vm-cache}"
NODE_BIN="$(readlink -f "$(command -v node)")"
BUSYBOX="/bin/busybox"

log() { echo "build-image: $*" >&2; }
die() { echo "build-image: $*" >&2; exit 1; }

for tool in apt-get apt-cache dpkg dpkg-query depmod modprobe cpio xz sha256sum; do
  command -v "$tool" >/dev/null || die "missing tool: $tool"
done
[ -x "$BUSYBOX" ] || die "missing $BUSYBOX (apt-get install busybox-static)"
"$BUSYBOX" --list | grep -x blockdev >/dev/null || die "$BUSYBOX has no blockdev applet"
[ -f "$ROOT/dist/agent/cli.js" ] || die "dist/agent/cli.js missing: run npm run build first"

# The modules the guest needs, by name; their dependencies are resolved (in load order) below.
# USB host (xhci), storage (usb-storage, uas, sd_mod), FAT for the mount test, HID for the keyboard,
# and usbnet drivers so a usb-net adapter *would* get an interface if it were allowed.
MODULES=(xhci_pci usb_storage uas sd_mod vfat nls_cp437 nls_ascii nls_utf8 usbhid hid_generic evdev cdc_ether rndis_host)

# The kernel: whatever linux-image-amd64 depends on in this machine's apt sources.
mkdir -p "$CACHE/debs"
kernel_package() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2 }' | head -n 1 || true; }
KPKG="$(kernel_package)"
if [ -z "$KPKG" ] && [ "$(id -u)" = 0 ]; then
  log "apt-cache knows no linux-image-amd64: apt-get update"
  apt-get update -qq >&2 || true
  KPKG="$(kernel_package)"
fi
[ -n "$KPKG" ] || die "apt-cache knows no linux-image-amd64 (run apt-get update)"
KVER_DEB="$(apt-cache policy "$KPKG" | awk '/Candidate:/ { print $2 }')"
KDEB="$(ls "$CACHE/debs/${KPKG}_"*"_amd64.deb" 2>/dev/null | head -n 1 || true)"
if [ -z "$KDEB" ]; then
  log "apt-get download $KPKG ($KVER_DEB)"
  (cd "$CACHE/debs" && apt-get download -q "$KPKG" >&2) || die "apt-get download $KPKG failed"
  KDEB="$(ls "$CACHE/debs/${KPKG}_"*"_amd64.deb" | head -n 1)"
fi
KDEB_ID="$(basename "$KDEB")"

# Inputs of the image: the hash names the cache entry.
dist_hash() { (cd "$ROOT" && find dist/agent dist/shared -type f -name '*.js' | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-64); }
KEY="$(
  {
    echo "kernel $KDEB_ID"
    echo "modules ${MODULES[*]}"
    echo "busybox $(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || sha256sum "$BUSYBOX")"
    echo "node $(stat -c '%s %Y' "$NODE_BIN") $("$NODE_BIN" --version)"
    echo "dist $(dist_hash)"
    echo "lock $(sha256sum "$ROOT/package-lock.json" | cut -c1-64)"
    sha256sum "$SELF" "$INIT"
  } | sha256sum | cut -c1-16
)"
OUT="$CACHE/image-$KEY"
if [ -f "$OUT/vmlinux" ] && [ -f "$OUT/initrd.cpio" ]; then
  log "cached: $OUT"
  echo "$OUT"
  exit 0
fi

WORK="$(mktemp -d "$CACHE/work.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
log "building $OUT"

# --- kernel and modules (cached per kernel package and module list) ----------------------------
R="$WORK/root"
mkdir -p "$R"/{bin,sbin,dev,proc,sys,tmp,mnt,etc,root,run,var/lib,opt/sekimori,lib/modules}
KCACHE="$CACHE/kernel-$(echo "$KDEB_ID ${MODULES[*]}" | sha256sum | cut -c1-12)"
if [ ! -f "$KCACHE/vmlinux" ]; then
  log "extracting $KDEB_ID"
  KW="$WORK/kernel"
  dpkg -x "$KDEB" "$KW"
  KVER="$(ls "$KW/lib/modules" | head -n 1)"
  depmod -b "$KW" "$KVER"   # the .deb carries no modules.dep
  rm -rf "$KCACHE.tmp" && mkdir -p "$KCACHE.tmp/sekimori"
  # Modules in dependency order (modprobe prints `insmod PATH` for each, dependencies first).
  for name in "${MODULES[@]}"; do
    modprobe -d "$KW" -S "$KVER" --show-depends "$name" | awk '$1 == "insmod" { print $2 }'
  done | awk '!seen[$0]++' | while read -r ko; do
    cp "$ko" "$KCACHE.tmp/sekimori/"
    echo "/lib/modules/sekimori/$(basename "$ko")" >> "$KCACHE.tmp/modules.order"
  done
  [ -s "$KCACHE.tmp/modules.order" ] || die "no modules resolved"
  # vmlinux from the bzImage: the payload is one xz stream after the setup code (CONFIG_KERNEL_XZ).
  BZ="$KW/boot/vmlinuz-$KVER"
  OFFSET="$(LC_ALL=C grep -m1 -obaP '\xfd7zXZ\x00' "$BZ" | head -n 1 | cut -d: -f1)"
  [ -n "$OFFSET" ] || die "no xz payload in $BZ"
  tail -c "+$((OFFSET + 1))" "$BZ" | xz -dc --single-stream > "$KCACHE.tmp/vmlinux" 2>/dev/null || true
  head -c 4 "$KCACHE.tmp/vmlinux" | grep -q 'ELF' || die "could not extract vmlinux from $BZ"
  echo "$KVER" > "$KCACHE.tmp/release"
  rm -rf "$KCACHE" "$KW" && mv "$KCACHE.tmp" "$KCACHE"
fi
KVER="$(cat "$KCACHE/release")"
cp -r "$KCACHE/sekimori" "$R/lib/modules/sekimori"
cp "$KCACHE/modules.order" "$R/etc/modules.order"
cp "$KCACHE/vmlinux" "$WORK/vmlinux"

# --- busybox ------------------------------------------------------------------------------------
cp "$BUSYBOX" "$R/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$R/bin/$applet"
done

# --- node and its shared libraries --------------------------------------------------------------
copy_with_libs() {
  local file="$1" dest="$2"
  mkdir -p "$(dirname "$R$dest")"
  cp "$file" "$R$dest"
  ldd "$file" | awk '/=> \// { print $3 } /^[ \t]*\// { print $1 }' | while read -r lib; do
    for path in "$lib" "$(readlink -f "$lib")"; do
      mkdir -p "$R$(dirname "$path")"
      [ -e "$R$path" ] || cp -L "$path" "$R$path"
    done
  done
}
mkdir -p "$R/usr/bin"
copy_with_libs "$NODE_BIN" /usr/bin/node
mkdir -p "$R/lib64"

# --- the agent: dist/ (agent + shared only) and the packages it imports -------------------------
APP="$R/opt/sekimori"
(cd "$ROOT" && find dist/agent dist/shared -type f -name '*.js' -print0 | cpio -0pdm --quiet "$APP")
printf '{"name":"sekimori-vm","private":true,"type":"module"}\n' > "$APP/package.json"

# Production packages reachable from what dist/agent and dist/shared import (bare specifiers).
ENTRY_PACKAGES="$(cd "$ROOT" && grep -rhoE "(from |import\()'[^.'][^']*'" dist/agent dist/shared --include='*.js' \
  | sed -E "s/^(from |import\()'//; s/'$//" | grep -v '^node:' \
  | sed -E 's#^(@[^/]+/[^/]+|[^@/][^/]*).*#\1#' | LC_ALL=C sort -u)"
log "agent imports: $(echo $ENTRY_PACKAGES)"
PACKAGES="$(cd "$ROOT" && node --input-type=module -e '
  import fs from "node:fs"; import path from "node:path";
  const seen = new Set(); const queue = process.argv.slice(1).map((name) => [name, "."]);
  const resolve = (name, from) => {
    for (let dir = from; ; dir = path.dirname(dir)) {
      const candidate = path.join(dir, "node_modules", name);
      if (fs.existsSync(path.join(candidate, "package.json"))) return candidate;
      if (dir === "." || dir === path.dirname(dir)) return null;
    }
  };
  while (queue.length) {
    const [name, from] = queue.shift();
    const dir = resolve(name, from);
    if (dir === null) { if (!name.startsWith("@types/")) console.error("unresolved " + name); continue; }
    if (seen.has(dir)) continue;
    seen.add(dir);
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
    for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) if (!dep.startsWith("@types/")) queue.push([dep, dir]);
  }
  console.log([...seen].sort().join("\n"));
' $ENTRY_PACKAGES)"
for dir in $PACKAGES; do
  # Lean: no type declarations, maps, docs, sources or other platforms' prebuilt addons.
  (cd "$ROOT" && find "$dir" \( -name node_modules -prune -o -type f -print0 \) \
    | grep -zvE '\.(d\.[cm]?ts|map|md|markdown|ts|cts|mts|cc|cpp|c|h|gyp|gypi)$|/(src|test|tests|docs|libusb|libusb_config)/|/prebuilds/(android|darwin|win32|linux-arm|linux-ia32)' \
    | grep -zvE '/prebuilds/linux-x64/.*musl' \
    | cpio -0pdm --quiet "$APP")
done
# A native addon built here (build/Release) or the glibc prebuild: its libraries go in too.
find "$APP/node_modules" -name '*.node' | while read -r addon; do
  ldd "$addon" 2>/dev/null | awk '/=> \// { print $3 }' | while read -r lib; do
    [ -e "$R$lib" ] || { mkdir -p "$R$(dirname "$lib")"; cp -L "$lib" "$R$lib"; }
  done
done

# --- init ---------------------------------------------------------------------------------------
cp "$INIT" "$R/init"
chmod 0755 "$R/init"

(cd "$R" && find . -print0 | LC_ALL=C sort -z | cpio -0 -o -H newc -R 0:0 --quiet) > "$WORK/initrd.cpio"

mkdir -p "$OUT.tmp"
mv "$WORK/vmlinux" "$WORK/initrd.cpio" "$OUT.tmp/"
{
  echo "key $KEY"
  echo "kernel $KDEB_ID ($KVER)"
  echo "node $("$NODE_BIN" --version) $NODE_BIN"
  echo "modules:"; sed 's/^/  /' "$R/etc/modules.order"
  echo "packages:"; for dir in $PACKAGES; do echo "  $dir"; done
  echo "initrd bytes $(stat -c %s "$OUT.tmp/initrd.cpio")"
} > "$OUT.tmp/manifest.txt"
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
# Older images of this cache are stale once the inputs change.
find "$CACHE" -maxdepth 1 -name "image-*" ! -name "image-$KEY" -exec rm -rf {} +
log "built $OUT ($(du -sh "$OUT" | cut -f1))"
echo "$OUT"
