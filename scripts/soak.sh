#!/usr/bin/env bash
# Soak, kill matrix and concurrent load of the lab's programs, each judged by what it leaves behind.
#
# Usage: scripts/soak.sh [soak] [N] [OPTIONS]      N unikernel VM boots, N container runs and N density
#                                                  holds-and-teardowns of 10 instances each (default 1000)
#        scripts/soak.sh kill-matrix [N] [OPTIONS] SIGKILL, SIGINT and SIGTERM each program N times at a
#                                                  random moment (default 50; also scripts/kill-matrix.sh)
#        scripts/soak.sh load [N] [OPTIONS]        N concurrent `vclab compare --quick`, then N concurrent
#                                                  density ramps (default 8; also scripts/load.sh)
#        scripts/soak.sh counts                    print the counts this script judges, and exit
#        scripts/soak.sh help
# Run `scripts/soak.sh help` for the options and what is counted.
set -eu -o pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Options (see usage).
MODE=soak
N=
HOLDS=
OUT=
BUILD=1
DROP_CACHES=1
SHARED_HOST=0
SETTLE=30
END_WAIT=15
SLOW_N=
PROGRAMS=launcher,detach,vmm,compare,density
ROWS=bare,container,crun,runc,microvm-unikernel
BIN=${VCLAB_BIN_DIR:-$REPO/target/release}

log() { printf 'soak: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 2
}

usage() {
    cat <<'EOF'
Usage: scripts/soak.sh [soak|kill-matrix|load|counts|help] [N] [OPTIONS]

Modes:
  soak [N]          N unikernel VM boots (vclab-vmm, cpu kernel, 4 KiB x 1), N container runs (lab rootfs,
                    /bin/true), N holds-and-teardowns of 10 instances each (10 `run --detach` containers
                    and 10 idle unikernel VMs, each ready, then `delete --force` and SIGTERM), and
                    --holds density holds-and-teardowns through the harness (`vclab density --runtimes
                    container,microvm-unikernel --max 10 --step 10 --concurrency 1`: 10 held instances
                    of each, then 100 held launches of each for the launch rate). Default N 1000.
  kill-matrix [N]   For each program (attached launcher of a sleeping container (--init), `run --detach`, the VMM
                    of an idle unikernel, `vclab compare --quick`, a small `vclab density` ramp) and each
                    of SIGKILL, SIGINT, SIGTERM: N times, start it in the background (so SIGINT is
                    inherited ignored, as from a non-interactive shell), signal it at a random moment,
                    require that it ends within --end-wait seconds (SIGINT/SIGTERM: with 130/143, or as
                    killed by the signal), run the next launch's sweep, and require the counts of the
                    start. Default 50.
  load [N]          N concurrent `vclab compare --quick --only ROWS`, then N concurrent small density ramps;
                    each must succeed (no lock, state or cgroup collision), then the counts of the start.
                    Default 8.
  counts            Print the counts and exit.

Options:
  --holds M         soak: density runs (default N/10: one takes ~2.5 s here)
  --out FILE        write the result as JSON to FILE (e.g. results/soak-1000.json)
  --rows LIST       compare rows for kill-matrix and load (default bare,container,crun,runc,microvm-unikernel;
                    rows that cannot run here are skipped by vclab compare itself)
  --settle SECS     how long the counts after a run may take to come back (default 30)
  --end-wait SECS   kill-matrix: how long a signalled program may take to end (default 15)
  --slow-n M        kill-matrix: M trials (instead of N) for compare and density, the slow ones
  --programs LIST   kill-matrix: of launcher,detach,vmm,compare,density (default all)
  --shared-host     judge only what the lab's programs own (their processes, threads and fds, vclab
                    cgroups, /run state, KVM VMs, vclab mounts and net devices), and of processes and
                    cgroups only those below this script's own cgroup (other sessions' are theirs);
                    print the system-wide fds, threads, mounts and MemAvailable without judging them
  --no-drop-caches  do not drop the page cache before reading MemAvailable
  --no-build        use the binaries in $VCLAB_BIN_DIR (default target/release) as they are

