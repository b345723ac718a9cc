//! A vector stored in fixed-size segments, so that growing it never copies what it holds.
//!
//! Timer storage grows to millions of entries. A `Vec` that doubles copies everything it holds
//! at each growth (about as much again as its final size, in total) and leaves up to half of
//! its capacity unused; one that grows by a quarter wastes less but copies four times its final
//! size, and each copy lands on fresh pages the kernel must fault in. A `SegVec` grows a whole
//! segment of [`SEGMENT`] elements at a time, made in place by its owner (the slab links a new
//! segment's entries into its free list as it makes them), and never moves one: unused
//! capacity is at most one segment.
//!
//! A segment is a fixed-size array, so an element's offset within its segment is in bounds by
//! its type and an access checks only the segment number: one bounds check instead of two. An
//! access costs one more dependent load than a `Vec`'s, of a segment pointer that stays in
//! cache: at 10^6 elements there are under a thousand of them.

use std::ops::{Index, IndexMut};

/// Elements per segment, as a power of two.
const SEGMENT_BITS: u32 = 10;

/// Elements per segment.
pub(crate) const SEGMENT: usize = 1 << SEGMENT_BITS;

/// A growable array of `E`, grown a segment at a time, that never moves its elements.
pub(crate) struct SegVec<E> {
    segments: Vec<Box<[E; SEGMENT]>>,
}

impl<E> SegVec<E> {
    pub(crate) const fn new() -> Self {
        SegVec {
            segments: Vec::new(),
        }
    }

    /// Elements held: a whole number of segments.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.segments.len() * SEGMENT
    }

    /// Appends a segment whose element at index `i` (counted from the start of the vector) is
    /// `make(i)`.
    #[cold]
    pub(crate) fn push_segment(&mut self, mut make: impl FnMut(usize) -> E) {
        let first = self.len();
        let mut elements = Vec::with_capacity(SEGMENT);
        elements.extend((first..first + SEGMENT).map(&mut make));
        match elements.into_boxed_slice().try_into() {
            Ok(segment) => self.segments.push(segment),
            Err(_) => unreachable!("a segment of {SEGMENT} elements"),
        }
    }

    /// Keeps the first `len` elements (a whole number of segments) and frees the rest.
    pub(crate) fn truncate(&mut self, len: usize) {
        debug_assert!(len % SEGMENT == 0 && len <= self.len());
        self.segments.truncate(len / SEGMENT);
        self.segments.shrink_to_fit();
    }

    /// The element at `index`, if there is one.
    #[inline]
    pub(crate) fn get(&self, index: usize) -> Option<&E> {
        let segment = self.segments.get(index >> SEGMENT_BITS)?;
        Some(&segment[index & (SEGMENT - 1)])
    }

    /// The element at `index`, if there is one.
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

    #[test]
    fn indexes_across_segments() {
        let mut vec = SegVec::new();
        for _ in 0..3 {
            vec.push_segment(|i| i);
        }
        assert_eq!(vec.len(), 3 * SEGMENT);
        for at in [0, 1, SEGMENT - 1, SEGMENT, 2 * SEGMENT + 7, 3 * SEGMENT - 1] {
            assert_eq!(vec[at], at);
            assert_eq!(vec.get(at), Some(&at));
        }
        assert_eq!(vec.get(3 * SEGMENT), None);
        assert_eq!(vec.get(usize::MAX), None);
        vec[SEGMENT] = 0;
        *vec.get_mut(SEGMENT + 1).unwrap() = 0;
        assert_eq!((vec[SEGMENT], vec[SEGMENT + 1]), (0, 0));
        assert_eq!(vec.get_mut(3 * SEGMENT), None);
    }

    #[test]
    fn growth_never_moves_a_segment() {
        let mut vec = SegVec::new();
        vec.push_segment(|i| i);
        let first = vec.get(0).unwrap() as *const usize;
        for _ in 0..4 {
            vec.push_segment(|i| i);
        }
        assert_eq!(vec.get(0).unwrap() as *const usize, first);
        vec.truncate(2 * SEGMENT);
        assert_eq!(vec.len(), 2 * SEGMENT);
        assert_eq!(vec.get(0).unwrap() as *const usize, first);
        assert_eq!(vec.get(2 * SEGMENT), None);
    }
}
