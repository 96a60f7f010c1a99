#!/usr/bin/env bash
# Builds the vclab unikernel guest ELF and copies it to OUT_FILE.
# Usage: build.sh OUT_FILE     (CARGO_TARGET_DIR defaults to target/ in this folder)
set -eu -o pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
triple="x86_64-unknown-linux-gnu"

usage() {
    echo "usage: $0 OUT_FILE   (builds the unikernel guest ELF and copies it to OUT_FILE)" >&2
}

check_elf() {
    local elf="$1"
    # The PVH note must be there (QEMU microvm refuses the ELF without it), and the image must
    # not reference symbols nothing defines (no libc in the guest).
    if ! readelf -n "$elf" | grep -q "Xen"; then
        echo "build.sh: $elf has no Xen PVH note: check link.ld" >&2
        return 1
    fi
    if nm -u "$elf" | grep -q .; then
        echo "build.sh: $elf has undefined symbols:" >&2
        nm -u "$elf" >&2
        return 1
    fi
}

main() {
    case "${1:-}" in -h | --help | help) usage; exit 0 ;; esac
    if [ "$#" -ne 1 ]; then
        usage
        exit 2
    fi
    local out="$1"
    local target_dir="${CARGO_TARGET_DIR:-$here/target}"
    echo "build.sh: building the unikernel guest (target dir $target_dir)" >&2
    # cargo reads .cargo/config.toml (flags, target) from the working directory: build from here.
    # The flags in .cargo/config.toml must win: drop any from the caller's environment.
    (cd "$here" && env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_RUSTFLAGS \
        -u CARGO_BUILD_TARGET CARGO_TARGET_DIR="$target_dir" \
        cargo build --release --quiet 2>&1 >&2) || {
        echo "build.sh: cargo build of the unikernel failed" >&2
        exit 1
    }
    local elf="$target_dir/$triple/release/vclab-unikernel"
    check_elf "$elf"
    mkdir -p "$(dirname "$out")"
    cp "$elf" "$out.tmp.$$"
    mv "$out.tmp.$$" "$out"
    echo "build.sh: wrote $out ($(stat -c %s "$out") bytes)" >&2
}

main "$@"
