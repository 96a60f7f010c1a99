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
    # The fuzz crate is its own workspace (nightly only for its build; rustfmt is the same).
    (cd "$REPO/fuzz" && cargo fmt --check)
    # The unikernel is its own workspace with its own target and flags (.cargo/config.toml, read
    # from its folder; build.sh drops the caller's RUSTFLAGS the same way).
    log "guest-images/unikernel: cargo fmt --check; cargo clippy --release --all-targets -- -D warnings"
    (cd "$REPO/guest-images/unikernel" &&
        cargo fmt --check &&
        env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_RUSTFLAGS -u CARGO_BUILD_TARGET \
            cargo clippy --release --all-targets -- -D warnings)
}

build() {
    log "cargo build --workspace --all-targets"
    cargo build --workspace --all-targets
}

tests() {
    log "cargo test --workspace"
    cargo test --workspace -- --test-threads=2
}

# The cached unikernel (scripts/guest-images.sh) under QEMU microvm (PVH entry, checksums against the
# cached host vclab-workload, the vclab.fault modes) and, with the vclab binary `build` made, under
# the lab VMM with and without the lab device.
unikernel() {
    log "guest-images/unikernel/test.sh on the cached unikernel (QEMU microvm and vclab vm run)"
    local vclab="$REPO/target/debug/vclab"
    [ -x "$vclab" ] || vclab=""
    VCLAB_UNIKERNEL=$("$REPO/scripts/guest-images.sh" path unikernel) \
        VCLAB_WORKLOAD=$("$REPO/scripts/guest-images.sh" path workload) \
        VCLAB_BIN="$vclab" "$REPO/guest-images/unikernel/test.sh"
}

# The static binaries scripts/compare.sh measures: they build, and each runs its guest or container.
static() {
    log "scripts/build-static.sh, then one unikernel VM and one container with the static binaries"
    local dir unikernel rootfs
    dir=$("$REPO/scripts/build-static.sh")
    unikernel=$("$REPO/scripts/guest-images.sh" path unikernel)
    rootfs=$("$REPO/scripts/guest-images.sh" path rootfs)
    "$dir/vclab-vmm" --kernel "$unikernel" --console off --json \
        --cmdline "vclab.kernel=cpu vclab.size=4096 vclab.iterations=1 vclab.seed=1" | tail -n 1 |
        jq -e '.exit_reason == "guest-exit" and .guest_exit_code == 0' >/dev/null
    "$dir/vclab-container" --rootfs "$rootfs" -- /bin/true
    "$dir/vclab" host >/dev/null
}

# Every cargo-fuzz target for 60 s from its tracked seeds (nightly; scripts/fuzz.sh installs
# cargo-fuzz when missing). A crash fails CI and leaves its input under results/fuzz/.
fuzz() {
    log "scripts/fuzz.sh ${VCLAB_CI_FUZZ_SECONDS:-60} (every fuzz target)"
    "$REPO/scripts/fuzz.sh" "${VCLAB_CI_FUZZ_SECONDS:-60}"
    # The fuzz crate's own tests (fuzz.sh installed nightly): they replay every seed and every
    # fixed crash's input (fuzz/regressions/).
    cargo +nightly test --quiet --manifest-path "$REPO/fuzz/Cargo.toml" --target-dir "$REPO/target/fuzz"
}

usage() {
    cat <<'USAGE'
Usage: scripts/test.sh [all|setup|images|lint|build|test|unikernel|static|fuzz|help]
  all        setup, images, lint, build, test, unikernel, static, fuzz (default)
  setup      scripts/setup.sh
  images     scripts/guest-images.sh all
  lint       cargo fmt --check and cargo clippy -D warnings (workspace and unikernel)
  build      cargo build --workspace --all-targets
  test       cargo test --workspace
  unikernel  guest-images/unikernel/test.sh on the cached unikernel (after images; after build
             it also runs it under target/debug/vclab)
  static     scripts/build-static.sh and a smoke run of the static vclab-vmm and vclab-container
  fuzz       scripts/fuzz.sh 60: every cargo-fuzz target for 60 s (VCLAB_CI_FUZZ_SECONDS)
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
            unikernel
            static
            fuzz
            log "all passed"
            ;;
        setup) setup ;;
        images) images ;;
        lint) lint ;;
        build) build ;;
        test) tests ;;
        unikernel) unikernel ;;
        static) static ;;
        fuzz) fuzz ;;
        help | -h | --help) usage ;;
        *)
            usage >&2
            exit 2
            ;;
    esac
}

main "$@"
