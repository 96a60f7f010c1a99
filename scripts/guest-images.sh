#!/usr/bin/env bash
# Builds the guest artifacts vclab boots and runs, into one cache directory:
#   $VCLAB_CACHE, else $XDG_CACHE_HOME/vclab, else ~/.cache/vclab
# Each artifact lives in <cache>/<artifact>/<key>/ where <key> is a sha256 over its inputs (the
# building function's own text, the checked-in sources it uses, the Debian package versions). An
# entry is built in a temporary directory and renamed into place, so an interrupted build never
# leaves an entry that looks valid. A warm run only hashes inputs and rewrites the manifest.
# The run ends by writing <cache>/manifest.json as DESIGN.md specifies.
set -eu -o pipefail

# rustup puts cargo in ~/.cargo/bin, which a non-login shell (CI) may not have on PATH.
if ! command -v cargo >/dev/null && [ -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
    PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${VCLAB_CACHE:-${XDG_CACHE_HOME:-${HOME:?HOME is not set; set VCLAB_CACHE}/.cache}/vclab}
KERNEL_DIR="$REPO/guest-images/kernel"
ROOTFS_SRC="$REPO/guest-images/rootfs"
UNIKERNEL_DIR="$REPO/guest-images/unikernel"
LINUX_TARBALL=/usr/src/linux-source-6.1.tar.xz
DISTRO_META=linux-image-cloud-amd64
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}

REBUILT=()
TEMPS=()

log() { printf 'guest-images: %s\n' "$*" >&2; }
die() { printf 'guest-images: error: %s\n' "$*" >&2; exit 1; }

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    local t
    for t in "${TEMPS[@]+"${TEMPS[@]}"}"; do
        rm -rf -- "$t"
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# sha256 of stdin, hex only.
sha() { sha256sum | cut -d' ' -f1; }

# Prints the cache key (sha256) of the named functions' text plus the given files (name + bytes).
# Usage: key_of "fn1 fn2" FILE... ; extra strings come on stdin.
key_of() {
    local fns=$1 f
    shift
    {
        for f in $fns; do declare -f "$f"; done
        for f in "$@"; do
            printf '%s\n' "${f#"$REPO"/}"
            cat -- "$f"
        done
        cat
    } | sha
}

# Prints the name and bytes of every build input under the given directories, sorted: skips
# cargo's target/, integration tests, docs and the test scripts (they do not change the build).
sources_of() {
    local f
    find "$@" \( -name target -o -name tests \) -prune -o -type f \
        ! -name '*.md' ! -name test.sh ! -name ready-time.sh ! -name .gitignore -print |
        LC_ALL=C sort | while IFS= read -r f; do
            printf '%s\n' "${f#"$REPO"/}"
            cat -- "$f"
        done
}

# A new temporary directory next to the entry it will become (same filesystem: rename is atomic).
new_temp() {
    local parent=$1 t
    mkdir -p -- "$parent"
    t=$(mktemp -d "$parent/.tmp.XXXXXX")
    TEMPS+=("$t")
    printf '%s\n' "$t"
}

# Renames a finished temp entry to its key directory. If another build put it there first, keeps
# that one.
commit_entry() {
    local tmp=$1 dir=$2
    if ! mv -T -- "$tmp" "$dir" 2>/dev/null; then
        [ -d "$dir" ] || die "cannot rename $tmp to $dir (is $CACHE writable?)"
        rm -rf -- "$tmp"
    fi
}

# Says whether the entry exists; logs a cache hit.
cached() {
    local what=$1 dir=$2
    if [ -d "$dir" ]; then
        log "$what: cache hit ($dir)"
        return 0
    fi
    log "$what: building into $dir"
    REBUILT+=("$what")
    return 1
}

# --- micro-VM kernel -------------------------------------------------------------------------

kernel_key() {
    local version patches
    version=$(dpkg-query -W -f='${Version}' linux-source-6.1 2>/dev/null) ||
        die "linux-source-6.1 is not installed (run scripts/setup.sh)"
    mapfile -t patches < <(find "$KERNEL_DIR/patches" -name '*.patch' | LC_ALL=C sort)
    printf 'linux-source-6.1 %s\n' "$version" |
        key_of "build_kernel check_kernel_config" "$KERNEL_DIR/minimal.config" "${patches[@]}"
}

