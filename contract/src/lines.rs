//! Lines a guest prints that the lab waits for (DESIGN.md, "Workload JSON line").

/// The ready line (no newline): `vclab-workload idle` and the unikernel print it when ready; the
/// unikernel also prints it on the UART when there is no lab control device.
pub const READY_LINE: &str = "{\"ready\":true}";

/// What Linux prints when it hands over to the init of the vclab rootfs (no newline).
pub const INIT_HANDOFF_MARKER: &str = "Run /init as init process";

/// Whether a console line is Linux's init handoff, `Run <path> as init process`, for any init
/// path (`/init` from an initramfs, `/sbin/init` from a disk).
pub fn is_init_handoff(line: &str) -> bool {
    line.find("Run ")
        .and_then(|at| line.get(at..))
        .is_some_and(|rest| rest.contains(" as init process"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_handoff_is_recognised_for_any_init() {
        assert!(is_init_handoff(INIT_HANDOFF_MARKER));
        assert!(is_init_handoff("[    0.51] Run /sbin/init as init process"));
        assert!(!is_init_handoff("as init process, Run "));
        assert!(!is_init_handoff("Run /init"));
    }
}
