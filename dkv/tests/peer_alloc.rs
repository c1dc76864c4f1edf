//! The peer decoders check lengths before they allocate: a length prefix
//! over the limit, or a field length that runs past its frame, costs no
//! allocation of that size. Measured with a global allocator that records
//! the largest allocation made on the test's own thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use dkv::peer::{
    decode_envelope, decode_hello, encode_envelope, frame_type, Envelope, FrameError, Message,
    RequestId, SharedWrite, DEFAULT_MAX_FRAME, LEN_PREFIX,
};
use dkv::{EntryRef, NodeId, Timestamp, Version};

struct Tracking;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: the allocator also runs while thread-locals are torn down.
    let _ = TRACKING.try_with(|on| {
        if on.get() {
            let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
        }
    });
}

// SAFETY: every call forwards to `System` with the caller's arguments.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// Runs `f`; returns its result and the largest allocation it made.
fn largest_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.with(|largest| largest.set(0));
    TRACKING.with(|on| on.set(true));
    let result = f();
    TRACKING.with(|on| on.set(false));
    (result, LARGEST.with(Cell::get))
}

#[test]
fn peer_oversize_prefix_allocates_nothing() {
    let huge = u32::MAX.to_le_bytes();
    let (result, largest) = largest_allocation(|| decode_envelope(&huge, DEFAULT_MAX_FRAME));
    assert!(matches!(result, Err(FrameError::TooLarge { .. })));
    assert_eq!(largest, 0);
    let (result, largest) = largest_allocation(|| decode_hello(&huge, 64 << 10));
    assert!(matches!(result, Err(FrameError::TooLarge { .. })));
    assert_eq!(largest, 0);

    // Within a (silly) limit, a 4 GiB frame just waits for its bytes.
    let mut head = huge.to_vec();
    head.push(frame_type::REPLICATE);
    let (result, largest) = largest_allocation(|| decode_envelope(&head, usize::MAX));
    assert_eq!(result, Ok(None));
    assert_eq!(largest, 0);
}

#[test]
fn peer_lying_field_lengths_allocate_nothing_that_size() {
    // A Replicate whose key length claims almost 4 GiB inside a 41-byte frame.
    let mut frame = vec![0; 4];
    frame.push(frame_type::REPLICATE);
    frame.extend_from_slice(&1u32.to_le_bytes()); // from
    frame.extend_from_slice(&7u64.to_le_bytes()); // clock
    frame.extend_from_slice(&9u64.to_le_bytes()); // request
    frame.extend_from_slice(&0xffff_fff0u32.to_le_bytes()); // key length
    frame.extend_from_slice(&[0; 16]);
    let len = (frame.len() - 4) as u32;
    frame[..4].copy_from_slice(&len.to_le_bytes());
    let (result, largest) = largest_allocation(|| decode_envelope(&frame, DEFAULT_MAX_FRAME));
    assert_eq!(result, Err(FrameError::Truncated { field: "key" }));
    assert_eq!(largest, 0);
}

#[test]
fn peer_decoding_allocates_what_the_frame_holds() {
    let value_len = 1 << 20;
    let value = vec![0xab; value_len];
    let envelope = Envelope {
        from: NodeId(1),
        clock: Timestamp(7),
        message: Message::Replicate {
            request: RequestId(9),
            write: SharedWrite::new(
                b"key",
                EntryRef::value(Version::new(Timestamp(7), NodeId(1)), &value),
            ),
            hint_for: None,
        },
    };
    let mut wire = Vec::new();
    encode_envelope(&envelope, &mut wire).unwrap();
    let (result, largest) = largest_allocation(|| decode_envelope(&wire, DEFAULT_MAX_FRAME));
    assert_eq!(result, Ok(Some((envelope, wire.len()))));
    // One copy of the frame's bytes from the key to the value (with its
    // reference counts): at least the value, and no more than the payload.
    let payload = wire.len() - LEN_PREFIX - 1;
    assert!(
        (value_len..=payload + 64).contains(&largest),
        "largest allocation {largest}"
    );
}
