//! The seed scripts of `corpus/vmm_exit/`: what the unikernel and a Linux guest do to the
//! device model, and what they must produce there.

use kvm_bindings::{KVM_SYSTEM_EVENT_CRASH, KVM_SYSTEM_EVENT_RESET};
use vclab_vmm::layout::I8042_DATA_PORT;

use crate::exits::{Op, Script, FLAG_HIDE_LABCTL, FLAG_STOP_AT_INIT, FLAG_WATCH};

/// The seed scripts for `corpus/vmm_exit/`: what the unikernel and a Linux guest do.
pub fn seeds() -> Vec<(&'static str, Script)> {
    use vclab_contract::labctl as lab;
    let record = |addr: u32, text: &[u8]| {
        let mut data = u32::try_from(text.len())
            .unwrap_or(0)
            .to_le_bytes()
            .to_vec();
        data.extend_from_slice(text);
        Op::Poke { addr, data }
    };
    let result = br#"{"kernel":"cpu","size":4096,"iterations":1,"seed":1,"checksum":"ab","ops":1,"elapsed_ns":5,"start_monotonic_ns":0,"cpu_ns":0}"#;
    let lab_run = vec![
        Op::In {
            port: lab::READY_PORT,
            len: 1,
        },
        Op::Out {
            port: lab::READY_PORT,
            data: vec![lab::READY_VALUE],
        },
        record(0x8000, br#"{"ready":true}"#),
        Op::Out {
            port: lab::LINE_PORT,
            data: 0x8000u32.to_le_bytes().to_vec(),
        },
        record(0x2_1000, result),
        Op::Out {
            port: lab::LINE_PORT,
            data: 0x2_1000u32.to_le_bytes().to_vec(),
        },
        Op::Out {
            port: lab::EXIT_PORT,
            data: vec![0],
        },
    ];
    let uart_exit = vec![
        Op::In {
            port: lab::READY_PORT,
            len: 1,
        },
        Op::OutString {
            port: lab::COM1_BASE,
            data: b"{\"ready\":true}\n".to_vec(),
        },
        Op::OutString {
            port: lab::COM1_BASE,
            data: [result.as_slice(), b"\n"].concat(),
        },
        Op::Out {
            port: lab::EXIT_PORT,
            data: vec![3],
        },
        Op::Out {
            port: lab::QEMU_DEBUG_EXIT_PORT,
            data: vec![3],
        },
        Op::Out {
            port: lab::CH_ACPI_SHUTDOWN_PORT,
            data: vec![lab::CH_ACPI_S5],
        },
        Op::Out {
            port: lab::I8042_COMMAND_PORT,
            data: vec![lab::I8042_RESET],
        },
    ];
    // 8250 set-up as Linux does it: LCR DLAB, divisor, 8N1, FIFO, MCR, IER; then status reads.
    let mut linux: Vec<Op> = [
        (3, 0x80),
        (0, 1),
        (1, 0),
        (3, 3),
        (2, 0xc7),
        (4, 0x0b),
        (1, 0x0f),
    ]
    .into_iter()
    .map(|(r, v)| Op::Out {
        port: lab::COM1_BASE + r,
        data: vec![v],
    })
    .collect();
    linux.extend((0..8).map(|r| Op::In {
        port: lab::COM1_BASE + r,
        len: 1,
    }));
    linux.extend([
        Op::Out {
            port: 0x80,
            data: vec![0],
        },
        Op::Out {
            port: 0x70,
            data: vec![0x0a],
        },
        Op::In { port: 0x71, len: 1 },
        Op::In { port: 0x61, len: 1 },
        Op::In { port: 0x64, len: 1 },
        Op::OutString {
            port: lab::COM1_BASE,
            data: b"Linux version 6.1\r\nRun /init as init process\n".to_vec(),
        },
        Op::MmioRead {
            addr: 0xfee0_0000,
            len: 4,
        },
        Op::MmioWrite {
            addr: 0xd000_0000,
            data: vec![1, 2, 3, 4],
        },
        Op::Hlt,
    ]);
    let panic = vec![
        Op::OutString {
            port: lab::COM1_BASE,
            data: b"Kernel panic - not syncing: VFS: Unable to mount root fs\n".to_vec(),
        },
        Op::Out {
            port: lab::I8042_COMMAND_PORT,
            data: vec![0xd1],
        },
        Op::Out {
            port: I8042_DATA_PORT,
            data: vec![0xfe],
        },
        Op::Out {
            port: lab::I8042_COMMAND_PORT,
            data: vec![lab::I8042_RESET],
        },
    ];
    let faults = vec![
        record(0x0fff8, b"across the hole"),
        Op::Out {
            port: lab::LINE_PORT,
            data: 0x0fff8u32.to_le_bytes().to_vec(),
        },
        record(0x200, &[]),
        Op::Out {
            port: lab::LINE_PORT,
            data: 0x200u32.to_le_bytes().to_vec(),
        },
        Op::Poke {
            addr: 0x100,
            data: 5000u32.to_le_bytes().to_vec(),
        },
        Op::Out {
            port: lab::LINE_PORT,
            data: 0x100u32.to_le_bytes().to_vec(),
        },
        Op::Out {
            port: lab::LINE_PORT,
            data: vec![1, 2],
        },
        Op::In {
            port: 0x1234,
            len: 4,
        },
        Op::Out {
            port: 0x5a5a,
            data: vec![0x5a],
        },
        Op::InternalError(1),
        Op::FailEntry(7),
        Op::SystemEvent(KVM_SYSTEM_EVENT_RESET),
        Op::SystemEvent(KVM_SYSTEM_EVENT_CRASH),
        Op::Interrupted,
        Op::Other,
        Op::Shutdown,
    ];
    let watch = vec![Op::OutString {
        port: lab::COM1_BASE,
        data: b"guest ready now\nmore\n".to_vec(),
    }];
    vec![
        (
            "lab-device-run",
            Script {
                flags: 0,
                ops: lab_run,
            },
        ),
        (
            "uart-exit-path",
            Script {
                flags: FLAG_HIDE_LABCTL,
                ops: uart_exit,
            },
        ),
        (
            "linux-init-handoff",
            Script {
                flags: FLAG_STOP_AT_INIT,
                ops: linux,
            },
        ),
        (
            "linux-panic-reset",
            Script {
                flags: 0,
                ops: panic,
            },
        ),
        (
            "bad-records-and-fatal-exits",
            Script {
                flags: 0,
                ops: faults,
            },
        ),
        (
            "console-watch",
            Script {
                flags: FLAG_WATCH,
                ops: watch,
            },
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exits::{decode, encode};
    use crate::model::play;
    use std::path::Path;

    #[test]
    fn seeds_round_trip_and_do_what_they_say() {
        for (name, script) in seeds() {
            assert_eq!(decode(&encode(&script)), script, "{name}");
        }
        let s = seeds();
        let run = play(&encode(&s[0].1));
        assert_eq!(
            (run.lines, run.stops),
            (2, 1),
            "ready + result line, exit port"
        );
        let uart = play(&encode(&s[1].1));
        assert_eq!(uart.lines, 0);
        assert_eq!(uart.stops, 1, "only the i8042 reset ends it");
        assert!(uart.console_bytes > 100);
        let linux = play(&encode(&s[2].1));
        assert_eq!(linux.stops, 1, "stops at the init handoff");
        let bad = play(&encode(&s[4].1));
        assert_eq!(bad.lines, 1, "only the empty record is a line");
        assert_eq!(play(&encode(&s[5].1)).stops, 1, "console match");
    }

    /// The tracked seeds are the ones [`seeds`] writes; `VCLAB_WRITE_SEEDS=1` rewrites them.
    #[test]
    fn tracked_seeds_are_current() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/vmm_exit");
        for (name, script) in seeds() {
            let path = dir.join(format!("seed-{name}"));
            let bytes = encode(&script);
            if std::env::var_os("VCLAB_WRITE_SEEDS").is_some() {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &bytes).unwrap();
            }
            let tracked = std::fs::read(&path).unwrap_or_default();
            assert_eq!(
                tracked,
                bytes,
                "{} is stale: run with VCLAB_WRITE_SEEDS=1",
                path.display()
            );
        }
    }
}
