//! The allocator the `dkv-node` binary links (the library never picks one
//! for the program linking it): mimalloc, asked for a plain block whenever
//! the layout allows.
//!
//! The `mimalloc` crate's `GlobalAlloc` sends every request through
//! `mi_malloc_aligned`, even for an alignment of 1 or 8. mimalloc serves
//! that from its fast path only while the size class's free list has a
//! block at hand; when the list is empty it falls back to over-allocating
//! (size plus alignment, from another size class) for any size that is not
//! a power of two. On a node that was about one allocation in four, at
//! ~210 instructions each (benches/README.md, 2026-12-03, night).
//!
//! Every mimalloc block is aligned to at least a word: block sizes are
//! whole words, and each page's first block is 16-byte aligned. So a
//! layout aligned to a word or less takes `mi_malloc`, which always has
//! its fast path, and only larger alignments go to `mi_malloc_aligned`.
//! The choice depends on the layout alone, so a block is always resized
//! by the function family that made it; `mi_free` frees either.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// The alignment every mimalloc block has, whatever its size.
const BLOCK_ALIGN: usize = std::mem::size_of::<usize>();

/// mimalloc, without the aligned path for layouts that do not need it.
pub struct NodeAllocator;

// SAFETY: each method forwards to the mimalloc function that meets the
// layout's alignment (see the module doc), and mimalloc returns null when
// it cannot allocate, as `GlobalAlloc` requires.
unsafe impl GlobalAlloc for NodeAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain C allocation calls; any size is accepted.
        unsafe {
            if layout.align() <= BLOCK_ALIGN {
                mi::mi_malloc(layout.size()).cast()
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        unsafe {
            if layout.align() <= BLOCK_ALIGN {
                mi::mi_zalloc(layout.size()).cast()
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator, so from mimalloc.
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from the same family this layout picks, and
        // mimalloc keeps the contents up to the smaller size.
        unsafe {
            if layout.align() <= BLOCK_ALIGN {
                mi::mi_realloc(ptr.cast(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes around every small size class and past the small-object
    /// limit, and every alignment from a byte to a page.
    fn layouts() -> impl Iterator<Item = Layout> {
        let sizes = (1..=300).chain([511, 512, 513, 1023, 1024, 1025, 4095, 4097, 70_000]);
        sizes.flat_map(|size| {
            (0..=12).filter_map(move |shift| Layout::from_size_align(size, 1 << shift).ok())
        })
    }

    #[test]
    fn every_block_meets_its_layout_and_keeps_its_bytes_when_resized() {
        let a = NodeAllocator;
        for layout in layouts() {
            // Several at once, so some come from a fresh page and some
            // from a list that ran dry.
            let blocks: Vec<*mut u8> = (0..4)
                .map(|i| {
                    // SAFETY: the layout's size is not zero.
                    let p = unsafe { a.alloc(layout) };
                    assert!(!p.is_null(), "{layout:?}");
                    assert_eq!(p as usize % layout.align(), 0, "{layout:?}");
                    // SAFETY: the block holds `size` bytes.
                    unsafe { p.write_bytes(i as u8 + 1, layout.size()) };
                    p
                })
                .collect();
            for (i, p) in blocks.into_iter().enumerate() {
                let grown = layout.size() * 2 + 7;
                // SAFETY: `p` came from `alloc` with `layout`.
                let q = unsafe { a.realloc(p, layout, grown) };
                assert!(!q.is_null());
                assert_eq!(q as usize % layout.align(), 0, "{layout:?} grown");
                // SAFETY: the first `size` bytes were kept.
                let kept = unsafe { std::slice::from_raw_parts(q, layout.size()) };
                assert!(kept.iter().all(|&b| b == i as u8 + 1), "{layout:?}");
                let layout_grown = Layout::from_size_align(grown, layout.align()).unwrap();
                // SAFETY: `q` holds `grown` bytes under that layout.
                unsafe { a.dealloc(q, layout_grown) };
            }
        }
    }

    #[test]
    fn zeroed_blocks_are_zero_and_aligned() {
        let a = NodeAllocator;
        for layout in layouts() {
            // SAFETY: the layout's size is not zero.
            let p = unsafe { a.alloc_zeroed(layout) };
            assert!(!p.is_null());
            assert_eq!(p as usize % layout.align(), 0, "{layout:?}");
            // SAFETY: the block holds `size` initialised bytes.
            let bytes = unsafe { std::slice::from_raw_parts(p, layout.size()) };
            assert!(bytes.iter().all(|&b| b == 0), "{layout:?}");
            // SAFETY: `p` came from `alloc_zeroed` with `layout`.
            unsafe { a.dealloc(p, layout) };
        }
    }
}
