#!/usr/bin/env bash
# Boots the unikernel guest under QEMU microvm (PVH entry, KVM) and checks it:
#   - cpu, mem-bw and mem-lat result lines equal the host `vclab-workload run` lines
#     (kernel, size, iterations, seed, checksum, ops; only the timings differ);
#   - vclab.exit=N, vclab.fault=ports|mmio|triple|hang, vclab.kernel=idle, bad input, too little RAM;
#   - vclab.kernel=io on QEMU's virtio-blk-device (modern virtio-mmio) over an image made by
#     `vclab-workload io-image`: checksum equal to `vclab-workload run io --disk` on the same
#     image, found through QEMU's own virtio_mmio.device= entry (acpi=off) and a hand-written one;
#     no disk, a read-only disk, a too small disk and a legacy transport end with status 3.
# With VCLAB_BIN=/path/to/vclab it also boots the kernels and the triple fault under the lab's own
# VMM (`vclab vm run`, 64-bit Linux boot entry, lab control device) and checks the same lines.
# It also boots one kernel with the lab device hidden (`vclab vm run --lab-device off`): the
# guest must then use the UART and end by the reset, as under Firecracker or Cloud Hypervisor.
# Usage: test.sh            (needs qemu-system-x86_64 and /dev/kvm; takes about 20 s)
# Env: CARGO_TARGET_DIR (default: target/ here), VCLAB_QEMU_CPU (default host,-arch-capabilities:
#      QEMU 7.2 cannot set MSR 0x10a on kvm_pvm with plain `-cpu host`),
#      VCLAB_UNIKERNEL=PATH / VCLAB_WORKLOAD=PATH: test these builds (e.g. the cached artifacts
#      scripts/guest-images.sh made) instead of building the guest and the host vclab-workload.
set -eu -o pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/target}"
qemu_cpu="${VCLAB_QEMU_CPU:-host,-arch-capabilities}"
work=""
guest_pid=""
failures=0
# Extra QEMU arguments of the next boot (the io checks' disk); boot() clears them.
qemu_extra=()
# With one plain -drive/-device pair QEMU microvm puts the disk in its last transport slot (23).
qemu_blk_entry="virtio_mmio.device=512@0xfeb02e00:35"

