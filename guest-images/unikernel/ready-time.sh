#!/usr/bin/env bash
# Measures spawn -> {"ready":true} on the serial console of QEMU microvm (PVH, KVM), idle mode.
# Usage: ready-time.sh [RUNS]   (default 10; builds the guest first; prints median, min-max in ms)
# Env: CARGO_TARGET_DIR, VCLAB_QEMU_CPU (see test.sh).
set -eu -o pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
runs="${1:-10}"
work="$(mktemp -d /tmp/vclab-unikernel-ready.XXXXXX)"
trap 'rm -rf "$work"' EXIT
"$here/build.sh" "$work/guest.elf"

python3 - "$work/guest.elf" "$runs" "${VCLAB_QEMU_CPU:-host,-arch-capabilities}" <<'PY'
import statistics, subprocess, sys, time

elf, runs, cpu = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cmd = ["qemu-system-x86_64", "-M", "microvm,x-option-roms=off,rtc=off", "-enable-kvm",
       "-cpu", cpu, "-m", "128", "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
       "-serial", "stdio", "-device", "isa-debug-exit", "-kernel", elf,
       "-append", "vclab.kernel=idle"]
samples = []
for _ in range(runs):
    start = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    try:
        line = p.stdout.readline()
        ms = (time.monotonic() - start) * 1000
        if line.strip() != b'{"ready":true}':
            sys.exit(f"ready-time.sh: unexpected first line {line!r}")
        samples.append(ms)
    finally:
        p.kill()
        p.wait()
print(f"QEMU microvm spawn -> ready line: n={len(samples)} median {statistics.median(samples):.1f} ms "
      f"(min {min(samples):.1f}, max {max(samples):.1f})")
PY
