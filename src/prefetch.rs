//! The crate's only `unsafe` code: a hint to the processor to start loading a cache line that
//! will be read soon.
//!
//! The wheel knows which timers it will touch next long before it touches them: a run (a coarse
//! slot sorted for bulk expiry) knows the timers after its head, and a cascade, or a slot
//! becoming a run, reads its references a chunk at a time before it reads their timers'
//! deadlines. Each of those timers' storage entries can be a cache miss. Started early, the
//! misses overlap instead of stalling one after another. Firing from a run prefetches eight
//! timers ahead at every size; cascades and runs being filled prefetch a chunk ahead once
//! storage passes 1 MiB (docs/design.md, "Why is there one `unsafe` block?"); below that the
//! entries are in cache and the hints cost more instructions than they save.
//!
//! A plain load cannot do this in safe code: an unused load still holds its place in the
//! processor's reorder buffer until the line arrives, so it stalls as much as the real read.
//! The prefetch instruction retires at once. Stable Rust offers it only as the intrinsic
//! `_mm_prefetch`, which is an `unsafe fn` because of its `target_feature` attribute, not
//! because of anything it does to memory.

/// Asks the processor to bring the cache line holding `value` closer; a no-op where the
/// instruction is not available.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    // SAFETY: `_mm_prefetch` is unsafe only because it is declared with
    // `#[target_feature(enable = "sse")]`, and the `cfg` above compiles this call only when the
    // build's target has SSE (every x86_64 target does). The instruction never faults and has
    // no effect on memory that a program can observe: it is a hint, valid for any address.
    // The pointer here comes from a reference, so it is valid and aligned anyway.
    #[allow(unsafe_code)]
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(value).cast::<i8>());
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
    let _ = value;
}

#[cfg(test)]
mod tests {
    use super::prefetch;

    #[test]
    fn prefetch_changes_nothing() {
        let values = vec![1_u64, 2, 3];
        for value in &values {
            prefetch(value);
        }
        prefetch(&());
        assert_eq!(values, [1, 2, 3]);
    }
}
