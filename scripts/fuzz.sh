#!/usr/bin/env bash
# Runs vclab's cargo-fuzz targets (fuzz/README.md), one after another, each for SECONDS:
#   scripts/fuzz.sh [SECONDS] [TARGET...]   default: 60 s, every target
#   scripts/fuzz.sh list                    the targets
#   scripts/fuzz.sh help
# Builds every target once (nightly, AddressSanitizer, `cargo fuzz build`; installs cargo-fuzz
# into ~/.cargo/bin when it is missing), then runs each target's libFuzzer binary on one core
# with -max_total_time=SECONDS. The tracked seeds in fuzz/corpus/<target>/ are read, never
# written: new inputs go to the working corpus $VCLAB_FUZZ_OUT/<target>/corpus/ (default
# results/fuzz/), which later runs start from too. A crash, timeout (-timeout, default 10 s) or
# out-of-memory leaves its input as $VCLAB_FUZZ_OUT/<target>/{crash,timeout,oom,leak}-<sha1>,
# prints how to reproduce it, and makes the script exit 1 after the other targets ran.
# Environment: VCLAB_FUZZ_OUT (output directory), VCLAB_FUZZ_TIMEOUT (seconds per input),
# VCLAB_FUZZ_TARGET_DIR (cargo's target dir; default target/fuzz, beside the workspace's builds),
# VCLAB_FUZZ_ARGS (more libFuzzer flags, e.g. "-fork=1 -ignore_crashes=1" to go on past a crash).
set -eu -o pipefail

