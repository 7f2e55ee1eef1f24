//! glibc allocator settings, for the memory the C libraries (AWS-LC's TLS state) allocate:
//! Rust's allocations go to jemalloc (the binary's global allocator, see `main.rs`).
//!
//! With glibc's defaults, space freed at the top of the heap is trimmed back to the kernel and
//! grown again connection after connection (`sysmalloc` and `malloc_consolidate` at several
//! percent of the worker's time, when glibc served every allocation). Keeping 64 MiB before
//! trimming and growing by 16 MiB at a time removes that churn. Untouched pages of the pad are
//! not resident, so idle memory does not grow.

/// Applies the settings; call once, at start, before any other thread exists.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets glibc allocator parameters; it is called once from `main`
    // before any thread is spawned, so no allocation can run concurrently with it.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TOP_PAD, 16 << 20);
    }
}