# Fails listing every fragment option that olddefconfig dropped or changed.
check_kernel_config() {
    local config=$1 fragment=$2 line opt missing=()
    while IFS= read -r line; do
        case $line in
            CONFIG_*=*)
                grep -qxF -- "$line" "$config" || missing+=("$line")
                ;;
            "# CONFIG_"*" is not set")
                opt=${line#\# }
                opt=${opt%% *}
                if grep -q "^$opt=" "$config"; then missing+=("$line"); fi
                ;;
        esac
    done <"$fragment"
    if [ ${#missing[@]} -ne 0 ]; then
        die "kernel .config lacks options the fragment asks for (a dependency is missing):
$(printf '  %s\n' "${missing[@]}")"
    fi
}

build_kernel() {
    local key dir tmp src p jobs
    key=$(kernel_key)
    dir="$CACHE/kernel/$key"
    cached kernel "$dir" && return 0
    [ -r "$LINUX_TARBALL" ] || die "$LINUX_TARBALL is missing (run scripts/setup.sh)"
    tmp=$(new_temp "$CACHE/kernel")
    src="$tmp/src/linux-source-6.1"
    mkdir -p "$tmp/src" "$tmp/entry"
    log "kernel: extracting $LINUX_TARBALL"
    tar -xJf "$LINUX_TARBALL" -C "$tmp/src"
    for p in $(find "$KERNEL_DIR/patches" -name '*.patch' | LC_ALL=C sort); do
        log "kernel: applying ${p#"$REPO"/}"
        patch -d "$src" -p1 --batch --forward --quiet <"$p"
    done
    log "kernel: tinyconfig + minimal.config + olddefconfig"
    make -C "$src" -s tinyconfig >/dev/null
    "$src/scripts/kconfig/merge_config.sh" -m -O "$src" "$src/.config" \
        "$KERNEL_DIR/minimal.config" >/dev/null
    make -C "$src" -s olddefconfig >/dev/null
    check_kernel_config "$src/.config" "$KERNEL_DIR/minimal.config"
    jobs=$(nproc)
    log "kernel: make -j$jobs vmlinux bzImage (several minutes)"
    make -C "$src" -s -j"$jobs" vmlinux bzImage KBUILD_BUILD_TIMESTAMP=@0 \
        KBUILD_BUILD_USER=vclab KBUILD_BUILD_HOST=vclab
    cp "$src/vmlinux" "$tmp/entry/vmlinux"
    cp "$src/arch/x86/boot/bzImage" "$tmp/entry/bzImage"
    cp "$src/.config" "$tmp/entry/config"
    commit_entry "$tmp/entry" "$dir"
    rm -rf -- "$tmp"
    log "kernel: done"
}

# --- Debian's cloud kernel (downloaded, never installed) ---------------------------------------

# Sets DISTRO_PACKAGE to "<package> <version>" of the versioned image package the meta package
# depends on. Asks apt-cache once per run (it takes about a second); returns 1 if apt cannot tell.
DISTRO_PACKAGE=""
resolve_distro() {
    local show pkg version
    [ -n "$DISTRO_PACKAGE" ] && return 0
    show=$(apt-cache show --no-all-versions "$DISTRO_META" 2>/dev/null) || return 1
    # "Depends: linux-image-6.1.0-NN-cloud-amd64 (= VERSION)"
    read -r pkg version < <(printf '%s\n' "$show" | awk -F'[ ,()=]+' \
        '/^Depends:/ {for (i = 2; i <= NF; i++) if ($i ~ /^linux-image-[0-9]/) {print $i, $(i+1); exit}}') ||
        return 1
    [ -n "$pkg" ] || return 1
    case $version in
        [0-9]*) ;;
        *)
            version=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null |
                awk '/^Version:/ {print $2; exit}')
            [ -n "$version" ] || return 1
            ;;
    esac
    DISTRO_PACKAGE="$pkg $version"
}

distro_key() {
    printf '%s\n' "$DISTRO_PACKAGE" | key_of "build_distro resolve_distro"
}

