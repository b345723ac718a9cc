//! A vector stored in fixed-size segments, so that growing it never copies what it holds.
//!
//! Timer storage grows to millions of entries. A `Vec` that doubles copies everything it holds
//! at each growth (about as much again as its final size, in total) and leaves up to half of
//! its capacity unused; one that grows by a quarter wastes less but copies four times its final
//! size, and each copy lands on fresh pages the kernel must fault in. A `SegVec` keeps its
//! elements in segments of [`SEGMENT`] elements: a new segment is allocated at full size when
//! the last one fills, and nothing is ever moved. Only the first segment grows like a `Vec` (a
//! wheel with three timers does not need a segment of 1024), so copies are bounded by one
//! segment and unused capacity by one segment too. Replacing the quarter-growth `Vec` made
//! `fire` at 10^4 timers about 10 % faster and cut 4-7 bytes per timer at 10^5 and 10^6.
//!
//! An access costs one more dependent load than a `Vec`'s, of a segment header that stays in
//! cache: at 10^6 elements there are under a thousand of them.

use std::ops::{Index, IndexMut};

/// Elements per segment, as a power of two.
const SEGMENT_BITS: u32 = 10;

/// Elements per segment.
pub(crate) const SEGMENT: usize = 1 << SEGMENT_BITS;

/// A growable array of `E` that never moves its elements once pushed.
pub(crate) struct SegVec<E> {
    /// Every segment before the one holding element `len - 1` is full.
    segments: Vec<Vec<E>>,
    len: usize,
}

impl<E> SegVec<E> {
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

    /// Elements it can hold without allocating.
    pub(crate) fn capacity(&self) -> usize {
        match self.segments.split_last() {
            None => 0,
            Some((last, full)) => full.len() * SEGMENT + last.capacity(),
        }
    }

    /// Makes room for `additional` more elements.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let wanted = self.len.saturating_add(additional);
        if self.capacity() >= wanted {
            return;
        }
        if self.segments.is_empty() {
            self.segments.push(Vec::new());
        }
        if self.segments.len() == 1 {
            let first = &mut self.segments[0];
            first.reserve_exact(wanted.min(SEGMENT) - first.len());
        }
        while self.capacity() < wanted {
            self.segments.push(Vec::with_capacity(SEGMENT));
        }
    }

    /// Appends `element` at index `len()`.
    #[inline]
    pub(crate) fn push(&mut self, element: E) {
        match self.segments.get_mut(self.len >> SEGMENT_BITS) {
            Some(last) if last.len() < last.capacity() => last.push(element),
            _ => self.push_slow(element),
        }
        self.len += 1;
    }

    /// Pushes into a new segment, or into a first segment that must grow.
    #[cold]
    fn push_slow(&mut self, element: E) {
        let segment = self.len >> SEGMENT_BITS;
        if segment == self.segments.len() {
            self.segments.push(if segment == 0 {
                Vec::new()
            } else {
                Vec::with_capacity(SEGMENT)
            });
        }
        let last = &mut self.segments[segment];
        if last.len() == last.capacity() {
            // Only the first segment grows: double it, up to a whole segment.
            let room = last.len().max(4).min(SEGMENT - last.len());
            last.reserve_exact(room);
        }
        last.push(element);
    }

    /// The element at `index`, if there is one.
    #[inline]
    pub(crate) fn get(&self, index: usize) -> Option<&E> {
        self.segments
            .get(index >> SEGMENT_BITS)?
            .get(index & (SEGMENT - 1))
    }

    /// The element at `index`, if there is one.
    #[inline]
    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut E> {
        self.segments
            .get_mut(index >> SEGMENT_BITS)?
            .get_mut(index & (SEGMENT - 1))
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
        for at in 0..3 * SEGMENT + 5 {
            vec.push(at);
        }
        assert_eq!(vec.len(), 3 * SEGMENT + 5);
        for at in [0, 1, SEGMENT - 1, SEGMENT, 2 * SEGMENT + 7, 3 * SEGMENT + 4] {
            assert_eq!(vec[at], at);
            assert_eq!(vec.get(at), Some(&at));
        }
        assert_eq!(vec.get(3 * SEGMENT + 5), None);
        assert_eq!(vec.get(usize::MAX), None);
        vec[SEGMENT] = 0;
        *vec.get_mut(SEGMENT + 1).unwrap() = 0;
        assert_eq!((vec[SEGMENT], vec[SEGMENT + 1]), (0, 0));
    }

    #[test]
    fn growth_never_moves_a_full_segment() {
        let mut vec = SegVec::new();
        for at in 0..SEGMENT {
            vec.push(at);
        }
        let first = vec.get(0).unwrap() as *const usize;
        for at in SEGMENT..4 * SEGMENT {
            vec.push(at);
        }
        assert_eq!(vec.get(0).unwrap() as *const usize, first);
        // Unused capacity is at most the last segment's.
        assert!(vec.capacity() - vec.len() < SEGMENT);
    }

    #[test]
    fn small_vectors_stay_small() {
        let mut vec = SegVec::new();
        vec.push(1u64);
        assert!(vec.capacity() < 16, "capacity {}", vec.capacity());
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
            for at in 0..additional {
                vec.push(at);
            }
            assert_eq!(vec.capacity(), capacity, "{len} + {additional}");
        }
    }
}
