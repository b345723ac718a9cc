//! Timer storage: a vector of entries threaded by a free list, addressed by generation-checked
//! keys. This is the only place a [`TimerKey`] is minted.
//!
//! A key is `{ index: u32, generation: NonZeroU32 }`. Freeing an entry bumps its generation, so
//! a key whose timer has fired or been cancelled never matches again. An entry whose generation
//! would wrap past `u32::MAX` is retired instead of being reused: after 2^32 - 1 timers have
//! lived in one entry it costs its bytes forever, and no stale key can ever alias a new timer.

use std::fmt;
use std::num::NonZeroU32;

use crate::segvec::{Blank, SegVec};

/// Identifies one timer in a [`TimerWheel`](crate::TimerWheel).
///
/// Keys are cheap to copy and compare. A key stays valid while its timer is pending, including
/// across [`reschedule`](crate::TimerWheel::reschedule); once the timer fires or is cancelled
/// the key is stale forever: every operation on it does nothing and returns `None` or `false`,
/// even after the timer's storage is reused. `Option<TimerKey>` is the same size as `TimerKey`.
/// A key does not record which wheel made it: use it only with that wheel.
///
/// ```
/// use tierwheel::TimerWheel;
///
/// let mut wheel = TimerWheel::new();
/// let key = wheel.insert_at(5, ());
/// assert_eq!(wheel.deadline(key), Some(5));
/// wheel.cancel(key);
/// let reused = wheel.insert_at(5, ());
/// assert_ne!(key, reused);
/// assert_eq!(wheel.deadline(key), None);
/// assert_eq!(std::mem::size_of::<Option<tierwheel::TimerKey>>(), 8);
/// ```
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct TimerKey {
    index: u32,
    generation: NonZeroU32,
}

impl TimerKey {
    /// Position of the timer's entry in storage.
    pub(crate) fn index(self) -> u32 {
        self.index
    }
}

impl fmt::Debug for TimerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimerKey({}v{})", self.index, self.generation)
    }
}

/// Storage is full: the wheel holds as many timers as it can.
///
/// Returned by [`TimerWheel::try_insert_at`](crate::TimerWheel::try_insert_at) and
/// [`TimerWheel::try_insert_after`](crate::TimerWheel::try_insert_after) when
/// [`MAX_PENDING`](crate::MAX_PENDING) timers are pending (or entries have been retired by
/// generation wrap so none is left).
///
/// ```
/// let err = tierwheel::CapacityError;
/// assert_eq!(
///     err.to_string(),
///     "tierwheel: no free timer slot (MAX_PENDING = 2^31 - 2^16 timers pending)"
/// );
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct CapacityError;

impl fmt::Display for CapacityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tierwheel: no free timer slot (MAX_PENDING = 2^31 - 2^16 timers pending)")
    }
}

impl std::error::Error for CapacityError {}

/// End of the free list.
const NONE: u32 = u32::MAX;

/// The most timers a wheel holds at once: 2^31 - 2^16 (2,147,418,112).
///
/// Every pending timer's storage entry holds the location of its slot reference in 32 bits, and
/// with the tombstones that cancels leave (at most one per live reference, plus 64 per slot) a
/// wheel holds up to two references per timer: this limit keeps every location below 2^32. A
/// wheel that full takes about 60 GB.
///
/// ```
/// assert_eq!(tierwheel::MAX_PENDING, (1 << 31) - (1 << 16));
/// ```
pub const MAX_PENDING: u32 = (1 << 31) - (1 << 16);

/// Largest number of entries.
const MAX_ENTRIES: u32 = MAX_PENDING;

enum Entry<V> {
    /// `tag` is the owner's: the wheel keeps the location of the timer's slot reference
    /// there, in what would otherwise be padding.
    Occupied {
        generation: NonZeroU32,
        tag: u32,
        value: V,
    },
    /// `generation` is the one the next occupant gets. `next` links the free list; a retired
    /// entry (generation exhausted) is vacant but on no list.
    Vacant { generation: NonZeroU32, next: u32 },
}

