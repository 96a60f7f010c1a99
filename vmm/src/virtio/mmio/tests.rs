//! The transport's registers, negotiation, queue set-up, reset and odd accesses, against a
//! fake device.

use super::*;
use crate::virtio::test_utils::*;
use std::sync::{Arc, Mutex};
use virtio_queue::mock::MockSplitQueue;
use vm_memory::GuestAddress;

/// What the fake device saw.
#[derive(Default)]
struct Seen {
    activations: Vec<(u64, Vec<bool>)>,
    processed: Vec<usize>,
    resets: usize,
    config_writes: usize,
}

/// A device with two queues of 16 and 8 entries and a 4-byte config space.
struct Fake {
    seen: Arc<Mutex<Seen>>,
}

const FAKE_FEATURES: u64 = VIRTIO_F_VERSION_1 | 0b101;

impl VirtioDevice for Fake {
    fn device_type(&self) -> u32 {
        42
    }
    fn features(&self) -> u64 {
        FAKE_FEATURES
    }
    fn queue_max_sizes(&self) -> &[u16] {
        &[16, 8]
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let cfg = [0xa0u8, 0xa1, 0xa2, 0xa3];
        for (i, b) in data.iter_mut().enumerate() {
            *b = cfg.get(offset as usize + i).copied().unwrap_or(0);
        }
    }
    fn write_config(&mut self, _offset: u64, _data: &[u8]) -> bool {
        self.seen.lock().unwrap().config_writes += 1;
        true
    }
    fn activate(&mut self, acked: u64, ready: &[bool]) -> Result<(), crate::virtio::Error> {
        self.seen
            .lock()
            .unwrap()
            .activations
            .push((acked, ready.to_vec()));
        Ok(())
    }
    fn process_queue(&mut self, index: usize, _q: &mut Queue, _m: &GuestMemoryMmap) -> bool {
        self.seen.lock().unwrap().processed.push(index);
        true
    }
    fn reset(&mut self) {
        self.seen.lock().unwrap().resets += 1;
    }
}

fn transport() -> (MmioTransport, Arc<Mutex<Seen>>, GuestMemoryMmap) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mem = memory(0x10000);
    let fake = Fake { seen: seen.clone() };
    (
        MmioTransport::new(mem.clone(), Box::new(fake)).unwrap(),
        seen,
        mem,
    )
}

#[test]
fn the_register_map_identifies_the_device() {
    let (mut t, _, _) = transport();
    assert_eq!(read32(&mut t, reg::MAGIC_VALUE), 0x7472_6976);
    assert_eq!(read32(&mut t, reg::VERSION), 2);
    assert_eq!(read32(&mut t, reg::DEVICE_ID), 42);
    assert_eq!(read32(&mut t, reg::VENDOR_ID), VENDOR_ID);
    write32(&mut t, reg::DEVICE_FEATURES_SEL, 0);
    assert_eq!(read32(&mut t, reg::DEVICE_FEATURES), 0b101);
    write32(&mut t, reg::DEVICE_FEATURES_SEL, 1);
    assert_eq!(read32(&mut t, reg::DEVICE_FEATURES), 1);
    write32(&mut t, reg::DEVICE_FEATURES_SEL, 7);
    assert_eq!(read32(&mut t, reg::DEVICE_FEATURES), 0);
    for (sel, max) in [(0, 16), (1, 8), (2, 0)] {
        write32(&mut t, reg::QUEUE_SEL, sel);
        assert_eq!(read32(&mut t, reg::QUEUE_NUM_MAX), max, "queue {sel}");
    }
    let mut cfg = [0u8; 2];
    t.read(reg::CONFIG + 1, &mut cfg);
    assert_eq!(cfg, [0xa1, 0xa2]);
    assert_eq!(read32(&mut t, reg::SHM_LEN_LOW), u32::MAX);
    assert_eq!(t.ignored().total(), 0);
}