build_distro() {
    local package key dir tmp pkg version deb
    resolve_distro ||
        die "cannot resolve $DISTRO_META to a versioned linux-image package (run apt-get update)"
    package=$DISTRO_PACKAGE
    key=$(distro_key)
    dir="$CACHE/distro-kernel/$key"
    cached "distro-kernel ($package)" "$dir" && return 0
    read -r pkg version <<<"$package"
    tmp=$(new_temp "$CACHE/distro-kernel")
    mkdir -p "$tmp/dl" "$tmp/x" "$tmp/entry"
    # apt drops privileges to _apt for downloads; let it reach and write the download folder.
    chmod 0755 "$tmp"
    chmod 0777 "$tmp/dl"
    log "distro-kernel: apt-get download $pkg=$version"
    (cd "$tmp/dl" && apt-get download -q "$pkg=$version") ||
        die "apt-get download $pkg=$version failed (run apt-get update?)"
    deb=$(find "$tmp/dl" -name '*.deb' | head -n1)
    [ -n "$deb" ] || die "apt-get download $pkg=$version produced no .deb (apt-get update?)"
    dpkg-deb -x "$deb" "$tmp/x"
    set -- "$tmp"/x/boot/vmlinuz-*
    [ -f "$1" ] || die "$deb holds no boot/vmlinuz-*"
    cp "$1" "$tmp/entry/vmlinuz"
    printf '%s\n' "$package" >"$tmp/entry/package"
    commit_entry "$tmp/entry" "$dir"
    rm -rf -- "$tmp"
    log "distro-kernel: done"
}

# --- the static workload binary -----------------------------------------------------------------

# Key: the workload crate's sources, the workspace manifest and lock file, and the Rust toolchain.
# Computed once per run (main sets WORKLOAD_KEY).
WORKLOAD_KEY=""
workload_key() {
    if [ -n "$WORKLOAD_KEY" ]; then
        printf '%s\n' "$WORKLOAD_KEY"
        return 0
    fi
    {
        (cd "$REPO" && rustc -vV 2>/dev/null) || die "rustc is not on PATH (install Rust with rustup)"
        sources_of "$REPO/workload" "$REPO/contract"
    } | key_of "build_workload" "$REPO/Cargo.toml" "$REPO/Cargo.lock"
}

build_workload() {
    local bin key dir tmp
    key=$(workload_key)
    dir="$CACHE/workload/$key"
    cached workload "$dir" && return 0
    log "workload: cargo rustc --release -p vclab-workload (static)"
    (cd "$REPO" && cargo rustc --quiet --release -p vclab-workload --bin vclab-workload \
        -- -C target-feature=+crt-static) ||
        die "cannot build vclab-workload (see the cargo errors above)"
    bin="$TARGET_DIR/release/vclab-workload"
    [ -x "$bin" ] || die "$bin was not produced by cargo"
    if readelf -l "$bin" | grep -q 'program interpreter'; then
        die "$bin is dynamically linked; the guest needs a static binary"
    fi
    tmp=$(new_temp "$CACHE/workload")
    cp "$bin" "$tmp/vclab-workload"
    commit_entry "$tmp" "$dir"
}

workload_path() {
    printf '%s/workload/%s/vclab-workload\n' "$CACHE" "$(workload_key)"
}

# --- rootfs tree and initramfs ------------------------------------------------------------------

# Key: busybox's version, /init and the workload binary's bytes (not its cache path).
rootfs_key() {
    local workload=$1
    {
        dpkg-query -W -f='busybox-static ${Version}\n' busybox-static
        cat -- "$workload"
    } | key_of "build_rootfs make_rootfs_tree" "$ROOTFS_SRC/init"
}