Counted before and after (a leak is any count higher after, MemAvailable lower by more than 1 %):
  fds               allocated file handles of the system (/proc/sys/fs/file-nr)
  threads           threads of the system (/proc/loadavg)
  mounts            lines of /proc/self/mountinfo (the host's mount namespace)
  vclab_mounts      of those, mounts whose source or target names vclab
  cgroups           directories named vclab* in every cgroup hierarchy under /sys/fs/cgroup
  run_vclab         entries under /run/vclab (the launcher's and the harness's state)
  run_launchers     entries under /run/vclab-launchers (launchers' marks for the sweep)
  lab_procs         processes named vclab* or in a vclab* cgroup; lab_threads, lab_fds: theirs
  kvm_vms           KVM VMs: /sys/kernel/debug/kvm entries where debugfs is mounted, else kvm-vm fds
  netdevs           network devices named vclab* or vctap*
  mem_avail_kib     MemAvailable, after `sync; echo 3 > /proc/sys/vm/drop_caches` (root; the page cache
                    of the results written meanwhile would otherwise read as a leak)
Exit code: 0 when every check passed, 1 on a leak or a failed run, 2 on bad usage.
EOF
}

# ---- counts ----

# This script's own cgroup, as "CONTROLLERS:PATH" of /proc/self/cgroup (the memory controller's
# line, else the cgroup2 one). With --shared-host only processes and cgroups below it are counted:
# another user's lab programs (another session's cgroup) are theirs to judge.
own_cgroup() {
    awk -F: '$2 == "memory" { print $2 ":" $3; found = 1; exit }
        $1 == "0" { v2 = ":" $3 } END { if (!found) print v2 }' /proc/self/cgroup
}

# Whether pid $1 is in scope (always, unless --shared-host).
in_scope() {
    [ "$SHARED_HOST" = 0 ] && return 0
    local ctl=${SCOPE%%:*} path=${SCOPE#*:}
    [ "$path" = / ] && return 0
    awk -F: -v c="$ctl" -v p="$path" '$2 == c && (substr($3, 1, length(p)) == p) { ok = 1 }
        END { exit !ok }' "/proc/$1/cgroup" 2>/dev/null
}

# The vclab* cgroup directories in scope.
lab_cgroups() {
    local roots=(/sys/fs/cgroup) path=${SCOPE#*:} d
    if [ "$SHARED_HOST" = 1 ] && [ "$path" != / ]; then
        roots=()
        for d in /sys/fs/cgroup/*"$path" /sys/fs/cgroup"$path"; do [ -d "$d" ] && roots+=("$d"); done
    fi
    [ ${#roots[@]} = 0 ] || { find "${roots[@]}" -mindepth 1 -type d -name 'vclab*' 2>/dev/null || true; } | sort -u
}

# Pids of the lab's processes: named vclab*, or in a cgroup whose path has a vclab* component.
lab_pids() {
    {
        grep -l '^vclab' /proc/[0-9]*/comm 2>/dev/null || true
        grep -lE '^[0-9]+:[^:]*:(.*/)?vclab[^/]*(/|$)' /proc/[0-9]*/cgroup 2>/dev/null || true
    } | awk -F/ '{ print $3 }' | sort -un | while read -r pid; do
        if [ "$pid" != "$$" ] && [ -d "/proc/$pid" ] && in_scope "$pid"; then printf '%s\n' "$pid"; fi
    done
}

kvm_vms() {
    if [ -d /sys/kernel/debug/kvm ]; then
        find /sys/kernel/debug/kvm -mindepth 1 -maxdepth 1 -type d | wc -l
    else
        { find /proc/[0-9]*/fd -lname 'anon_inode:kvm-vm' 2>/dev/null || true; } | awk -F/ '{ print $3 }' |
            while read -r pid; do if in_scope "$pid"; then echo "$pid"; fi; done | wc -l
    fi
}

count_entries() {
    if [ -d "$1" ]; then find "$1" -mindepth 1 -maxdepth 1 | wc -l; else echo 0; fi
}

mem_available() {
    if [ "$DROP_CACHES" = 1 ] && [ -w /proc/sys/vm/drop_caches ]; then
        sync
        echo 3 >/proc/sys/vm/drop_caches
    fi
    awk '/^MemAvailable:/ { print $2 }' /proc/meminfo
}

# Prints "key value" lines; with "mem", MemAvailable too (it drops the caches).
counts() {
    local pids procs=0 threads=0 fds=0 pid
    pids=$(lab_pids)
    for pid in $pids; do
        [ -d "/proc/$pid" ] || continue
        procs=$((procs + 1))
        threads=$((threads + $({ find "/proc/$pid/task" -mindepth 1 -maxdepth 1 2>/dev/null || true; } | wc -l)))
        fds=$((fds + $({ find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null || true; } | wc -l)))
    done
    printf 'fds %s\n' "$(cut -f1 /proc/sys/fs/file-nr)"
    printf 'threads %s\n' "$(awk '{ split($4, a, "/"); print a[2] }' /proc/loadavg)"
    printf 'mounts %s\n' "$(wc -l </proc/self/mountinfo)"
    printf 'vclab_mounts %s\n' "$(grep -c vclab /proc/self/mountinfo || true)"
    printf 'cgroups %s\n' "$(lab_cgroups | wc -l)"
    printf 'run_vclab %s\n' "$(count_entries /run/vclab)"
    printf 'run_launchers %s\n' "$(count_entries /run/vclab-launchers)"
    printf 'lab_procs %s\nlab_threads %s\nlab_fds %s\n' "$procs" "$threads" "$fds"
    printf 'kvm_vms %s\n' "$(kvm_vms)"
    printf 'netdevs %s\n' "$(find /sys/class/net -mindepth 1 -maxdepth 1 \( -name 'vclab*' -o -name 'vctap*' \) | wc -l)"
    if [ "${1:-}" = mem ]; then
        printf 'mem_avail_kib %s\n' "$(mem_available)"
    fi
}

# What the counts stand for, one line each, to name a leak.
items() {
    local pid
    for pid in $(lab_pids); do
        printf 'process %s %s\n' "$pid" "$(cat "/proc/$pid/comm" 2>/dev/null || echo '?')"
    done
    lab_cgroups | sed 's/^/cgroup /'
    { find /run/vclab /run/vclab-launchers -mindepth 1 -maxdepth 1 2>/dev/null || true; } | sed 's/^/state /'
    { grep vclab /proc/self/mountinfo || true; } | awk '{ print "mount " $5 }'
    { find /proc/[0-9]*/fd -lname 'anon_inode:kvm-vm' 2>/dev/null || true; } | awk -F/ '{ print "kvm-vm fd of " $3 }'
    find /sys/class/net -mindepth 1 -maxdepth 1 \( -name 'vclab*' -o -name 'vctap*' \) | sed 's/^/netdev /'
}

# Whether key $1 is judged.
judged() {
    case $1 in
        fds | threads | mounts | mem_avail_kib) [ "$SHARED_HOST" = 0 ] ;;
        *) true ;;
    esac
}

