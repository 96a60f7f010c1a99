#!/usr/bin/env bash
# Builds the lab's binaries as they are measured: `vclab`, `vclab-vmm` and `vclab-container`, release,
# statically linked (-C target-feature=+crt-static, like Firecracker's release builds), so the VMM's and
# the launcher's memory is their own code rather than a share of libc and the loader; and not
# position-independent (-C relocation-model=static): the static-pie launcher peaks at 2.2 MB resident for
# /bin/true (n=10) against 1.6 MB for this build (n=20; its start-up relocations touch pages the
# non-PIE one leaves).
# `--target` keeps the flags off build scripts and proc macros and keeps this build apart from
# target/release (no rebuild ping-pong with plain `cargo build` / `cargo test`). Prints the directory holding the three binaries.
#   scripts/build-static.sh            # then: "$(scripts/build-static.sh)"/vclab compare
set -eu -o pipefail

# rustup puts cargo in ~/.cargo/bin, which a non-login shell (CI) may not have on PATH.
if ! command -v cargo >/dev/null && [ -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
    PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf 'build-static: %s\n' "$*" >&2; }
die() { printf 'build-static: error: %s\n' "$*" >&2; exit 1; }

cd "$REPO"
triple=$(rustc -vV | sed -n 's/^host: //p')
[ -n "$triple" ] || die "cannot tell the host target from 'rustc -vV'"
log "cargo build --release --target $triple -p vclab-bench -p vclab-container --bins (static, non-PIE)"
RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" \
    cargo build --release --target "$triple" -p vclab-bench -p vclab-container --bins >&2
dir="${CARGO_TARGET_DIR:-$REPO/target}/$triple/release"
case $dir in /*) ;; *) dir="$REPO/$dir" ;; esac
for b in vclab vclab-vmm vclab-container; do
    [ -x "$dir/$b" ] || die "$dir/$b was not built"
    if readelf -l "$dir/$b" | grep -q 'program interpreter'; then
        die "$dir/$b is dynamically linked; expected a static build"
    fi
done
printf '%s\n' "$dir"