if ! command -v cargo >/dev/null && [ -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
    PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FUZZ_DIR="$REPO/fuzz"
OUT=${VCLAB_FUZZ_OUT:-$REPO/results/fuzz}
TARGET_DIR=${VCLAB_FUZZ_TARGET_DIR:-$REPO/target/fuzz}
PER_INPUT_TIMEOUT=${VCLAB_FUZZ_TIMEOUT:-10}
TRIPLE=x86_64-unknown-linux-gnu
BIN_DIR="$TARGET_DIR/$TRIPLE/release"

log() { printf 'fuzz: %s\n' "$*" >&2; }
die() { printf 'fuzz: error: %s\n' "$*" >&2; exit 2; }

usage() {
    sed -n '2,/^set /p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//'
}

# The targets, as fuzz/Cargo.toml declares them.
targets() {
    sed -n 's/^name = "\([a-z_]*\)"$/\1/p' "$FUZZ_DIR/Cargo.toml" | grep -v '^vclab' || true
}

# The nightly toolchain and cargo-fuzz, installed when missing.
ensure_tools() {
    if ! cargo +nightly --version >/dev/null 2>&1; then
        log "installing the nightly toolchain (rustup toolchain install nightly)"
        rustup toolchain install nightly --profile minimal ||
            die "no nightly toolchain: run 'rustup toolchain install nightly'"
    fi
    if ! cargo fuzz --version >/dev/null 2>&1; then
        log "installing cargo-fuzz into ~/.cargo/bin (cargo install cargo-fuzz --locked)"
        cargo install cargo-fuzz --locked ||
            die "cannot install cargo-fuzz: run 'cargo install cargo-fuzz --locked'"
    fi
}

# Builds every target once (release, debug assertions, ASan).
build() {
    local start=$SECONDS
    log "building the fuzz targets into $TARGET_DIR"
    (cd "$REPO" && cargo +nightly fuzz build --target-dir "$TARGET_DIR") ||
        die "the fuzz targets did not build (see above)"
    log "built in $((SECONDS - start)) s"
}

# The value of libFuzzer's final `stat::NAME:` line in LOG, or 0.
stat_of() {
    sed -n "s/^stat::$2: *\([0-9]*\)$/\1/p" "$1" | tail -n 1 | grep . || echo 0
}

# Runs one target for SECONDS; returns non-zero when it found a failing input.
run_target() {
    local target=$1 seconds=$2 bin="$BIN_DIR/$1" dir="$OUT/$1" seeds="$FUZZ_DIR/corpus/$1"
    local dict="$FUZZ_DIR/dicts/$1.dict" rc=0 args=()
    [ -x "$bin" ] || die "no fuzz binary $bin (did the build run?)"
    [ -d "$seeds" ] || die "no seed corpus $seeds"
    mkdir -p "$dir/corpus"
    touch "$dir/.started"
    [ -f "$dict" ] && args+=("-dict=$dict")
    # shellcheck disable=SC2206 # split on purpose: a list of flags
    [ -n "${VCLAB_FUZZ_ARGS:-}" ] && args+=($VCLAB_FUZZ_ARGS)
    log "$target: ${seconds} s from $(find "$seeds" -type f | wc -l) seeds and" \
        "$(find "$dir/corpus" -type f | wc -l) inputs of earlier runs"
    # The working corpus comes first: libFuzzer writes new inputs there only.
    "$bin" -max_total_time="$seconds" -timeout="$PER_INPUT_TIMEOUT" -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$dir/" "${args[@]+"${args[@]}"}" \
        "$dir/corpus" "$seeds" >"$dir/fuzz.log" 2>&1 || rc=$?
    local execs per_s corpus
    execs=$(stat_of "$dir/fuzz.log" number_of_executed_units)
    per_s=$(stat_of "$dir/fuzz.log" average_exec_per_sec)
    corpus=$(find "$dir/corpus" -type f | wc -l)
    # With -fork=1 -ignore_crashes=1 libFuzzer exits 0 after crashes: the inputs it left count.
    local found
    found=$(find "$dir" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' \
        -o -name 'oom-*' -o -name 'leak-*' \) -newer "$dir/.started" -print 2>/dev/null || true)
    [ "$rc" = 0 ] && [ -n "$found" ] && rc=1
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$seconds" "$execs" "$per_s" "$corpus" \
        "$([ "$rc" = 0 ] && echo clean || echo "failed($rc)")" >>"$OUT/summary.tsv"
    if [ "$rc" != 0 ]; then
        log "$target FAILED (libFuzzer exit $rc); the log is $dir/fuzz.log:"
        grep -m 1 -A 12 -E 'panicked|ERROR: (libFuzzer|AddressSanitizer)|SUMMARY' \
            "$dir/fuzz.log" >&2 || tail -n 20 "$dir/fuzz.log" >&2
        local f
        for f in ${found:-}; do
            log "input: $f"
            log "reproduce: $bin $f   (or: cd $REPO && cargo +nightly fuzz run $target $f)"
        done
        return 1
    fi
    log "$target clean: $execs runs, $per_s/s, working corpus $corpus inputs"
}

main() {
    case "${1:-}" in
    help | -h | --help)
        usage
        return 0
        ;;
    list)
        targets
        return 0
        ;;
    esac
    local seconds=60
    if [ $# -gt 0 ]; then
        [[ $1 =~ ^[1-9][0-9]*$ ]] || die "SECONDS must be a positive whole number, not '$1' (see: $0 help)"
        seconds=$1
        shift
    fi
    local all wanted=("$@") t
    all=$(targets)
    [ ${#wanted[@]} -gt 0 ] || read -r -d '' -a wanted <<<"$all" || true
    for t in "${wanted[@]}"; do
        grep -qx "$t" <<<"$all" || die "unknown target '$t'; the targets are: $(tr '\n' ' ' <<<"$all")"
    done
    ensure_tools
    build
    mkdir -p "$OUT"
    printf 'target\tseconds\texecs\texecs_per_s\tcorpus\tresult\n' >"$OUT/summary.tsv"
    local failed=()
    for t in "${wanted[@]}"; do
        run_target "$t" "$seconds" || failed+=("$t")
    done
    column -t -s $'\t' "$OUT/summary.tsv" >&2 || cat "$OUT/summary.tsv" >&2
    if [ ${#failed[@]} -gt 0 ]; then
        log "failing inputs found by: ${failed[*]} (inputs and logs under $OUT)"
        return 1
    fi
    log "all ${#wanted[@]} targets clean for $seconds s each"
}

main "$@"
