#!/usr/bin/env bash
# vclab's test command (CI runs it through .ci/run): installs the Debian packages, builds the guest
# artifacts into the cache, builds every crate and target, runs every test. Exits non-zero on the
# first failure.
set -eu -o pipefail

# rustup puts cargo in ~/.cargo/bin, which a non-login shell (CI) may not have on PATH.
if ! command -v cargo >/dev/null && [ -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
    PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '\ntest: %s\n' "$*" >&2; }

setup() {
    log "scripts/setup.sh (Debian packages)"
    "$REPO/scripts/setup.sh"
}

images() {
    log "scripts/guest-images.sh all (cached guest artifacts)"
    "$REPO/scripts/guest-images.sh" all
}

lint() {
    log "cargo fmt --all --check; cargo clippy --workspace --all-targets -- -D warnings"
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
}

build() {
    log "cargo build --workspace --all-targets"
    cargo build --workspace --all-targets
}

tests() {
    log "cargo test --workspace"
    cargo test --workspace -- --test-threads=2
}

usage() {
    cat <<'USAGE'
Usage: scripts/test.sh [all|setup|images|lint|build|test|help]
  all     setup, images, lint, build, test (default)
  setup   scripts/setup.sh
  images  scripts/guest-images.sh all
  lint    cargo fmt --check and cargo clippy -D warnings
  build   cargo build --workspace --all-targets
  test    cargo test --workspace
USAGE
}

main() {
    cd "$REPO"
    case ${1:-all} in
        all)
            setup
            images
            lint
            build
            tests
            log "all passed"
            ;;
        setup) setup ;;
        images) images ;;
        lint) lint ;;
        build) build ;;
        test) tests ;;
        help | -h | --help) usage ;;
        *)
            usage >&2
            exit 2
            ;;
    esac
}

main "$@"
