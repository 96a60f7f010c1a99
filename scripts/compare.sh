#!/usr/bin/env bash
# vclab's main job: installs the Debian packages, builds the guest artifacts, then runs
# `vclab compare` (host vs container vs micro-VM) with the given arguments, e.g.
#   scripts/compare.sh --help
set -eu -o pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf 'compare: %s\n' "$*" >&2; }

prepare() {
    log "scripts/setup.sh"
    "$REPO/scripts/setup.sh"
    log "scripts/guest-images.sh all"
    "$REPO/scripts/guest-images.sh" all
}

compare() {
    # The static build is what the figures describe; `compare` runs the small `vclab-vmm` and
    # `vclab-container` that sit next to `vclab`.
    local bin_dir
    bin_dir=$("$REPO/scripts/build-static.sh")
    log "$bin_dir/vclab compare $*"
    "$bin_dir/vclab" compare "$@"
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
