#!/usr/bin/env python3
"""Linux boot phases: `vclab vm run` and QEMU microvm boot the same vmlinux and initramfs.

Usage: linux-boot-phases.py VCLAB [N]
Each round starts both boots together (one vCPU each, so on a 2-core host each gets a core) and
times, from its own spawn on CLOCK_MONOTONIC: the VM built and first guest instruction (vclab's
report), the first console byte and Linux's init handoff ("Run /init as init process"), and the
peak RSS. QEMU is ended once the handoff line appears. On kvm_pvm both get the lab's compatibility
switches; the artifacts come from the guest-images manifest. Prints median (min-max) over N rounds.
"""
import json
import os
import select
import statistics
import subprocess
import sys
import threading
import time

# The cache directory as vclab_vmm::cache::dir names it.
CACHE = (os.environ.get("VCLAB_CACHE")
         or os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "vclab"))
MANIFEST = os.path.join(CACHE, "manifest.json")
HANDOFF = b"Run /init as init process"
PVM_SWITCHES = "noxsave clearcpuid=popcnt,fsgsbase,smap vclab.no_int3_selftest vclab.no_fwait"


def vclab(binary, kernel, initrd):
    t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    p = subprocess.run([binary, "vm", "run", "--kernel", kernel, "--initrd", initrd,
                        "--console", "off", "--timeout", "900", "--json"],
                       capture_output=True, text=True)
    r = json.loads(p.stdout.strip().splitlines()[-1])
    off = r["origin_monotonic_ns"] - t0
    ph = {k: (r[k + "_ns"] + off) / 1e9 if r.get(k + "_ns") is not None else None
          for k in ("first_run", "kernel_start", "init_handoff")}
    ph["rss_mib"] = r["vmm_peak_rss_kib"] / 1024
    return ph


def qemu(kernel, initrd):
    cmdline = "console=ttyS0 reboot=t panic=1"
    if os.path.exists("/sys/module/kvm_pvm"):
        cmdline += " " + PVM_SWITCHES
    t0 = time.monotonic()
    p = subprocess.Popen(["qemu-system-x86_64", "-M", "microvm,x-option-roms=off,rtc=off",
                          "-enable-kvm", "-cpu", "host,-arch-capabilities", "-m", "128", "-smp", "1",
                          "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
                          "-serial", "stdio", "-kernel", kernel, "-initrd", initrd,
                          "-append", cmdline],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    ph = {"first_run": None, "kernel_start": None, "init_handoff": None, "rss_mib": None}
    seen = b""
    deadline = t0 + 900
    while time.monotonic() < deadline:
        ready, _, _ = select.select([p.stdout], [], [], 1)
        if not ready:
            continue
        chunk = os.read(p.stdout.fileno(), 4096)
        if not chunk:
            break
        now = time.monotonic() - t0
        if ph["kernel_start"] is None:
            ph["kernel_start"] = now
        seen = seen[-256:] + chunk
        if HANDOFF in seen:
            ph["init_handoff"] = now
            break
    try:
        with open(f"/proc/{p.pid}/status") as f:
            hwm = [line for line in f if line.startswith("VmHWM")][0]
        ph["rss_mib"] = int(hwm.split()[1]) / 1024
    except (OSError, IndexError):
        pass
    p.kill()
    p.wait()
    return ph


def summary(values, scale=1.0, unit="s"):
    xs = [v * scale for v in values if v is not None]
    if not xs:
        return "-"
    return f"{statistics.median(xs):.1f} {unit} ({min(xs):.1f}-{max(xs):.1f}), n={len(xs)}"


def main():
    binary = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with open(MANIFEST) as f:
        art = json.load(f)["artifacts"]
    kernel, initrd = art["vmlinux"]["path"], art["initramfs"]["path"]
    runs = {"vclab": [], "qemu": []}
    for i in range(rounds):
        out = {}
        jobs = [threading.Thread(target=lambda: out.__setitem__("vclab", vclab(binary, kernel, initrd))),
                threading.Thread(target=lambda: out.__setitem__("qemu", qemu(kernel, initrd)))]
        for j in jobs:
            j.start()
        for j in jobs:
            j.join()
        for name in runs:
            runs[name].append(out[name])
            print(name, i, out[name], flush=True)
    for name, rows in runs.items():
        print(f"{name}: first instruction {summary([r['first_run'] for r in rows], 1e3, 'ms')}; "
              f"first console byte {summary([r['kernel_start'] for r in rows])}; "
              f"init handoff {summary([r['init_handoff'] for r in rows])}; "
              f"peak RSS {summary([r['rss_mib'] for r in rows], unit='MiB')}")


if __name__ == "__main__":
    main()