#[test]
fn features_are_negotiated_and_masked() {
    let (mut t, _, _) = transport();
    // Not yet DRIVER: refused.
    write32(&mut t, reg::DRIVER_FEATURES, 1);
    assert_eq!(t.acked_features(), 0);
    assert_eq!(t.ignored().wrong_state, 1);
    // Bits the device does not offer are dropped.
    write32(&mut t, reg::STATUS, status::ACKNOWLEDGE);
    write32(&mut t, reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
    write32(&mut t, reg::DRIVER_FEATURES_SEL, 0);
    write32(&mut t, reg::DRIVER_FEATURES, 0xffff_ffff);
    write32(&mut t, reg::DRIVER_FEATURES_SEL, 1);
    write32(&mut t, reg::DRIVER_FEATURES, 0xffff_ffff);
    assert_eq!(t.acked_features(), FAKE_FEATURES);
    let ok = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
    write32(&mut t, reg::STATUS, ok);
    assert_eq!(read32(&mut t, reg::STATUS), ok);
    // Frozen after FEATURES_OK.
    write32(&mut t, reg::DRIVER_FEATURES, 0);
    assert_eq!(t.acked_features(), FAKE_FEATURES);
}

#[test]
fn features_ok_without_version_1_is_refused() {
    let (mut t, _, _) = transport();
    write32(&mut t, reg::STATUS, status::ACKNOWLEDGE);
    write32(&mut t, reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
    write32(&mut t, reg::DRIVER_FEATURES_SEL, 0);
    write32(&mut t, reg::DRIVER_FEATURES, 0b101);
    write32(
        &mut t,
        reg::STATUS,
        status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
    );
    assert_eq!(read32(&mut t, reg::STATUS) & status::FEATURES_OK, 0);
    assert_eq!(t.ignored().refused, 1);
    // Nor can DRIVER_OK follow.
    driver_ok(&mut t);
    assert!(!t.is_activated());
}

#[test]
fn queues_are_set_up_validated_and_activated() {
    let (mut t, seen, mem) = transport();
    // Queue registers before FEATURES_OK are ignored.
    write32(&mut t, reg::QUEUE_NUM, 16);
    assert_eq!(t.ignored().wrong_state, 1);
    negotiate(&mut t);
    // Sizes that are not a power of two, or over the maximum, are refused.
    write32(&mut t, reg::QUEUE_SEL, 0);
    write32(&mut t, reg::QUEUE_NUM, 12);
    write32(&mut t, reg::QUEUE_NUM, 32);
    write32(&mut t, reg::QUEUE_NUM, 0x1_0000);
    assert_eq!(t.ignored().refused, 3);
    // Rings outside guest memory neither.
    let far = MockSplitQueue::create(&mem, GuestAddress(0), 16);
    write32(&mut t, reg::QUEUE_NUM, 16);
    write32(&mut t, reg::QUEUE_DESC_HIGH, 1);
    write32(&mut t, reg::QUEUE_READY, 1);
    assert_eq!(read32(&mut t, reg::QUEUE_READY), 0);
    setup_queue(&mut t, 0, &far, 16);
    assert_eq!(read32(&mut t, reg::QUEUE_READY), 1);
    // A ready queue's layout is fixed.
    let before = t.ignored().wrong_state;
    write32(&mut t, reg::QUEUE_NUM, 8);
    assert_eq!(t.ignored().wrong_state, before + 1);
    // A queue that does not exist.
    write32(&mut t, reg::QUEUE_SEL, 9);
    write32(&mut t, reg::QUEUE_NUM, 8);
    assert_eq!(t.ignored().wrong_state, before + 2);

    assert!(!t.process_queue(0), "not active before DRIVER_OK");
    driver_ok(&mut t);
    assert!(t.is_activated());
    assert_eq!(
        seen.lock().unwrap().activations,
        vec![(FAKE_FEATURES, vec![true, false])]
    );
    assert!(t.process_queue(0));
    assert!(!t.process_queue(1), "queue 1 is not ready");
    assert_eq!(seen.lock().unwrap().processed, vec![0]);
    assert_eq!(t.irq_event().read().unwrap(), 1);
    assert_eq!(
        read32(&mut t, reg::INTERRUPT_STATUS),
        interrupt::USED_BUFFER
    );
    write32(&mut t, reg::INTERRUPT_ACK, interrupt::USED_BUFFER);
    assert_eq!(read32(&mut t, reg::INTERRUPT_STATUS), 0);
    // Queue registers after DRIVER_OK are ignored.
    write32(&mut t, reg::QUEUE_SEL, 1);
    write32(&mut t, reg::QUEUE_READY, 1);
    assert_eq!(read32(&mut t, reg::QUEUE_READY), 0);
}

#[test]
fn a_reset_mid_operation_clears_everything_and_the_device_starts_again() {
    let (mut t, seen, mem) = transport();
    let mock = MockSplitQueue::create(&mem, GuestAddress(0x1000), 16);
    negotiate(&mut t);
    setup_queue(&mut t, 0, &mock, 16);
    driver_ok(&mut t);
    assert!(t.process_queue(0));
    write32(&mut t, reg::STATUS, 0);
    assert_eq!(read32(&mut t, reg::STATUS), 0);
    assert_eq!(t.acked_features(), 0);
    assert!(!t.is_activated());
    assert_eq!(read32(&mut t, reg::INTERRUPT_STATUS), 0);
    write32(&mut t, reg::QUEUE_SEL, 0);
    assert_eq!(read32(&mut t, reg::QUEUE_READY), 0);
    assert_eq!(seen.lock().unwrap().resets, 1);
    assert!(!t.process_queue(0));
    // Set up again from scratch: the same eventfds, a working device.
    negotiate(&mut t);
    setup_queue(&mut t, 0, &mock, 16);
    driver_ok(&mut t);
    assert!(t.is_activated());
    assert!(t.process_queue(0));
    assert_eq!(seen.lock().unwrap().activations.len(), 2);
}

#[test]
fn status_steps_cannot_be_skipped_or_undone() {
    let (mut t, _, _) = transport();
    write32(&mut t, reg::STATUS, status::DRIVER_OK);
    assert_eq!(read32(&mut t, reg::STATUS), 0);
    write32(&mut t, reg::STATUS, status::ACKNOWLEDGE);
    write32(&mut t, reg::STATUS, status::ACKNOWLEDGE | status::DRIVER_OK);
    assert_eq!(read32(&mut t, reg::STATUS), status::ACKNOWLEDGE);
    write32(&mut t, reg::STATUS, status::DRIVER);
    assert_eq!(read32(&mut t, reg::STATUS), status::ACKNOWLEDGE);
    assert_eq!(t.ignored().wrong_state, 3);
    write32(&mut t, reg::STATUS, status::ACKNOWLEDGE | status::FAILED);
    assert_eq!(
        read32(&mut t, reg::STATUS),
        status::ACKNOWLEDGE | status::FAILED
    );
}

#[test]
fn activation_without_a_ready_queue_sets_needs_reset() {
    struct Picky;
    impl VirtioDevice for Picky {
        fn device_type(&self) -> u32 {
            1
        }
        fn features(&self) -> u64 {
            VIRTIO_F_VERSION_1
        }
        fn queue_max_sizes(&self) -> &[u16] {
            &[4]
        }
        fn read_config(&self, _: u64, _: &mut [u8]) {}
        fn write_config(&mut self, _: u64, _: &[u8]) -> bool {
            false
        }
        fn activate(&mut self, _: u64, ready: &[bool]) -> Result<(), crate::virtio::Error> {
            match ready[0] {
                true => Ok(()),
                false => Err(crate::virtio::Error::QueueNotReady {
                    device_type: 1,
                    queue: 0,
                }),
            }
        }
        fn process_queue(&mut self, _: usize, _: &mut Queue, _: &GuestMemoryMmap) -> bool {
            false
        }
        fn reset(&mut self) {}
    }
    let mut t = MmioTransport::new(memory(0x1000), Box::new(Picky)).unwrap();
    negotiate(&mut t);
    driver_ok(&mut t);
    assert!(!t.is_activated());
    assert_ne!(read32(&mut t, reg::STATUS) & status::DEVICE_NEEDS_RESET, 0);
    assert_eq!(read32(&mut t, reg::STATUS) & status::DRIVER_OK, 0);
}

#[test]
fn wrong_widths_and_offsets_are_ignored_and_counted() {
    let (mut t, _, _) = transport();
    let mut one = [0xffu8; 1];
    t.read(reg::MAGIC_VALUE, &mut one);
    assert_eq!(one, [0]);
    let mut eight = [0xffu8; 8];
    t.read(reg::MAGIC_VALUE, &mut eight);
    assert_eq!(eight, [0; 8]);
    let mut four = [0xffu8; 4];
    t.read(reg::MAGIC_VALUE + 2, &mut four);
    assert_eq!(four, [0; 4]);
    t.read(0x0f0, &mut four);
    t.read(reg::CONFIG, &mut []);
    let mut three = [0u8; 3];
    t.read(reg::CONFIG, &mut three);
    assert_eq!(t.ignored().bad_access, 6);
    // Far into the config space: zeros, not an error.
    t.read(u64::MAX - 1, &mut four);
    assert_eq!((four, t.ignored().bad_access), ([0; 4], 6));
    // A 2-byte Status write does nothing.
    t.write(reg::STATUS, &[1, 0]);
    t.write(reg::STATUS, &[]);
    assert_eq!(read32(&mut t, reg::STATUS), 0);
    // A write to a read-only register, a read of a write-only one.
    write32(&mut t, reg::MAGIC_VALUE, 0);
    read32(&mut t, reg::QUEUE_NOTIFY);
    assert_eq!(t.ignored().wrong_direction, 2);
    assert_eq!(read32(&mut t, reg::MAGIC_VALUE), MAGIC_VALUE);
    assert_eq!(t.ignored().bad_access, 8);
}

#[test]
fn a_notify_that_reaches_the_vcpu_signals_the_queue_eventfd() {
    let (mut t, _, _) = transport();
    write32(&mut t, reg::QUEUE_NOTIFY, 1);
    assert_eq!(t.queue_events()[1].read().unwrap(), 1);
    assert!(
        t.queue_events()[0].read().is_err(),
        "queue 0 was not notified"
    );
    write32(&mut t, reg::QUEUE_NOTIFY, 2);
    assert_eq!(t.ignored().wrong_state, 1);
}

#[test]
fn config_changes_bump_the_generation_and_interrupt() {
    let (mut t, seen, _) = transport();
    t.write(reg::CONFIG, &[1]);
    assert_eq!(seen.lock().unwrap().config_writes, 1);
    t.signal_config_change();
    assert_eq!(read32(&mut t, reg::CONFIG_GENERATION), 1);
    assert_eq!(
        read32(&mut t, reg::INTERRUPT_STATUS),
        interrupt::CONFIG_CHANGE
    );
    assert_eq!(t.irq_event().read().unwrap(), 1);
}
