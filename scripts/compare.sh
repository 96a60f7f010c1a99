#!/usr/bin/env bash
# vclab's main job: installs the Debian packages, builds the guest artifacts, then runs
# `vclab compare` (host vs container vs micro-VM) with the given arguments, e.g.
#   scripts/compare.sh --help
set -eu -o pipefail

# rustup puts cargo in ~/.cargo/bin, which a non-login shell (CI) may not have on PATH.
if ! command -v cargo >/dev/null && [ -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
    PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf 'compare: %s\n' "$*" >&2; }
die() { printf 'compare: error: %s\n' "$*" >&2; exit 1; }

prepare() {
    log "scripts/setup.sh"
    "$REPO/scripts/setup.sh"
    log "scripts/guest-images.sh all"
    "$REPO/scripts/guest-images.sh" all
}

# The lab's binaries as they are measured: statically linked (like Firecracker's release builds), so the
# launcher's and the VMM's memory is their own code, not a share of libc and the loader. `--target` keeps
# the flag off build scripts and proc macros, and keeps this build apart from the plain one in
# target/release (no rebuild ping-pong with `cargo build` / `cargo test`).
build() {
    local triple
    triple=$(rustc -vV | sed -n 's/^host: //p')
    log "cargo build --release --target $triple -p vclab-bench -p vclab-container --bins (static: +crt-static)"
    RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --release --target "$triple" -p vclab-bench -p vclab-container --bins
    BIN_DIR="${CARGO_TARGET_DIR:-$REPO/target}/$triple/release"
    local b
    for b in vclab vclab-vmm vclab-container; do
        [ -x "$BIN_DIR/$b" ] || die "$BIN_DIR/$b was not built"
        if readelf -l "$BIN_DIR/$b" | grep -q 'program interpreter'; then
            die "$BIN_DIR/$b is dynamically linked; expected a static build"
        fi
    done
}

compare() {
    build
    # `compare` runs the small `vclab-vmm` and `vclab-container` that sit next to `vclab`.
    log "$BIN_DIR/vclab compare $*"
    "$BIN_DIR/vclab" compare "$@"
}

usage() {
    cat <<'USAGE'
Usage: scripts/compare.sh [ARGS...]
Installs packages (scripts/setup.sh), builds the guest artifacts (scripts/guest-images.sh all),
then runs `vclab compare ARGS...`. `scripts/compare.sh help` prints this; `scripts/compare.sh --help`
prints the help of `vclab compare`.
USAGE
}

main() {
    cd "$REPO"
    if [ "${1:-}" = help ]; then
        usage
        return 0
    fi
    prepare
    compare "$@"
}

main "$@"
