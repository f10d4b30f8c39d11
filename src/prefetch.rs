//! Asking the processor for memory before it is needed.
//!
//! The counting of `engine::dense_count` and the grouping of
//! `plan::sequence` write to arrays indexed by profile, larger than a cache,
//! in the order the events come: by time, so in no order of profile. Each
//! write would wait for its line from memory; asking for the line of the
//! row [`AHEAD`] rows on keeps that many misses in flight instead of one.

/// How many rows ahead a loop asks for the memory it will write.
pub(crate) const AHEAD: usize = 16;

/// Asks the processor to bring `slice[i]`'s cache line closer, if there is
/// such an element; a hint that changes nothing else.
#[inline]
pub(crate) fn prefetch<T>(slice: &[T], i: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(p) = slice.get(i) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch neither faults nor reads or writes memory, and
        // `p` is a valid reference besides.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(p).cast()) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (slice, i);
}