# Fills directory $1 with the guest's root tree.
make_rootfs_tree() {
    local root=$1 workload=$2 applet
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,etc,root,run}
    chmod 1777 "$root/tmp"
    cp /bin/busybox "$root/bin/busybox"
    # Relative links, so the tree works as a chroot, a container rootfs and an initramfs.
    for applet in $("$root/bin/busybox" --list-full); do
        [ "$applet" = bin/busybox ] && continue
        [ -e "$root/$applet" ] && continue
        case $applet in
            bin/*) ln -s busybox "$root/$applet" ;;
            sbin/*) ln -s ../bin/busybox "$root/$applet" ;;
            usr/bin/* | usr/sbin/*) ln -s ../../bin/busybox "$root/$applet" ;;
        esac
    done
    install -m 0755 "$workload" "$root/bin/vclab-workload"
    install -m 0755 "$ROOTFS_SRC/init" "$root/init"
    mknod -m 0600 "$root/dev/console" c 5 1
    mknod -m 0666 "$root/dev/null" c 1 3
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' \
        >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    printf 'vclab\n' >"$root/etc/hostname"
    find "$root" -exec touch -h -d @0 {} +
}

build_rootfs() {
    local workload key dir tmp
    workload=$(workload_path)
    [ -x "$workload" ] || die "$workload is missing (build it first: $0 workload)"
    key=$(rootfs_key "$workload")
    dir="$CACHE/rootfs/$key"
    cached rootfs "$dir" && return 0
    tmp=$(new_temp "$CACHE/rootfs")
    make_rootfs_tree "$tmp/tree" "$workload"
    commit_entry "$tmp/tree" "$dir"
    rm -rf -- "$tmp"
}

# The rootfs entry for the current inputs (fails if its workload is not built).
rootfs_path() {
    local workload key
    workload=$(workload_path)
    [ -f "$workload" ] || return 1
    key=$(rootfs_key "$workload")
    printf '%s/rootfs/%s\n' "$CACHE" "$key"
}

# Key: the rootfs entry's key (its directory name).
initramfs_key() {
    printf '%s\n' "${1##*/}" | key_of "build_initramfs"
}

