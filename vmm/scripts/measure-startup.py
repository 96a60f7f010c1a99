#!/usr/bin/env python3
"""Spawn -> guest ready of `vclab-vmm --json` (or `vclab vm run --json`), n runs.

Usage: measure-startup.py VMM KERNEL [N] [-- extra VMM args]
VMM is the `vclab-vmm` binary, or `vclab` (then `vm run` is added).
Takes CLOCK_MONOTONIC before each spawn and puts the report's guest_ready_ns
on the same clock with its origin_monotonic_ns. Prints median (min-max) of
spawn -> first guest instruction, spawn -> guest ready, spawn -> exit, and
the VMM's peak RSS and non-guest PSS.
"""
import json
import statistics
import subprocess
import sys
import time


def main():
    args = sys.argv[1:]
    extra = []
    if "--" in args:
        i = args.index("--")
        args, extra = args[:i], args[i + 1:]
    vmm, kernel = args[0], args[1]
    prefix = [vmm, "vm", "run"] if vmm.endswith("/vclab") or vmm == "vclab" else [vmm]
    n = int(args[2]) if len(args) > 2 else 10
    rows = []
    for _ in range(n):
        t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        p = subprocess.run([*prefix, "--kernel", kernel, "--json", *extra],
                           capture_output=True, text=True)
        t_end = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        r = json.loads(p.stdout.strip().splitlines()[-1])
        o = r["origin_monotonic_ns"] - t0
        rows.append({
            "spawn_to_main_ms": o / 1e6,
            "first_run_ms": (o + r["first_run_ns"]) / 1e6,
            "ready_ms": (o + r["guest_ready_ns"]) / 1e6,
            "exit_ms": (t_end - t0) / 1e6,
            "peak_rss_mib": r["vmm_peak_rss_kib"] / 1024,
            "pss_mib": r["vmm_pss_kib"] / 1024,
        })
    for key in rows[0]:
        v = [row[key] for row in rows]
        print(f"{key}: median {statistics.median(v):.2f} (min {min(v):.2f} - max {max(v):.2f}), n={n}")


if __name__ == "__main__":
    main()
