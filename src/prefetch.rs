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

/// Asks the kernel to back `slice`'s memory with huge pages (2 MiB) where
/// it can, and to fault them in on a thread of their own, before the memory
/// is first touched; a hint that changes nothing else.
///
/// The counters of `engine::dense_count` are one array per query, a byte
/// per profile and count, written in no order of profile and under a lock:
/// at 30 counts over 1 M profiles a run took 18 000 page faults, each
/// zeroing 4 KiB while the lock was held. Huge pages fault 512 times less
/// often, and the thread takes most of the zeroing off the counting tasks'
/// path (`docs/benchmarks.md`, session 22: 25–55 % fewer faults).
pub(crate) fn huge_pages<T>(slice: &[T]) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = slice.as_ptr() as usize;
        let end = start + std::mem::size_of_val(slice);
        let (lo, hi) = (start.next_multiple_of(HUGE), end / HUGE * HUGE);
        if hi <= lo {
            return;
        }
        // SAFETY: `madvise` neither reads nor writes the memory's contents
        // (the pages it faults in read as the zeros they would on first
        // touch), so it is sound while other threads write `slice`, and
        // harmless on a range since freed (it then fails or advises memory
        // nobody reads the contents of through this call).
        let advise = move |advice| unsafe {
            libc::madvise(lo as *mut libc::c_void, hi - lo, advice);
        };
        advise(libc::MADV_HUGEPAGE);
        std::thread::spawn(move || advise(libc::MADV_POPULATE_WRITE));
    }
    #[cfg(not(target_os = "linux"))]
    let _ = slice;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The advice changes no contents: memory advised and being faulted in
    /// by the thread reads as zeros, and what is written stays written.
    #[test]
    fn huge_pages_keep_the_contents() {
        let mut v = vec![0u8; 9 << 20];
        huge_pages(&v);
        for i in (0..v.len()).step_by(4093) {
            v[i] = (i % 251) as u8 + 1;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        for (i, &b) in v.iter().enumerate() {
            let want = if i % 4093 == 0 {
                (i % 251) as u8 + 1
            } else {
                0
            };
            assert_eq!(b, want, "{i}");
        }
        // Too small for a huge page, or empty: nothing to advise.
        huge_pages(&[0u64; 3]);
        huge_pages::<u8>(&[]);
    }
}