build_initramfs() {
    local rootfs key dir tmp
    rootfs=$(rootfs_path) || die "vclab-workload is not built (build it first: $0 rootfs)"
    [ -d "$rootfs" ] || die "$rootfs is missing (build it first: $0 rootfs)"
    key=$(initramfs_key "$rootfs")
    dir="$CACHE/initramfs/$key"
    cached initramfs "$dir" && return 0
    tmp=$(new_temp "$CACHE/initramfs")
    # Sorted names, zero mtimes, root owner: the same tree always gives the same bytes.
    (cd "$rootfs" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
        cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -9n >"$tmp/initramfs.cpio.gz"
    commit_entry "$tmp" "$dir"
}

# Key: the rootfs entry's key and mke2fs's version.
rootdisk_key() {
    { printf '%s\n' "${1##*/}"; dpkg-query -W -f='e2fsprogs ${Version}\n' e2fsprogs; } |
        key_of "build_rootdisk"
}

# The rootfs as a raw ext4 image (a virtio-blk root disk: `--disk rootfs.ext4 ... root=/dev/vda`).
# A fixed UUID, hash seed and clock (E2FSPROGS_FAKE_TIME): the same tree gives the same bytes.
build_rootdisk() {
    local rootfs key dir tmp
    rootfs=$(rootfs_path) || die "vclab-workload is not built (build it first: $0 rootfs)"
    [ -d "$rootfs" ] || die "$rootfs is missing (build it first: $0 rootfs)"
    command -v mkfs.ext4 >/dev/null || PATH=$PATH:/usr/sbin:/sbin
    key=$(rootdisk_key "$rootfs")
    dir="$CACHE/rootdisk/$key"
    cached rootdisk "$dir" && return 0
    tmp=$(new_temp "$CACHE/rootdisk")
    E2FSPROGS_FAKE_TIME=1 mkfs.ext4 -q -F -t ext4 -b 4096 -L vclab-root -O ^has_journal \
        -U 7c1ab000-0000-4000-8000-000000000001 \
        -E hash_seed=7c1ab000-0000-4000-8000-000000000002,root_owner=0:0 \
        -d "$rootfs" "$tmp/rootfs.ext4" 32M ||
        die "mkfs.ext4 could not make the root disk (install e2fsprogs)"
    commit_entry "$tmp" "$dir"
}

# --- unikernel (built by guest-images/unikernel/build.sh, owned by its engineer) ----------------

# Key: the unikernel's and the workload crate's sources and the Rust toolchain. Computed once per
# run (main sets UNIKERNEL_KEY).
UNIKERNEL_KEY=""
unikernel_key() {
    if [ -n "$UNIKERNEL_KEY" ]; then
        printf '%s\n' "$UNIKERNEL_KEY"
        return 0
    fi
    {
        (cd "$UNIKERNEL_DIR" && rustc -vV 2>/dev/null) ||
            die "rustc is not on PATH (install Rust with rustup)"
        sources_of "$UNIKERNEL_DIR" "$REPO/workload" "$REPO/contract"
    } | key_of "build_unikernel"
}

build_unikernel() {
    local key dir tmp
    if [ ! -x "$UNIKERNEL_DIR/build.sh" ]; then
        log "unikernel: WARNING: $UNIKERNEL_DIR/build.sh does not exist yet; skipping the unikernel"
        return 0
    fi
    key=$(unikernel_key)
    dir="$CACHE/unikernel/$key"
    cached unikernel "$dir" && return 0
    tmp=$(new_temp "$CACHE/unikernel")
    "$UNIKERNEL_DIR/build.sh" "$tmp/unikernel.elf" ||
        die "guest-images/unikernel/build.sh failed (see its output above)"
    [ -s "$tmp/unikernel.elf" ] || die "guest-images/unikernel/build.sh wrote no $tmp/unikernel.elf"
    commit_entry "$tmp" "$dir"
}

# --- manifest -----------------------------------------------------------------------------------

# Prints one manifest entry as JSON: name, path, kind. A directory's sha256 is the sha256 of the
# `sha256sum` listing of its regular files ("<hex>  <relative path>" lines, paths without "./",
# sorted bytewise); its size is the sum of those files' sizes.
manifest_entry() {
    local name=$1 path=$2 kind size hash
    case $path in
        *\"* | *\\*) die "cache path $path holds a quote or backslash; choose another VCLAB_CACHE" ;;
    esac
    if [ -d "$path" ]; then
        kind="dir"
        hash=$(cd "$path" && find . -type f -printf '%P\n' | LC_ALL=C sort |
            tr '\n' '\0' | xargs -0 -r sha256sum -- | sha)
        size=$(find "$path" -type f -printf '%s\n' | awk '{s += $1} END {printf "%d", s}')
    else
        kind="file"
        hash=$(sha <"$path")
        size=$(stat -c %s -- "$path")
    fi
    printf '    "%s": {"path": "%s", "kind": "%s", "size": %s, "sha256": "%s"}' \
        "$name" "$path" "$kind" "$size" "$hash"
}

write_manifest() {
    local kernel distro workload rootfs initramfs rootdisk unikernel entries=() tmp
    # Each path is resolved from the current inputs; an artifact whose inputs cannot be resolved
    # or whose entry is not built is left out (the run that builds it rewrites the manifest).
    kernel="$CACHE/kernel/$(kernel_key)"
    distro=""
    if resolve_distro; then
        distro="$CACHE/distro-kernel/$(distro_key)"
    fi
    workload=$(workload_path)
    rootfs=$(rootfs_path) || rootfs=""
    initramfs=""
    if [ -n "$rootfs" ]; then
        initramfs="$CACHE/initramfs/$(initramfs_key "$rootfs")"
    fi
    [ -f "$kernel/vmlinux" ] && entries+=("$(manifest_entry vmlinux "$kernel/vmlinux")")
    [ -f "$kernel/bzImage" ] && entries+=("$(manifest_entry bzimage "$kernel/bzImage")")
    [ -f "$distro/vmlinuz" ] && entries+=("$(manifest_entry distro-kernel "$distro/vmlinuz")")
    [ -n "$rootfs" ] && [ -d "$rootfs" ] && entries+=("$(manifest_entry rootfs "$rootfs")")
    [ -f "$initramfs/initramfs.cpio.gz" ] &&
        entries+=("$(manifest_entry initramfs "$initramfs/initramfs.cpio.gz")")
    if [ -n "$rootfs" ]; then
        rootdisk="$CACHE/rootdisk/$(rootdisk_key "$rootfs")/rootfs.ext4"
        [ -f "$rootdisk" ] && entries+=("$(manifest_entry rootdisk "$rootdisk")")
    fi
    if [ -x "$UNIKERNEL_DIR/build.sh" ]; then
        unikernel="$CACHE/unikernel/$(unikernel_key)/unikernel.elf"
        [ -f "$unikernel" ] && entries+=("$(manifest_entry unikernel "$unikernel")")
    fi
    [ -f "$workload" ] && entries+=("$(manifest_entry workload "$workload")")
    tmp=$(mktemp "$CACHE/.manifest.XXXXXX")
    TEMPS+=("$tmp")
    {
        printf '{\n  "version": 1,\n  "artifacts": {\n'
        local IFS=$'\n'
        printf '%s\n' "${entries[*]/%/,}" | sed '$ s/,$//'
        printf '  }\n}\n'
    } >"$tmp"
    chmod 0644 "$tmp"
    mv -f -- "$tmp" "$CACHE/manifest.json"
    log "manifest: wrote $CACHE/manifest.json (${#entries[@]} artifacts)"
}

# --- prune --------------------------------------------------------------------------------------

# Removes the cache entries (and stale temporary directories) that the current manifest does not
# name. Never automatic: other clones on this machine share the cache and may use other entries.
prune_cache() {
    local manifest="$CACHE/manifest.json" entry kind
    [ -f "$manifest" ] || die "$manifest is missing; run $0 all first"
    for kind in kernel distro-kernel workload rootfs initramfs rootdisk unikernel; do
        [ -d "$CACHE/$kind" ] || continue
        for entry in "$CACHE/$kind"/* "$CACHE/$kind"/.tmp.*; do
            [ -e "$entry" ] || continue
            if ! grep -qF "\"$entry" "$manifest"; then
                log "prune: removing $entry"
                rm -rf -- "$entry"
            fi
        done
    done
}

# --- entry point --------------------------------------------------------------------------------

usage() {
    cat <<EOF
Usage: scripts/guest-images.sh [all|kernel|distro|rootfs|initramfs|rootdisk|unikernel|workload|manifest|prune|help]
       scripts/guest-images.sh path NAME

Builds vclab's guest artifacts into $CACHE
(\$VCLAB_CACHE, else \$XDG_CACHE_HOME/vclab, else ~/.cache/vclab) and writes manifest.json there.
  all        everything below, then the manifest (default)
  kernel     micro-VM kernel from Debian's linux-source-6.1: vmlinux and bzImage
  distro     Debian's cloud kernel (downloaded and unpacked, never installed)
  workload   the static vclab-workload binary
  rootfs     busybox + vclab-workload + /init as a directory tree (builds workload first)
  initramfs  gzip'd newc cpio of the rootfs (builds rootfs first)
  rootdisk   the rootfs as a raw ext4 image, a virtio-blk root disk (builds rootfs first)
  unikernel  guest-images/unikernel/build.sh, if it exists
  manifest   only rewrite manifest.json from what is in the cache
  prune      remove cache entries the manifest does not name (other clones' entries too)
  path NAME  print the path manifest.json gives artifact NAME (builds nothing)
Entries are keyed by a hash of their inputs; a warm run rebuilds nothing.
EOF
}

summary() {
    if [ ${#REBUILT[@]} -eq 0 ]; then
        log "nothing rebuilt: all artifacts were cache hits"
    else
        log "rebuilt: ${REBUILT[*]}"
    fi
}

main() {
    local what=${1:-all}
    case $what in
        help | -h | --help) usage; return 0 ;;
    esac
    case $what in
        path)
            [ $# -eq 2 ] || die "usage: $0 path NAME"
            jq -er --arg name "$2" '.artifacts[$name].path // empty' "$CACHE/manifest.json" ||
                die "$CACHE/manifest.json names no artifact '$2' (run $0 all)"
            return 0
            ;;
    esac
    mkdir -p -- "$CACHE"
    if [ "$what" = prune ]; then
        prune_cache
        return 0
    fi
    WORKLOAD_KEY=$(workload_key)
    if [ -x "$UNIKERNEL_DIR/build.sh" ]; then
        UNIKERNEL_KEY=$(unikernel_key)
    fi
    case $what in
        all)
            build_kernel
            build_distro
            build_workload
            build_rootfs
            build_initramfs
            build_rootdisk
            build_unikernel
            ;;
        kernel) build_kernel ;;
        distro) build_distro ;;
        workload) build_workload ;;
        rootfs) build_workload; build_rootfs ;;
        initramfs) build_workload; build_rootfs; build_initramfs ;;
        rootdisk) build_workload; build_rootfs; build_rootdisk ;;
        unikernel) build_unikernel ;;
        manifest) ;;
        *) usage >&2; die "unknown artifact '$what'" ;;
    esac
    write_manifest
    summary
}

# On one line: bash has read all of it before it runs, so editing this file mid-run is harmless.
main "$@"; exit