impl<V> Blank for Entry<V> {
    /// An entry never used: on no free list yet; `insert_at_next` takes it by its index.
    fn blank() -> Self {
        Entry::Vacant {
            generation: NonZeroU32::MIN,
            next: NONE,
        }
    }
}

/// Bytes one storage entry takes for a value of type `V`.
#[cfg(test)]
pub(crate) const fn entry_bytes<V>() -> usize {
    std::mem::size_of::<Entry<V>>()
}

/// Generation-checked storage of timers.
pub(crate) struct Slab<V> {
    entries: SegVec<Entry<V>>,
    /// Head of the free list (`NONE` when empty); most recently freed first, so a cancel
    /// followed by an insert reuses the entry that is already in cache.
    free: u32,
    len: usize,
    /// Entries that may ever be used; `MAX_ENTRIES` except in tests of the full case.
    max_entries: u32,
}

impl<V> Slab<V> {
    pub(crate) const fn new() -> Self {
        Slab {
            entries: SegVec::new(),
            free: NONE,
            len: 0,
            max_entries: MAX_ENTRIES,
        }
    }

    /// A slab that refuses more than `max_entries` entries, to test the full path without
    /// allocating 2^32 of them.
    #[cfg(test)]
    pub(crate) fn with_max_entries(max_entries: u32) -> Self {
        Slab {
            max_entries,
            ..Self::new()
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn capacity(&self) -> usize {
        self.entries.capacity()
    }

    pub(crate) fn reserve(&mut self, additional: usize) {
        let free_listed = self.entries.len().saturating_sub(self.len);
        self.entries.reserve(additional.saturating_sub(free_listed));
    }

    /// The index the next [`insert_at_next`](Self::insert_at_next) will use, or an error if
    /// storage is full.
    #[inline]
    pub(crate) fn next_index(&self) -> Result<u32, CapacityError> {
        if self.free != NONE {
            return Ok(self.free);
        }
        let index = self.entries.len();
        if index >= self.max_entries as usize {
            return Err(CapacityError);
        }
        Ok(index as u32)
    }

    /// Stores `value`, tagged `tag`, at [`next_index`](Self::next_index), which must have
    /// returned an index.
    #[inline]
    pub(crate) fn insert_at_next(&mut self, value: V, tag: u32) -> TimerKey {
        if self.free != NONE {
            let index = self.free;
            let entry = &mut self.entries[index as usize];
            let Entry::Vacant { generation, next } = *entry else {
                unreachable!("free list points at an occupied entry {index}");
            };
            self.free = next;
            *entry = Entry::Occupied {
                generation,
                tag,
                value,
            };
            self.len += 1;
            return TimerKey { index, generation };
        }
        let index = self.entries.len();
        debug_assert!(
            index < self.max_entries as usize,
            "insert into full storage"
        );
        let generation = NonZeroU32::MIN;
        self.entries.push(Entry::Occupied {
            generation,
            tag,
            value,
        });
        self.len += 1;
        TimerKey {
            index: index as u32,
            generation,
        }
    }

    /// Stores `value`, tagged `tag`, and returns its key.
    #[cfg(test)]
    pub(crate) fn insert(&mut self, value: V, tag: u32) -> Result<TimerKey, CapacityError> {
        self.next_index()?;
        Ok(self.insert_at_next(value, tag))
    }

    #[inline]
    pub(crate) fn get(&self, key: TimerKey) -> Option<&V> {
        match self.entries.get(key.index as usize)? {
            Entry::Occupied {
                generation, value, ..
            } if *generation == key.generation => Some(value),
            _ => None,
        }
    }

    /// The occupant `key` names and its tag, if it is still there.
    #[inline]
    pub(crate) fn get_mut(&mut self, key: TimerKey) -> Option<(&mut u32, &mut V)> {
        match self.entries.get_mut(key.index as usize)? {
            Entry::Occupied {
                generation,
                tag,
                value,
            } if *generation == key.generation => Some((tag, value)),
            _ => None,
        }
    }

    /// The tag of the occupant at `index`, if there is one.
    #[cfg(test)]
    pub(crate) fn tag_at(&self, index: u32) -> Option<u32> {
        match self.entries.get(index as usize)? {
            Entry::Occupied { tag, .. } => Some(*tag),
            Entry::Vacant { .. } => None,
        }
    }

    /// Bytes of the entries made so far, occupied or not.
    #[inline]
    pub(crate) fn bytes(&self) -> usize {
        self.entries.len() * std::mem::size_of::<Entry<V>>()
    }

    /// Starts loading the entry at `index` into the cache, for a read soon after; does
    /// nothing if there is no such entry.
    #[inline(always)]
    pub(crate) fn prefetch(&self, index: u32) {
        if let Some(entry) = self.entries.get(index as usize) {
            crate::prefetch::prefetch(entry);
        }
    }

    /// Sets the tag of the occupant at `index`; does nothing if the entry is vacant.
    #[inline]
    pub(crate) fn set_tag(&mut self, index: u32, to: u32) {
        if let Some(Entry::Occupied { tag, .. }) = self.entries.get_mut(index as usize) {
            *tag = to;
        }
    }

    /// Sets the tag of the occupant at `index`, if any, to what `tag` computes from it: one
    /// lookup where `at` and `set_tag` would make two.
    #[inline]
    pub(crate) fn retag_with(&mut self, index: u32, tag: impl FnOnce(&V) -> u32) {
        if let Some(Entry::Occupied {
            tag: old, value, ..
        }) = self.entries.get_mut(index as usize)
        {
            *old = tag(value);
        }
    }

    /// The occupant at `index`, if any. Indexes come from the wheel's own slot lists, never
    /// from users.
    #[inline]
    pub(crate) fn at(&self, index: u32) -> Option<&V> {
        match self.entries.get(index as usize)? {
            Entry::Occupied { value, .. } => Some(value),
            Entry::Vacant { .. } => None,
        }
    }

    /// Frees the occupant `key` names and returns its tag and value, if it is still there.
    #[inline]
    pub(crate) fn remove(&mut self, key: TimerKey) -> Option<(u32, V)> {
        let tag = match self.entries.get(key.index as usize)? {
            Entry::Occupied {
                generation, tag, ..
            } if *generation == key.generation => *tag,
            _ => return None,
        };
        Some((tag, self.vacate(key.index).1))
    }

    /// Frees the occupied entry at `index` and returns its key and value.
    #[inline]
    pub(crate) fn vacate(&mut self, index: u32) -> (TimerKey, V) {
        let entry = &mut self.entries[index as usize];
        let Entry::Occupied { generation, .. } = *entry else {
            unreachable!("vacate of the vacant entry {index}");
        };
        // A generation that would wrap retires the entry: it never joins the free list again.
        let old = match generation.checked_add(1) {
            Some(next_generation) => {
                let next = self.free;
                self.free = index;
                std::mem::replace(
                    entry,
                    Entry::Vacant {
                        generation: next_generation,
                        next,
                    },
                )
            }
            None => std::mem::replace(
                entry,
                Entry::Vacant {
                    generation,
                    next: NONE,
                },
            ),
        };
        self.len -= 1;
        match old {
            Entry::Occupied { value, .. } => (TimerKey { index, generation }, value),
            Entry::Vacant { .. } => unreachable!(),
        }
    }

    /// Removes every entry, keeping the allocation. Generations continue, so keys minted
    /// before the clear stay stale.
    pub(crate) fn clear(&mut self) {
        for index in 0..self.entries.len() as u32 {
            if matches!(self.entries[index as usize], Entry::Occupied { .. }) {
                drop(self.vacate(index).1);
            }
        }
    }

    /// Sets the generation of a fresh entry, to test wrap-around without 2^32 reuses.
    #[cfg(test)]
    pub(crate) fn force_generation(&mut self, index: u32, to: NonZeroU32) {
        match &mut self.entries[index as usize] {
            Entry::Occupied { generation, .. } | Entry::Vacant { generation, .. } => {
                *generation = to;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuse_bumps_generation() {
        let mut slab = Slab::new();
        let a = slab.insert('a', 0).unwrap();
        assert_eq!(slab.remove(a).map(|(_, value)| value), Some('a'));
        let b = slab.insert('b', 0).unwrap();
        assert_eq!(a.index, b.index);
        assert_ne!(a, b);
        assert_eq!(slab.get(a), None);
        assert_eq!(slab.remove(a).map(|(_, value)| value), None);
        assert_eq!(slab.get(b), Some(&'b'));
        assert_eq!(slab.len(), 1);
    }

    #[test]
    fn generation_wrap_retires_the_entry() {
        let mut slab = Slab::new();
        let a = slab.insert(1, 0).unwrap();
        slab.force_generation(a.index, NonZeroU32::new(u32::MAX - 1).unwrap());
        let a = TimerKey {
            index: a.index,
            generation: NonZeroU32::new(u32::MAX - 1).unwrap(),
        };
        slab.remove(a).unwrap();
        // One more life at generation u32::MAX, then retirement.
        let b = slab.insert(2, 0).unwrap();
        assert_eq!((b.index, b.generation.get()), (a.index, u32::MAX));
        slab.remove(b).unwrap();
        let c = slab.insert(3, 0).unwrap();
        assert_ne!(c.index, a.index, "a retired entry was reused");
        assert_eq!(slab.get(b), None);
        assert_eq!(slab.get(a), None);
    }

    #[test]
    fn full_is_an_error_not_a_panic() {
        let mut slab = Slab::with_max_entries(2);
        let a = slab.insert((), 0).unwrap();
        slab.insert((), 0).unwrap();
        assert_eq!(slab.insert((), 0), Err(CapacityError));
        slab.remove(a);
        assert!(slab.insert((), 0).is_ok());
        assert_eq!(slab.insert((), 0), Err(CapacityError));
    }

    #[test]
    fn foreign_and_out_of_range_keys_are_stale() {
        let mut slab: Slab<u8> = Slab::new();
        let key = TimerKey {
            index: 7,
            generation: NonZeroU32::MIN,
        };
        assert_eq!(slab.get(key), None);
        assert_eq!(slab.remove(key).map(|(_, value)| value), None);
        assert!(slab.at(7).is_none());
    }

    #[test]
    fn tags_follow_the_occupant() {
        let mut slab = Slab::new();
        let a = slab.insert('a', 7).unwrap();
        assert_eq!(slab.tag_at(a.index), Some(7));
        assert_eq!(slab.at(a.index), Some(&'a'));
        slab.set_tag(a.index, 9);
        let (tag, _) = slab.get_mut(a).unwrap();
        assert_eq!(*tag, 9);
        *tag = 11;
        assert_eq!(slab.tag_at(a.index), Some(11));
        slab.remove(a);
        assert_eq!(slab.tag_at(a.index), None, "a vacant entry has no tag");
        assert_eq!(slab.at(a.index), None);
        slab.set_tag(a.index, 3);
        assert_eq!(slab.tag_at(a.index), None);
        assert_eq!(slab.tag_at(1_000), None);
    }

    #[test]
    fn clear_keeps_keys_stale() {
        let mut slab = Slab::new();
        let a = slab.insert(1, 0).unwrap();
        slab.clear();
        assert_eq!(slab.len(), 0);
        let b = slab.insert(2, 0).unwrap();
        assert_eq!(slab.get(a), None);
        assert_eq!(slab.get(b), Some(&2));
    }
}