# leaks BEFORE AFTER: prints the leaking keys (one a line).
leaks() {
    awk -v shared="$SHARED_HOST" '
        NR == FNR { before[$1] = $2; next }
        {
            k = $1; a = $2; b = before[k]
            if (shared == 1 && (k == "fds" || k == "threads" || k == "mounts" || k == "mem_avail_kib")) next
            if (k == "mem_avail_kib") { if (a < b * 0.99) print k; next }
            if (a > b) print k
        }' "$1" "$2"
}

# table BEFORE AFTER: the before/after/delta table on stdout.
table() {
    printf '%-16s %12s %12s %10s  %s\n' count before after delta verdict
    awk -v shared="$SHARED_HOST" '
        NR == FNR { before[$1] = $2; next }
        {
            k = $1; a = $2; b = before[k]; d = a - b; v = (d > 0) ? "LEAK" : "ok"
            if (k == "mem_avail_kib") {
                pct = (b > 0) ? 100 * d / b : 0
                v = (a < b * 0.99) ? sprintf("LOW (%.2f %%, limit -1 %%)", pct) : sprintf("ok (%+.2f %%)", pct)
            }
            if (shared == 1 && (k == "fds" || k == "threads" || k == "mounts" || k == "mem_avail_kib"))
                v = v " (shared host: not judged)"
            printf "%-16s %12d %12d %+10d  %s\n", k, b, a, d, v
        }' "$1" "$2"
}

# settle BEFORE AFTER [mem]: samples AFTER until nothing leaks or --settle seconds pass; returns the
# number of leaking counts.
settle() {
    local before=$1 after=$2 mem=${3:-} deadline n
    deadline=$((SECONDS + SETTLE))
    while :; do
        counts "$mem" >"$after"
        n=$(leaks "$before" "$after" | wc -l)
        if [ "$n" = 0 ] || [ "$SECONDS" -ge "$deadline" ]; then
            return "$n"
        fi
        sleep 0.5
    done
}

