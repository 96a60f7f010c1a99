//! A guest's descriptor table, available ring and buffers against the VMM's virtio-blk device
//! behind its virtio-mmio transport, over a small image: it must never panic, touch memory
//! outside the guest's (ASan), read or write outside the image, or loop (libFuzzer's
//! -timeout). The input format is in `src/virtio_blk.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vclab_fuzz::targets::virtio_blk(data));
