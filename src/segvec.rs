//! A vector stored in fixed-size segments, so that growing it never copies what it holds.
//!
//! Timer storage grows to millions of entries. A `Vec` that doubles copies everything it holds
//! at each growth (about as much again as its final size, in total) and leaves up to half of
//! its capacity unused; one that grows by a quarter wastes less but copies four times its final
//! size, and each copy lands on fresh pages the kernel must fault in. A `SegVec` keeps its
//! elements in segments of [`SEGMENT`] elements: a new segment is allocated at full size when
//! the last one fills, and nothing is ever moved, so unused capacity is at most one segment.
//! Replacing the quarter-growth `Vec` made `fire` at 10^4 timers about 10 % faster and cut 4-7
//! bytes per timer at 10^5 and 10^6.
//!
//! A segment is a fixed-size array, allocated full of blank elements (for timer storage,
//! vacant entries on no free list). The offset within a segment is then in bounds by its type,
//! so an access checks only the segment number: one bounds check instead of two, which took
//! about 20 instructions off a `timeouts` step at 10^4 timers (from 312) and about 30 at 10^6
//! (from 498), most of them in sweeps, which check one storage entry per reference. The price
//! is that even a wheel with one timer takes a whole segment (24 KB for `u64` timers; the
//! slot headers already take 39 KB), where the first segment used to grow like a `Vec`.
//!
//! An access costs one more dependent load than a `Vec`'s, of a segment pointer that stays in
//! cache: at 10^6 elements there are under a thousand of them.

use std::ops::{Index, IndexMut};

/// Elements per segment, as a power of two.
const SEGMENT_BITS: u32 = 10;

/// Elements per segment.
pub(crate) const SEGMENT: usize = 1 << SEGMENT_BITS;

/// What fills the slots of a segment that nothing has been pushed into yet.
pub(crate) trait Blank {
    /// A placeholder element.
    fn blank() -> Self;
}

/// A growable array of `E` that never moves its elements once pushed.
///
/// Segments are whole arrays, allocated full of [`Blank`] elements: an index's offset in its
/// segment is then in bounds by its type, and an access checks only the segment number.
pub(crate) struct SegVec<E> {
    /// Every segment before the one holding element `len - 1` is full.
    segments: Vec<Box<[E; SEGMENT]>>,
    len: usize,
}

impl<E: Blank> SegVec<E> {
    pub(crate) const fn new() -> Self {
        SegVec {
            segments: Vec::new(),
            len: 0,
        }
    }

    /// Elements pushed.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Elements it can hold without allocating: every index below it can be read, pushed
    /// elements below [`len`](Self::len) and blanks from there.
    pub(crate) fn capacity(&self) -> usize {
        self.segments.len() * SEGMENT
    }

    /// Makes room for `additional` more elements.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let wanted = self.len.saturating_add(additional);
        while self.capacity() < wanted {
            self.add_segment();
        }
    }

    /// Appends `element` at index `len()`.
    #[inline]
    pub(crate) fn push(&mut self, element: E) {
        if self.len == self.capacity() {
            self.add_segment();
        }
        self.segments[self.len >> SEGMENT_BITS][self.len & (SEGMENT - 1)] = element;
        self.len += 1;
    }

    /// Keeps the first `len` elements and the segments holding the first `capacity` (a whole
    /// number of segments, at least `len`); frees the rest. Elements between `len` and
    /// `capacity` keep whatever they held until pushed over.
    pub(crate) fn truncate(&mut self, capacity: usize, len: usize) {
        debug_assert!(len <= capacity && capacity % SEGMENT == 0 && len <= self.len);
        self.segments.truncate(capacity / SEGMENT);
        self.segments.shrink_to_fit();
        self.len = len;
    }

    #[cold]
    fn add_segment(&mut self) {
        let mut blanks = Vec::with_capacity(SEGMENT);
        blanks.resize_with(SEGMENT, E::blank);
        match blanks.into_boxed_slice().try_into() {
            Ok(segment) => self.segments.push(segment),
            Err(_) => unreachable!("a segment of {SEGMENT} elements"),
        }
    }

    /// The element at `index`, if there is one (a blank past `len()`).
    #[inline]
    pub(crate) fn get(&self, index: usize) -> Option<&E> {
        let segment = self.segments.get(index >> SEGMENT_BITS)?;
        Some(&segment[index & (SEGMENT - 1)])
    }

    /// The element at `index`, if there is one (a blank past `len()`).
    #[inline]
    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut E> {
        let segment = self.segments.get_mut(index >> SEGMENT_BITS)?;
        Some(&mut segment[index & (SEGMENT - 1)])
    }
}

impl<E> Index<usize> for SegVec<E> {
    type Output = E;

    #[inline]
    fn index(&self, index: usize) -> &E {
        &self.segments[index >> SEGMENT_BITS][index & (SEGMENT - 1)]
    }
}

impl<E> IndexMut<usize> for SegVec<E> {
    #[inline]
    fn index_mut(&mut self, index: usize) -> &mut E {
        &mut self.segments[index >> SEGMENT_BITS][index & (SEGMENT - 1)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Blank for usize {
        fn blank() -> Self {
            usize::MAX
        }
    }

    #[test]
    fn indexes_across_segments() {
        let mut vec = SegVec::new();
        for at in 0..3 * SEGMENT + 5 {
            vec.push(at);
        }
        assert_eq!(vec.len(), 3 * SEGMENT + 5);
        for at in [0, 1, SEGMENT - 1, SEGMENT, 2 * SEGMENT + 7, 3 * SEGMENT + 4] {
            assert_eq!(vec[at], at);
            assert_eq!(vec.get(at), Some(&at));
        }
        // Past the end: blanks up to the capacity, nothing after.
        assert_eq!(vec.get(3 * SEGMENT + 5), Some(&usize::MAX));
        assert_eq!(vec.get(4 * SEGMENT - 1), Some(&usize::MAX));
        assert_eq!(vec.get(4 * SEGMENT), None);
        assert_eq!(vec.get(usize::MAX), None);
        vec[SEGMENT] = 0;
        *vec.get_mut(SEGMENT + 1).unwrap() = 0;
        assert_eq!((vec[SEGMENT], vec[SEGMENT + 1]), (0, 0));
        assert_eq!(vec.get_mut(4 * SEGMENT), None);
    }

    #[test]
    fn growth_never_moves_a_segment() {
        let mut vec = SegVec::new();
        vec.push(0);
        let first = vec.get(0).unwrap() as *const usize;
        for at in 1..4 * SEGMENT {
            vec.push(at);
        }
        assert_eq!(vec.get(0).unwrap() as *const usize, first);
        assert_eq!(vec.capacity(), 4 * SEGMENT);
        vec.push(0);
        // Unused capacity is at most the last segment's.
        assert_eq!(vec.capacity(), 5 * SEGMENT);
    }

    #[test]
    fn reserve_then_push_does_not_allocate_more() {
        for (len, additional) in [(0, 1), (0, 10), (3, SEGMENT), (0, 3 * SEGMENT + 1)] {
            let mut vec = SegVec::new();
            for at in 0..len {
                vec.push(at);
            }
            vec.reserve(additional);
            let capacity = vec.capacity();
            assert!(
                capacity >= len + additional,
                "{len} + {additional}: {capacity}"
            );
            assert!(
                capacity < len + additional + SEGMENT,
                "{len} + {additional}: {capacity}"
            );
            for at in 0..additional {
                vec.push(at);
            }
            assert_eq!(vec.capacity(), capacity, "{len} + {additional}");
        }
    }
}