# ---- programs ----

# Seconds since $1 (a `date +%s.%N`), times $2 (default 1).
since() { awk -v t0="$1" -v now="$(date +%s.%N)" -v f="${2:-1}" 'BEGIN { printf "%.3f", (now - t0) * f }'; }

build() {
    [ "$BUILD" = 1 ] || return 0
    log "cargo build --release -p vclab-bench -p vclab-container"
    (cd "$REPO" && cargo build --release -p vclab-bench -p vclab-container >&2)
}

# Sets VCLAB, VMM, LAUNCHER (an array: the small launcher, else `vclab container`), UNIKERNEL, ROOTFS.
find_programs() {
    VCLAB=$BIN/vclab
    VMM=$BIN/vclab-vmm
    [ -x "$VCLAB" ] || die "no $VCLAB (build it, or set VCLAB_BIN_DIR)"
    [ -x "$VMM" ] || VMM="$VCLAB vm run"
    if [ -x "$BIN/vclab-container" ]; then LAUNCHER=("$BIN/vclab-container"); else LAUNCHER=("$VCLAB" container); fi
    UNIKERNEL=$("$REPO/scripts/guest-images.sh" path unikernel) || die "no cached unikernel: run scripts/guest-images.sh all"
    ROOTFS=$("$REPO/scripts/guest-images.sh" path rootfs) || die "no cached rootfs: run scripts/guest-images.sh all"
    [ "$(id -u)" = 0 ] || die "run as root (containers, cgroups, /run/vclab)"
}

vm_boot() {
    local i=$1 out
    # shellcheck disable=SC2086
    out=$($VMM --kernel "$UNIKERNEL" --cmdline "vclab.kernel=cpu vclab.size=4096 vclab.iterations=1 vclab.seed=$i" 2>&1) &&
        [[ $out == *'"checksum":'* ]]
}

# note TEXT: one line of why a run failed (the first two lines of TEXT).
note() { log "  $(printf '%s\n' "$1" | head -2 | tr '\n' ' ')"; }

container_run() {
    local err
    err=$("${LAUNCHER[@]}" --rootfs "$ROOTFS" -- /bin/true 2>&1 >/dev/null) || {
        note "container run: $err"
        return 1
    }
}

# Holds 10 detached containers (`run --detach`, a sleeping /bin/sleep) and 10 idle unikernel VMs
# (each ready: its `{"ready":true}` line), then tears them down: `delete --force`, SIGTERM (143).
direct_hold() {
    local i=$1 k ok=0 pids=() ids=() deadline rc err
    for ((k = 1; k <= 10; k++)); do
        ids+=("vclab-soak-$$-$i-$k")
        # Not through a pipe: the container keeps the launcher's stdout and stderr.
        "${LAUNCHER[@]}" run --detach --id "${ids[-1]}" --rootfs "$ROOTFS" -- /bin/sleep 1000 \
            >/dev/null 2>"$WORK/detach.err" || {
            note "run --detach --id ${ids[-1]}: $(cat "$WORK/detach.err")"
            ok=1
        }
        # shellcheck disable=SC2086
        $VMM --kernel "$UNIKERNEL" --cmdline vclab.kernel=idle --console off >"$WORK/vm-$k.out" 2>/dev/null &
        pids+=($!)
    done
    deadline=$((SECONDS + 20))
    for ((k = 1; k <= 10; k++)); do
        until grep -q '"ready":true' "$WORK/vm-$k.out" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; do
            sleep 0.005
        done
        grep -q '"ready":true' "$WORK/vm-$k.out" || {
            note "VM $k of hold $i: not ready within 20 s"
            ok=1
        }
    done
    for k in "${!pids[@]}"; do kill -TERM "${pids[$k]}" 2>/dev/null || ok=1; done
    for k in "${!pids[@]}"; do
        rc=0
        wait "${pids[$k]}" || rc=$?
        [ "$rc" = 143 ] || {
            note "VM $((k + 1)) of hold $i: exit $rc after SIGTERM (expected 143)"
            ok=1
        }
    done
    for k in "${!ids[@]}"; do
        err=$("${LAUNCHER[@]}" delete --force "${ids[$k]}" 2>&1 >/dev/null) || {
            note "delete --force ${ids[$k]}: $err"
            ok=1
        }
    done
    rm -f "$WORK"/vm-*.out
    return "$ok"
}

