//! CLOCK_MONOTONIC and this thread's CPU time in nanoseconds (std's `Instant` cannot show its raw
//! value, which the JSON line reports as `start_monotonic_ns`).

/// Nanoseconds on CLOCK_MONOTONIC; 0 if the clock cannot be read (never on Linux).
pub fn monotonic_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC)
}

/// This thread's CPU time (CLOCK_THREAD_CPUTIME_ID), nanoseconds; 0 if it cannot be read.
pub fn thread_cpu_ns() -> u64 {
    read(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn read(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; both clocks are always supported on Linux.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return 0;
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}
