//! A global allocator that aborts on any single allocation larger than
//! [`MAX_ALLOC`], so an input that makes the gateway allocate without bound
//! fails in every build: libFuzzer's own `-malloc_limit_mb` only works
//! through a sanitizer's malloc hooks, which `--sanitizer none` lacks.
//! (`-rss_limit_mb` covers memory that grows in many small allocations.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;

/// The same bound as the Makefile's `-malloc_limit_mb=256`.
pub const MAX_ALLOC: usize = 256 << 20;

pub struct Guard;

fn check(size: usize) {
    if size > MAX_ALLOC {
        // Writing to stderr allocates nothing.
        let _ = std::io::stderr()
            .write_all(b"\n==fuzz== allocation larger than 256 MiB (unbounded memory): aborting\n");
        std::process::abort();
    }
}

// SAFETY: forwards every call unchanged to the system allocator.
unsafe impl GlobalAlloc for Guard {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        System.realloc(ptr, layout, new_size)
    }
}