density_hold() {
    local dir=$WORK/density err
    err=$("$VCLAB" density --runtimes container,microvm-unikernel --max 10 --step 10 --concurrency 1 \
        --out "$dir" 2>&1 >/dev/null) || {
        printf '%s\n' "$err" | tail -3 >&2
        rm -rf "$dir"
        return 1
    }
    rm -rf "$dir"
    [ "$(grep -c 'held 10, stopped: reached --max' <<<"$err")" = 2 ] || {
        printf '%s\n' "$err" | tail -3 >&2
        return 1
    }
}

# phase NAME COUNT FUNCTION: runs FUNCTION i for i in 1..COUNT; records wall time and failures.
phase() {
    local name=$1 count=$2 fn=$3 i fails=0 t0 every
    every=$(((count + 9) / 10))
    t0=$(date +%s.%N)
    for ((i = 1; i <= count; i++)); do
        "$fn" "$i" || {
            fails=$((fails + 1))
            log "$name $i/$count failed"
        }
        if ((i % every == 0)); then log "$name: $i/$count ($fails failed)"; fi
    done
    PHASES+=("$(printf '"%s":{"n":%d,"failed":%d,"wall_s":%.1f}' "$name" "$count" "$fails" \
        "$(since "$t0")")")
    FAILED=$((FAILED + fails))
}

# ---- kill matrix ----

# A random moment in [0, $1] seconds.
moment() { awk -v r="$RANDOM" -v max="$1" 'BEGIN { printf "%.3f", r / 32767 * max }'; }

# The state letter of pid $1 (empty when gone).
pstate() { awk '{ sub(/.*\) /, ""); print substr($0, 1, 1) }' "/proc/$1/stat" 2>/dev/null || true; }

# start PROGRAM I: starts it in the background; sets PID and, for run --detach, CID.
start_program() {
    local prog=$1 i=$2
    CID=
    case $prog in
        # With --init: a plain `sleep` as the container's PID 1 would ignore SIGINT and SIGTERM (the
        # kernel delivers only signals PID 1 handles), as in any container runtime.
        launcher) "${LAUNCHER[@]}" --init --rootfs "$ROOTFS" -- /bin/sleep 1000 >/dev/null 2>&1 & ;;
        detach)
            CID=vclab-km-$$-$i
            "${LAUNCHER[@]}" run --detach --id "$CID" --rootfs "$ROOTFS" -- /bin/sleep 1000 >/dev/null 2>&1 &
            ;;
        # shellcheck disable=SC2086
        vmm) $VMM --kernel "$UNIKERNEL" --cmdline vclab.kernel=idle --console off >/dev/null 2>&1 & ;;
        compare)
            "$VCLAB" compare --quick --only "$ROWS" --out "$WORK/compare" >/dev/null 2>&1 &
            ;;
        density)
            "$VCLAB" density --runtimes container,microvm-unikernel --max 20 --step 5 --concurrency 1 \
                --out "$WORK/density" >/dev/null 2>&1 &
            ;;
    esac
    PID=$!
}

# How long a run of each program takes unsignalled (the window the random moment falls in): the
# launcher's and the VMM's set-up is a few ms, their program then sleeps; compare and density are
# timed once.
calibrate() {
    local prog t0 rc
    WINDOW_launcher=0.1
    WINDOW_vmm=0.1
    # `run --detach` ends once the container runs (a few ms): the window is one such run.
    t0=$(date +%s.%N)
    "${LAUNCHER[@]}" run --detach --id "vclab-km-$$-0" --rootfs "$ROOTFS" -- /bin/sleep 1000 >/dev/null 2>&1 ||
        die "run --detach fails before any signal: fix that first"
    WINDOW_detach=$(since "$t0")
    "${LAUNCHER[@]}" delete --force "vclab-km-$$-0" >/dev/null 2>&1
    log "kill-matrix: run --detach takes $WINDOW_detach s unsignalled"
    for prog in compare density; do
        [[ ,$PROGRAMS, == *,$prog,* ]] || continue
        t0=$(date +%s.%N)
        start_program "$prog" 0
        rc=0
        wait "$PID" || rc=$?
        rm -rf "$WORK/compare" "$WORK/density"
        [ "$rc" = 0 ] || die "$prog exits $rc before any signal: fix that first"
        printf -v "WINDOW_$prog" '%s' "$(since "$t0" 0.9)"
        log "kill-matrix: $prog takes $(since "$t0") s unsignalled"
    done
}

