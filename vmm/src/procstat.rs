//! The VMM's own memory cost, read from /proc/self: peak RSS (VmHWM) and the
//! PSS of every mapping except guest RAM (which is demand-paged and belongs
//! to the guest, not to the VMM).

/// Memory figures of this process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemStats {
    /// VmHWM, KiB.
    pub peak_rss_kib: Option<u64>,
    /// Sum of Pss outside guest RAM, KiB.
    pub pss_kib: Option<u64>,
    /// Sum of Rss inside guest RAM, KiB.
    pub guest_rss_kib: Option<u64>,
}

/// The number after `key` when `line` starts with it (`"VmHWM:  3072 kB"`,
/// `"VmHWM:"` → 3072).
fn value_after(line: &str, key: &str) -> Option<u64> {
    line.strip_prefix(key)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The number on the `key` line of a /proc file such as /proc/PID/status or
/// /proc/meminfo (`key` includes the colon).
pub fn field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| value_after(l, key))
}

/// VmHWM (KiB) from the text of /proc/PID/status.
pub fn parse_vmhwm(status: &str) -> Option<u64> {
    field(status, "VmHWM:")
}

/// (Pss outside `guest`, Rss inside `guest`) in KiB from the text of
/// /proc/PID/smaps; `guest` holds host address ranges [start, end).
pub fn parse_smaps(smaps: &str, guest: &[(u64, u64)]) -> (u64, u64) {
    let mut in_guest = false;
    let (mut pss, mut guest_rss) = (0u64, 0u64);
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if let Some((start, end)) = first.split_once('-') {
            if let (Ok(s), Ok(e)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16)) {
                in_guest = guest.iter().any(|&(gs, ge)| s < ge && gs < e);
                continue;
            }
        }
        if in_guest {
            guest_rss += value_after(line, "Rss:").unwrap_or(0);
        } else {
            pss += value_after(line, "Pss:").unwrap_or(0);
        }
    }
    (pss, guest_rss)
}

/// Reads this process's figures; `guest` holds the guest RAM host ranges.
pub fn read(guest: &[(u64, u64)]) -> MemStats {
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| parse_vmhwm(&s));
    let smaps = std::fs::read_to_string("/proc/self/smaps").ok();
    let (pss, guest_rss) = smaps
        .map(|s| parse_smaps(&s, guest))
        .map_or((None, None), |(p, g)| (Some(p), Some(g)));
    MemStats {
        peak_rss_kib: peak,
        pss_kib: pss,
        guest_rss_kib: guest_rss,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmhwm() {
        assert_eq!(
            parse_vmhwm("Name: x\nVmHWM:\t    3072 kB\nVmRSS: 1 kB\n"),
            Some(3072)
        );
        assert_eq!(parse_vmhwm("Name: x\n"), None);
    }

    #[test]
    fn smaps_excludes_guest() {
        let text = "\
55d0-55e0 r-xp 00000000 08:01 1 /bin/x
Rss:                  40 kB
Pss:                  20 kB
7f00000000-7f08000000 rw-p 00000000 00:00 0
Rss:                 512 kB
Pss:                 512 kB
7fff0000-7fff1000 rw-p 00000000 00:00 0 [stack]
Rss:                   8 kB
Pss:                   8 kB
";
        assert_eq!(
            parse_smaps(text, &[(0x7f_0000_0000, 0x7f_0800_0000)]),
            (28, 512)
        );
        assert_eq!(parse_smaps(text, &[]), (540, 0));
    }

    #[test]
    fn reads_self() {
        let s = read(&[]);
        assert!(s.peak_rss_kib.unwrap() > 0);
        assert!(s.pss_kib.unwrap() > 0);
    }
}
