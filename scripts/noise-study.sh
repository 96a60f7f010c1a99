#!/usr/bin/env bash
# Where the spread of `vclab compare`'s cpu figures comes from, and what narrows it: runs the same
# comparison (cpu kernel rows, interleaved) as is, pinned (--pin), with 4× longer workload runs
# (--scale 4) and both, then prints for each variant and row the 95 % CI half-width of "score vs bare"
# (wall-clock score, as the report shows it) and the host noise the run recorded (steal, load).
# Usage: scripts/noise-study.sh [RUNS] [OUT_DIR]     (RUNS per case, default 15)
set -eu -o pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${1:-15}
OUT=${2:-$REPO/results/noise-study-$(date -u +%Y%m%dT%H%M%SZ)}
ROWS=bare,container,crun,runc,microvm-unikernel,microvm-unikernel-uart,qemu-microvm
log() { printf 'noise-study: %s\n' "$*" >&2; }

main() {
    local dir vclab variant
    dir=$("$REPO/scripts/build-static.sh")
    vclab="$dir/vclab"
    mkdir -p "$OUT"
    for variant in plain pin scale4 pin-scale4; do
        local args=(compare --quick --runs "$RUNS" --warmup 1 --only "$ROWS" --out "$OUT/$variant")
        case $variant in
            pin) args+=(--pin) ;;
            scale4) args+=(--scale 4) ;;
            pin-scale4) args+=(--pin --scale 4) ;;
        esac
        log "vclab ${args[*]}"
        "$vclab" "${args[@]}" >/dev/null 2>"$OUT/$variant.log" || log "$variant: exit $? (see $OUT/$variant.log)"
    done
    printf '%-12s %-24s %-8s %10s %18s %10s\n' variant row kernel ratio "95% CI half-width" steal%
    for variant in plain pin scale4 pin-scale4; do
        jq -r --arg v "$variant" '
            (.host.noise.steal_pct // 0) as $steal
            | .cases[]
            | select(.kernel == "cpu" and .runtime != "bare" and .summary.score_vs_bare != null)
            | .summary.score_vs_bare as $r
            | [$v, .runtime, .kernel, ($r.value * 1000 | round / 1000),
               ((($r.ci_high - $r.ci_low) / 2 / $r.value * 1000 | round) / 10 | tostring + " %"),
               ($steal * 100 | round / 100)]
            | @tsv' "$OUT/$variant/results.json" |
            awk -F'\t' '{ printf "%-12s %-24s %-8s %10s %18s %10s\n", $1, $2, $3, $4, $5, $6 }'
    done
    log "results in $OUT"
}

main "$@"