# trial PROGRAM SIGNAL I BASELINE: one kill; prints nothing, appends to RESULT_* on a failure.
trial() {
    local prog=$1 sig=$2 i=$3 base=$4 window at st rc=0 deadline ended=signalled left why=
    window=WINDOW_$prog
    at=$(moment "${!window}")
    start_program "$prog" "$i"
    sleep "$at"
    st=$(pstate "$PID")
    if [ -z "$st" ] || [ "$st" = Z ]; then
        ended=before
    else
        kill -s "$sig" "$PID" 2>/dev/null || ended=before
    fi
    deadline=$((SECONDS + END_WAIT))
    while kill -0 "$PID" 2>/dev/null && [ "$(pstate "$PID")" != Z ] && [ "$SECONDS" -lt "$deadline" ]; do
        sleep 0.02
    done
    # One reading of the state: bash reaps the zombie at any moment, and a second reading of a
    # reaped pid (or of its wchan) would be an empty state or a failed command.
    st=$(pstate "$PID")
    if [ -n "$st" ] && [ "$st" != Z ]; then
        why="still running $END_WAIT s after $sig (state $st, in $(cat "/proc/$PID/wchan" 2>/dev/null || echo '?'))"
        kill -KILL "$PID" 2>/dev/null || true
    fi
    { wait "$PID"; } 2>/dev/null || rc=$?
    if [ -z "$why" ] && [ "$ended" = signalled ] && [ "$sig" != KILL ]; then
        # SIGINT/SIGTERM must end it as asked: 130/143 or killed by the signal (density: 130 for
        # both). `run --detach` keeps them pending while it sets up: it may complete instead (0).
        case "$prog:$sig:$rc" in
            *:INT:130 | *:TERM:143 | density:TERM:130 | detach:*:0) ;;
            *) why="exit $rc after SIG$sig (expected $([ "$sig" = INT ] && echo 130 || echo 143))" ;;
        esac
    fi
    if [ "$ended" = before ] && { [ "$prog" = launcher ] || [ "$prog" = vmm ]; }; then
        why="it ended by itself (exit $rc) before the signal"
    fi
    printf '%s %s %s\n' "$prog" "$sig" "$([ "$ended" = before ] && echo "ended-before-signal" || echo "exit-$rc")" >>"$WORK/outcomes"
    # The next run's sweep, then the user's own clean-up of a container it did create.
    "${LAUNCHER[@]}" --rootfs "$ROOTFS" -- /bin/true >/dev/null 2>&1 || why="${why:+$why; }the next run failed"
    if [ -n "$CID" ] && "${LAUNCHER[@]}" state "$CID" >/dev/null 2>&1; then
        "${LAUNCHER[@]}" delete --force "$CID" >/dev/null 2>&1 || why="${why:+$why; }delete --force $CID failed"
    fi
    rm -rf "$WORK/compare" "$WORK/density"
    # Per trial only what the lab's programs own (a leak stays: the counts at the end judge the rest).
    if ! SHARED_HOST=1 settle "$base" "$WORK/trial.counts"; then
        left=$(SHARED_HOST=1 leaks "$base" "$WORK/trial.counts" | tr '\n' ' ')
        why="${why:+$why; }left: $left"
        items | grep -vxFf "$WORK/base.items" | sed 's/^/    /' >&2 || true
        # Judge the next trial against what is there now, not again against this leak.
        counts >"$base"
        items >"$WORK/base.items"
    fi
    TRIALS=$((TRIALS + 1))
    if [ -n "$why" ]; then
        FAILED=$((FAILED + 1))
        log "kill-matrix: $prog SIG$sig #$i at ${at}s: $why"
        eval "FAIL_${prog}_$sig=\$((FAIL_${prog}_$sig + 1))"
    fi
}