cleanup() {
    if [ -n "$guest_pid" ]; then
        kill "$guest_pid" 2>/dev/null || true
        wait "$guest_pid" 2>/dev/null || true
    fi
    if [ -n "$work" ]; then
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

pass() {
    echo "ok: $*" >&2
}

# boot SECONDS MEM_MB CMDLINE: runs the guest, output in $work/out, QEMU's status in $status.
boot() {
    local secs="$1" mem="$2" cmdline="$3" machine="${4:-}"
    timeout -k 2 "$secs" qemu-system-x86_64 -M "microvm,x-option-roms=off,rtc=off$machine" \
        -enable-kvm -cpu "$qemu_cpu" -m "$mem" -nodefaults -no-user-config -nographic -no-reboot \
        -serial stdio -device isa-debug-exit "${qemu_extra[@]}" -kernel "$work/guest.elf" \
        -append "$cmdline" </dev/null >"$work/out" 2>"$work/err" &
    guest_pid=$!
    status=0
    wait "$guest_pid" || status=$?
    guest_pid=""
    qemu_extra=()
    tr -d '\r' <"$work/out" >"$work/out.lf"
}

# with_disk IMAGE [DRIVE_OPTIONS [LEGACY]]: the next boot gets IMAGE as a virtio-blk-device on the
# modern transport (LEGACY=true: the legacy one).
with_disk() {
    qemu_extra=(-global "virtio-mmio.force-legacy=${3:-false}"
        -drive "id=d0,file=$1,format=raw,if=none${2:-}" -device virtio-blk-device,drive=d0)
}

# check_io SIZE ITERATIONS SEED MACHINE ENTRY: the io kernel on a fresh image, guest vs host.
# MACHINE ",acpi=off" lets QEMU append the virtio_mmio.device= entry itself; else ENTRY is it.
check_io() {
    local size="$1" iterations="$2" seed="$3" machine="$4" entry="$5"
    local cmdline="vclab.kernel=io vclab.size=$size vclab.iterations=$iterations vclab.seed=$seed"
    "$host_workload" io-image --size "$size" --seed 1 "$work/disk.img"
    if ! "$host_workload" run io --disk "$work/disk.img" --size "$size" \
        --iterations "$iterations" --seed "$seed" >"$work/host" 2>"$work/host.err"; then
        fail "host run io: $(cat "$work/host.err")"
        return
    fi
    with_disk "$work/disk.img"
    boot 60 128 "$cmdline $entry" "$machine"
    local want got
    want="$(result_of "$work/host")"
    got="$(result_of "$work/out.lf")"
    if [ "$status" -ne "$(qemu_status 0)" ] || [ -z "$want" ] || [ "$want" != "$got" ]; then
        fail "$cmdline$machine: QEMU status $status; guest [$got] host [$want]; $(cat "$work/out.lf" "$work/err")"
    elif ! grep -q '"io":{"seq_bytes":' "$work/out.lf"; then
        fail "$cmdline$machine: no io statistics in $(cat "$work/out.lf")"
    else
        pass "$cmdline$machine: $(grep -o '"checksum":"[0-9a-f]*"' "$work/out.lf")"
    fi
    if [ -n "${VCLAB_BIN:-}" ] && "$VCLAB_BIN" vm run --help 2>&1 | grep -q -- '--disk'; then
        vm_run "$cmdline" --disk "$work/disk.img"
        got="$(result_of "$work/out.lf")"
        if [ "$status" -ne 0 ] || [ "$want" != "$got" ]; then
            fail "vclab vm run --disk $cmdline: status $status, guest [$got] host [$want]; $(tail -c 400 "$work/err")"
        else
            pass "vclab vm run --disk $cmdline"
        fi
    fi
}

# io_fails NAME CMDLINE GREP: the io kernel (disk set up by the caller in qemu_extra, if any) must
# end with status 3 and an error line matching GREP.
io_fails() {
    local name="$1" cmdline="$2" pattern="$3"
    boot 60 128 "$cmdline" ",acpi=off"
    if [ "$status" -eq "$(qemu_status 3)" ] && grep -q "^vclab-unikernel: error: .*$pattern" "$work/out.lf"; then
        pass "$name"
    else
        fail "$name: QEMU status $status, want $(qemu_status 3); output: $(cat "$work/out.lf" "$work/err")"
    fi
}

# The result line without its timings (elapsed_ns, start_monotonic_ns differ by runtime).
result_of() {
    grep '^{"kernel"' "$1" | sed 's/,"elapsed_ns":.*$//' | head -n 1
}

# QEMU's isa-debug-exit status for guest status N.
qemu_status() {
    echo $((($1 << 1) | 1))
}

# expect NAME MEM_MB CMDLINE STATUS GREP_ARGS...: boots for up to 60 s; passes when QEMU ends with
# STATUS and `grep GREP_ARGS` finds the output.
expect() {
    local name="$1" mem="$2" cmdline="$3" want="$4"
    shift 4
    boot 60 "$mem" "$cmdline"
    if [ "$status" -eq "$want" ] && grep "$@" "$work/out.lf"; then
        pass "$name"
    else
        fail "$name: QEMU status $status, want $want; output: $(cat "$work/out.lf")"
    fi
}

check_kernel() {
    local kernel="$1" size="$2" iterations="$3" seed="$4"
    local args=(run "$kernel")
    local cmdline="vclab.kernel=$kernel"
    if [ "$size" != "-" ]; then
        args+=(--size "$size" --iterations "$iterations" --seed "$seed")
        cmdline="$cmdline vclab.size=$size vclab.iterations=$iterations vclab.seed=$seed"
    fi
    "$host_workload" "${args[@]}" >"$work/host"
    boot 60 128 "$cmdline"
    local want got
    want="$(result_of "$work/host")"
    got="$(result_of "$work/out.lf")"
    if [ "$status" -ne "$(qemu_status 0)" ]; then
        fail "$cmdline: QEMU status $status, want $(qemu_status 0); output: $(cat "$work/out.lf" "$work/err")"
    elif ! grep -qx '{"ready":true}' "$work/out.lf"; then
        fail "$cmdline: no ready line; output: $(cat "$work/out.lf")"
    elif [ -z "$want" ] || [ "$want" != "$got" ]; then
        fail "$cmdline: guest line differs from the host's: guest [$got] host [$want]"
    else
        pass "$cmdline: $(grep -o '"checksum":"[0-9a-f]*"' "$work/out.lf")"
    fi
    if [ -n "${VCLAB_BIN:-}" ]; then
        vm_run "$cmdline"
        got="$(result_of "$work/out.lf")"
        if [ "$status" -ne 0 ] || [ -z "$want" ] || [ "$want" != "$got" ]; then
            fail "vclab vm run $cmdline: status $status, guest [$got] host [$want]; $(tail -c 400 "$work/err")"
        else
            pass "vclab vm run $cmdline"
        fi
    fi
}

# vm_run CMDLINE [ARGS...]: the guest under the lab VMM; stdout in $work/out.lf, status in $status.
vm_run() {
    local cmdline="$1"
    shift
    timeout -k 2 60 "$VCLAB_BIN" vm run --kernel "$work/guest.elf" --cmdline "$cmdline" "$@" \
        --console off --json --timeout 50 </dev/null >"$work/out.lf" 2>"$work/err" &
    guest_pid=$!
    status=0
    wait "$guest_pid" || status=$?
    guest_pid=""
}

main() {
    if ! command -v qemu-system-x86_64 >/dev/null; then
        echo "test.sh: qemu-system-x86_64 not found: apt-get install qemu-system-x86" >&2
        exit 1
    fi
    work="$(mktemp -d /tmp/vclab-unikernel-test.XXXXXX)"
    if [ -n "${VCLAB_UNIKERNEL:-}" ]; then
        echo "test.sh: testing $VCLAB_UNIKERNEL" >&2
        cp "$VCLAB_UNIKERNEL" "$work/guest.elf"
    else
        "$here/build.sh" "$work/guest.elf"
    fi
    if [ -n "${VCLAB_WORKLOAD:-}" ]; then
        host_workload="$VCLAB_WORKLOAD"
    else
        echo "test.sh: building the host vclab-workload" >&2
        (cd "$root" && cargo build --release --quiet -p vclab-workload --bin vclab-workload)
        host_workload="$CARGO_TARGET_DIR/release/vclab-workload"
    fi

    # Checksums: the kernels' defaults and small runs with other seeds.
    check_kernel cpu - - -
    check_kernel mem-bw - - -
    check_kernel mem-lat - - -
    check_kernel cpu 4096 1 0
    check_kernel cpu 200000 3 12345
    check_kernel mem-bw 1048576 2 7
    check_kernel mem-lat 65536 3 18446744073709551615

    # io: the virtio-blk driver on QEMU's device; QEMU's entry (acpi=off) and a hand-written one.
    local tsc_khz
    tsc_khz="vclab.tsc_khz=$(awk -F: '/cpu MHz/ { printf "%d", $2 * 1000; exit }' /proc/cpuinfo)"
    check_io 1048576 256 5 ",acpi=off" ""
    check_io 16777216 1024 1 "" "$qemu_blk_entry"
    io_fails "io without a disk" "vclab.kernel=io" "needs a virtio-blk disk"
    with_disk "$work/disk.img" ",readonly=on"
    io_fails "io on a read-only disk" "vclab.kernel=io vclab.size=65536" "read-only"
    with_disk "$work/disk.img" "" true
    io_fails "io on a legacy transport" "vclab.kernel=io vclab.size=65536" "version 1, not 2"
    "$host_workload" io-image --size 65536 "$work/small.img"
    with_disk "$work/small.img"
    io_fails "io on a too small disk" "vclab.kernel=io vclab.size=1048576" \
        "the disk has 128 sectors but the io region needs 2048"
    # QEMU's blkdebug fails every read with EIO: the device answers VIRTIO_BLK_S_IOERR.
    qemu_extra=(-global virtio-mmio.force-legacy=false -blockdev "driver=raw,node-name=d0,\
file.driver=blkdebug,file.inject-error.0.event=read_aio,file.inject-error.0.errno=5,\
file.image.driver=file,file.image.filename=$work/disk.img" -device virtio-blk-device,drive=d0)
    io_fails "io on a disk that fails reads" "vclab.kernel=io vclab.size=65536" \
        "disk read at sector 0 failed: .*VIRTIO_BLK_S_IOERR"
    # 1,000 bytes/s: the first 60 KiB read never completes in time; the driver gives up after 5 s.
    with_disk "$work/disk.img" ",throttling.bps-total=1000"
    io_fails "io on a stalled disk times out" "vclab.kernel=io vclab.size=65536 $tsc_khz" \
        "request not completed within 5000 ms"

    # vclab.exit=N: the result line, then status N.
    expect "vclab.exit=42" 128 "vclab.kernel=cpu vclab.size=4096 vclab.iterations=1 vclab.exit=42" \
        "$(qemu_status 42)" -q '^{"kernel":"cpu"'

    # ports: reads the unknown ports (all-ones under QEMU), reports them, exits 0.
    expect "vclab.fault=ports" 128 "vclab.fault=ports" "$(qemu_status 0)" \
        -qxF '{"fault":"ports","read":[255,255,255,255,255,255,255,255,255]}'

    # mmio: reads and writes a word every 2 MiB above RAM up to 4 GiB, reports, exits 0 (under
    # QEMU some of those pages hold its own devices, so only the line's start is checked).
    expect "vclab.fault=mmio" 128 "vclab.fault=mmio" "$(qemu_status 0)" \
        -q '^{"fault":"mmio","from":134217728,"pages":1984,'

    # triple: a CPU reset without any exit status (with -no-reboot QEMU ends with 0).
    expect "vclab.fault=triple" 128 "vclab.fault=triple" 0 -qx '{"ready":true}'

    if [ -n "${VCLAB_BIN:-}" ]; then
        vm_run "vclab.fault=triple"
        if [ "$status" -eq 121 ] && grep -q '"exit_reason":"triple-fault"' "$work/out.lf"; then
            pass "vclab vm run vclab.fault=triple"
        else
            fail "vclab vm run vclab.fault=triple: status $status, want 121; $(tail -c 400 "$work/out.lf")"
        fi
    fi

    # Lab device hidden: ready and result lines on the serial console, then the reset (status 0).
    if [ -n "${VCLAB_BIN:-}" ]; then
        local cmdline="vclab.kernel=cpu vclab.size=4096 vclab.iterations=1"
        status=0
        timeout -k 2 60 "$VCLAB_BIN" vm run --kernel "$work/guest.elf" --cmdline "$cmdline" \
            --lab-device off --console stdout --json --timeout 50 </dev/null \
            >"$work/out.lf" 2>"$work/err" || status=$?
        if [ "$status" -eq 0 ] && [ "$(head -n 1 "$work/out.lf")" = '{"ready":true}' ] &&
            [ "$(result_of "$work/out.lf")" = "$(result_of <("$host_workload" run cpu --size 4096 \
                --iterations 1))" ] && grep -q '"exit_reason":"reset"' "$work/out.lf"; then
            pass "vclab vm run --lab-device off $cmdline"
        else
            fail "vclab vm run --lab-device off: status $status; $(tail -c 600 "$work/out.lf")"
        fi
    fi

    # hang and idle: ready, then still running when the timeout (124) ends QEMU.
    for mode in "vclab.fault=hang" "vclab.kernel=idle"; do
        boot 3 128 "$mode"
        if [ "$status" -eq 124 ] && [ "$(cat "$work/out.lf")" = '{"ready":true}' ]; then
            pass "$mode"
        else
            fail "$mode: QEMU status $status, want 124 (still running); output: $(cat "$work/out.lf")"
        fi
    done

    # Bad input and too little RAM: an error line and status 2.
    expect "vclab.kernel=gpu is refused" 128 "vclab.kernel=gpu" "$(qemu_status 2)" \
        -q '^vclab-unikernel: error: .*vclab.kernel=gpu'
    expect "64 MiB scratch in a 48 MiB VM is refused" 48 \
        "vclab.kernel=mem-bw vclab.size=67108864 vclab.iterations=1" "$(qemu_status 2)" \
        -q '^vclab-unikernel: error: the run needs'

    if [ "$failures" -ne 0 ]; then
        echo "test.sh: $failures check(s) failed" >&2
        exit 1
    fi
    echo "test.sh: all checks passed" >&2
}

main "$@"