# outcomes PROGRAM SIGNAL: how its trials ended, e.g. "exit-130 x48, ended-before-signal x2".
outcomes() {
    awk -v p="$1" -v s="$2" '$1 == p && $2 == s { n[$3]++ }
        END { for (k in n) { printf "%s%s x%d", sep, k, n[k]; sep = ", " } }' "$WORK/outcomes"
}

kill_matrix() {
    local prog sig i n
    calibrate
    for prog in ${PROGRAMS//,/ }; do
        for sig in KILL INT TERM; do
            eval "FAIL_${prog}_$sig=0"
            n=$N
            case $prog in compare | density) n=${SLOW_N:-$N} ;; esac
            log "kill-matrix: $prog SIG$sig x $n"
            for ((i = 1; i <= n; i++)); do
                trial "$prog" "$sig" "$i" "$WORK/base.counts"
            done
            PHASES+=("$(printf '"%s-%s":{"n":%d,"failed":%d,"outcomes":"%s"}' "$prog" "$sig" "$n" \
                "$(eval echo "\$FAIL_${prog}_$sig")" "$(outcomes "$prog" "$sig")")")
            log "kill-matrix: $prog SIG$sig: $(outcomes "$prog" "$sig")"
        done
    done
}

# ---- load ----

# What a lost race says: a lock, an id or directory that exists, EBUSY.
COLLISION='\block(ed|ing)?\b|already exists|File exists|EEXIST|resource busy|address already in use'

# together COUNT NAME COMMAND...: COUNT copies at once (COMMAND gets the copy's results dir as its
# last argument); every copy must exit 0.
together() {
    local count=$1 name=$2 k rc fails=0 t0
    shift 2
    local pids=()
    t0=$(date +%s.%N)
    for ((k = 1; k <= count; k++)); do
        "$@" "$WORK/$name-$k" >/dev/null 2>"$WORK/$name-$k.log" &
        pids+=($!)
    done
    for k in "${!pids[@]}"; do
        rc=0
        wait "${pids[$k]}" || rc=$?
        if [ "$rc" != 0 ]; then
            fails=$((fails + 1))
            log "load: $name copy $((k + 1)) exit $rc: $(tail -2 "$WORK/$name-$((k + 1)).log" | tr '\n' ' ')"
        fi
        if grep -qiE "$COLLISION" "$WORK/$name-$((k + 1)).log"; then
            fails=$((fails + 1))
            log "load: $name copy $((k + 1)) hit a collision: $(grep -iE "$COLLISION" "$WORK/$name-$((k + 1)).log" | head -2 | tr '\n' ' ')"
        fi
    done
    rm -rf "$WORK/$name"-*
    PHASES+=("$(printf '"%s":{"n":%d,"failed":%d,"wall_s":%.1f}' "$name" "$count" "$fails" \
        "$(since "$t0")")")
    FAILED=$((FAILED + fails))
}

load() {
    log "load: $N x vclab compare --quick --only $ROWS at once"
    together "$N" compare "$VCLAB" compare --quick --only "$ROWS" --out
    log "load: $N x vclab density (container, microvm-unikernel to 20) at once"
    together "$N" density "$VCLAB" density --runtimes container,microvm-unikernel --max 20 --step 10 \
        --concurrency 1 --memory-budget 5% --out
}

# ---- result ----

write_json() {
    local file=$1 wall=$2 leaked=$3
    mkdir -p "$(dirname "$file")"
    {
        printf '{"kind":"vclab-soak","mode":"%s","n":%d,"holds":%s,"started_utc":"%s","wall_s":%.1f,' \
            "$MODE" "$N" "${HOLDS:-null}" "$STARTED" "$wall"
        printf '"drop_caches":%s,"shared_host":%s,"failed_runs":%d,"leaks":%d,' \
            "$([ "$DROP_CACHES" = 1 ] && echo true || echo false)" \
            "$([ "$SHARED_HOST" = 1 ] && echo true || echo false)" "$FAILED" "$leaked"
        printf '"phases":{%s},' "$(
            IFS=,
            echo "${PHASES[*]}"
        )"
        printf '"counts":{'
        awk -v shared="$SHARED_HOST" '
            NR == FNR { before[$1] = $2; next }
            {
                k = $1; a = $2; b = before[k]
                judged = !(shared == 1 && (k == "fds" || k == "threads" || k == "mounts" || k == "mem_avail_kib"))
                leak = (k == "mem_avail_kib") ? (a < b * 0.99) : (a > b)
                printf "%s\"%s\":{\"before\":%d,\"after\":%d,\"delta\":%d,\"judged\":%s,\"leak\":%s}", sep, k, b, a, a - b,
                    judged ? "true" : "false", (judged && leak) ? "true" : "false"
                sep = ","
            }' "$WORK/before.counts" "$WORK/after.counts"
        printf '},"ok":%s}\n' "$([ "$FAILED" = 0 ] && [ "$leaked" = 0 ] && echo true || echo false)"
    } >"$file.tmp"
    mv "$file.tmp" "$file"
    log "wrote $file"
}

parse() {
    case ${1:-} in
        soak | kill-matrix | load | counts)
            MODE=$1
            shift
            ;;
        help | -h | --help)
            usage
            exit 0
            ;;
    esac
    if [[ ${1:-} =~ ^[0-9]+$ ]]; then
        N=$1
        shift
    fi
    while [ $# -gt 0 ]; do
        case $1 in
            --holds) HOLDS=${2:?--holds needs a number} && shift ;;
            --out) OUT=${2:?--out needs a file} && shift ;;
            --rows) ROWS=${2:?--rows needs a list} && shift ;;
            --settle) SETTLE=${2:?--settle needs seconds} && shift ;;
            --end-wait) END_WAIT=${2:?--end-wait needs seconds} && shift ;;
            --slow-n) SLOW_N=${2:?--slow-n needs a number} && shift ;;
            --programs) PROGRAMS=${2:?--programs needs a list} && shift ;;
            --shared-host) SHARED_HOST=1 ;;
            --no-drop-caches) DROP_CACHES=0 ;;
            --no-build) BUILD=0 ;;
            help | -h | --help)
                usage
                exit 0
                ;;
            *) die "unknown argument $1 (see scripts/soak.sh help)" ;;
        esac
        shift
    done
    case $MODE in
        soak) N=${N:-1000} ;;
        kill-matrix) N=${N:-50} ;;
        load) N=${N:-8} ;;
        counts) return 0 ;;
    esac
    HOLDS=${HOLDS:-$(((N + 9) / 10))}
    for v in "$N" "$HOLDS" "$SETTLE" "$END_WAIT" "${SLOW_N:-0}"; do
        [[ $v =~ ^[0-9]+$ ]] || die "not a whole number: $v"
    done
    if [ -n "$OUT" ]; then case $OUT in /*) ;; *) OUT=$PWD/$OUT ;; esac fi
}

main() {
    parse "$@"
    SCOPE=$(own_cgroup)
    if [ "$MODE" = counts ]; then
        counts mem
        return 0
    fi
    build
    find_programs
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/vclab-soak.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
    STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    PHASES=()
    FAILED=0
    TRIALS=0
    # One launch first: its sweep removes what earlier runs left, which is not this run's to judge.
    container_run || die "a container run fails before the soak: ${LAUNCHER[*]} --rootfs $ROOTFS -- /bin/true"
    counts mem >"$WORK/before.counts"
    counts >"$WORK/base.counts"
    items >"$WORK/base.items"
    local t0 leaked=0
    t0=$SECONDS
    case $MODE in
        soak)
            phase vm_boots "$N" vm_boot
            phase container_runs "$N" container_run
            phase holds "$N" direct_hold
            phase density_holds "$HOLDS" density_hold
            ;;
        kill-matrix) kill_matrix ;;
        load) load ;;
    esac
    local wall=$((SECONDS - t0))
    settle "$WORK/before.counts" "$WORK/after.counts" mem || leaked=$?
    log "$MODE N=$N: $wall s, $FAILED failed run(s)$([ "$TRIALS" = 0 ] || echo " of $TRIALS trials"), $leaked leaking count(s)"
    table "$WORK/before.counts" "$WORK/after.counts"
    if [ "$leaked" != 0 ]; then
        log "left behind:"
        items | grep -vxFf "$WORK/base.items" | sed 's/^/    /' >&2 || true
    fi
    [ -z "$OUT" ] || write_json "$OUT" "$wall" "$leaked"
    [ "$FAILED" = 0 ] && [ "$leaked" = 0 ]
}

# One line: bash reads a script as it runs it, so an edit made meanwhile cannot run after main.
main "$@"; exit $?
