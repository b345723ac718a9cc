//! Timer storage: a vector of entries threaded by a free list, addressed by generation-checked
//! keys. This is the only place a [`TimerKey`] is minted.
//!
//! A key is `{ index: u32, generation: NonZeroU32 }`. Freeing an entry bumps its generation, so
//! a key whose timer has fired or been cancelled never matches again.
//!
//! Besides its key, an occupied entry is named by *references*: the wheel's slots hold
//! `(index, placement)` pairs ([`Ref`]). An entry's placement changes whenever a reference to
//! it may go stale (the entry is freed, or the wheel files the timer elsewhere and leaves the
//! old reference behind), so a reference is live exactly when its placement matches its
//! entry's. Stale references cost nothing to make: nobody writes to them; the wheel drops them
//! when it next reads their slot.
//!
//! An entry whose generation or placement would wrap past `u32::MAX` is retired instead of
//! being reused: after 2^32 - 1 timers (or placements) it costs its bytes forever, and no stale
//! key or reference can ever alias a new timer.

use std::fmt;
use std::num::NonZeroU32;

use crate::segvec::{SegVec, SEGMENT};

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
    #[inline]
    pub(crate) fn index(self) -> u32 {
        self.index
    }

    /// The key as one word, never zero (for an atomic).
    #[inline]
    pub(crate) fn to_bits(self) -> u64 {
        (u64::from(self.generation.get()) << 32) | u64::from(self.index)
    }

    /// The key `to_bits` made; `None` for zero.
    #[inline]
    pub(crate) fn from_bits(bits: u64) -> Option<TimerKey> {
        Some(TimerKey {
            index: bits as u32,
            generation: NonZeroU32::new((bits >> 32) as u32)?,
        })
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
///     "tierwheel: no free timer slot (MAX_PENDING = 2^32 - 2 timers pending)"
/// );
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct CapacityError;

impl fmt::Display for CapacityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tierwheel: no free timer slot (MAX_PENDING = 2^32 - 2 timers pending)")
    }
}

impl std::error::Error for CapacityError {}

/// End of the free list.
const NONE: u32 = u32::MAX;

/// The `next` of a retired entry: on no list, never reused.
const RETIRED: u32 = u32::MAX - 1;

/// The most timers a wheel holds at once: 2^32 - 2 (4,294,967,294), every index a `u32` can
/// name but the two the free list reserves. A wheel that full takes about 200 GB.
///
/// ```
/// assert_eq!(tierwheel::MAX_PENDING, u32::MAX - 1);
/// ```
pub const MAX_PENDING: u32 = RETIRED;

/// What became of a timer, as far as storage remembers: see [`Slab::fate`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    Pending,
    Fired,
    Cancelled,
    /// The entry has had another occupant since, or the key was never minted here.
    Unknown,
}

/// A reference to an entry from one of the wheel's slots: `placement << 32 | index`. Live
/// while the entry is occupied with that placement.
pub(crate) type Ref = u64;

/// The reference to entry `index` at `placement`.
#[inline(always)]
pub(crate) fn make_ref(index: u32, placement: u32) -> Ref {
    (u64::from(placement) << 32) | u64::from(index)
}

/// The entry a reference names.
#[inline(always)]
pub(crate) fn ref_index(r: Ref) -> u32 {
    r as u32
}

/// The placement a reference was made with.
#[inline(always)]
fn ref_placement(r: Ref) -> u32 {
    (r >> 32) as u32
}

struct Entry<V> {
    /// The occupant's key generation; for a vacant entry, the next occupant's.
    generation: NonZeroU32,
    /// References made with another placement are stale. Bumped on every free and on every
    /// [`Slab::replace`].
    placement: u32,
    state: State<V>,
}

enum State<V> {
    /// `filed` is the owner's: where the wheel has filed the timer.
    Occupied { filed: u32, value: V },
    /// `next` links the free list (`NONE` at its end, `RETIRED` if on none); `cancelled` is
    /// how the last occupant left, for [`Slab::fate`].
    Vacant { next: u32, cancelled: bool },
}

/// Bytes one storage entry takes for a value of type `V`.
#[cfg(test)]
pub(crate) const fn entry_bytes<V>() -> usize {
    std::mem::size_of::<Entry<V>>()
}

/// An occupied entry, as [`Slab::get_mut`] and [`Slab::resolve_mut`] hand it out.
pub(crate) struct Occupant<'a, V> {
    /// Where the owner filed it.
    pub(crate) filed: &'a mut u32,
    pub(crate) value: &'a mut V,
}

/// Generation-checked storage of timers.
///
/// Entries come a segment of 1024 at a time, linked into the free list in index order when the
/// segment is made, so every insert takes the same path: the head of the free list.
pub(crate) struct Slab<V> {
    entries: SegVec<Entry<V>>,
    /// Head of the free list (`NONE` when empty); most recently freed first, so a cancel
    /// followed by an insert reuses the entry that is already in cache.
    free: u32,
    len: usize,
    /// Entries that may ever be used; `MAX_PENDING` except in tests of the full case.
    max_entries: u32,
    /// The generation and placement a new entry starts from. Raised when `shrink_to_fit` drops
    /// entries, above everything they had, so that a key or reference to a dropped entry never
    /// matches the entry made later at its index.
    fresh: (NonZeroU32, u32),
}

impl<V> Slab<V> {
    pub(crate) const fn new() -> Self {
        Slab {
            entries: SegVec::new(),
            free: NONE,
            len: 0,
            max_entries: MAX_PENDING,
            fresh: (NonZeroU32::MIN, 0),
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

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn capacity(&self) -> usize {
        self.entries.len().min(self.max_entries as usize)
    }

    /// Makes room for `additional` more occupants without growing.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let wanted = self.len.saturating_add(additional);
        while self.capacity() < wanted && self.grow() {}
    }

    /// Makes a segment of entries, linked into the free list in index order behind what it
    /// holds (the free list is empty when an insert grows storage). Entries past
    /// `max_entries` are retired at once. False if storage is at its limit.
    #[cold]
    #[inline(never)]
    fn grow(&mut self) -> bool {
        let first = self.entries.len();
        if first >= self.max_entries as usize {
            return false;
        }
        let last = (first + SEGMENT).min(self.max_entries as usize) - 1;
        let (generation, placement) = self.fresh;
        let after = self.free;
        self.entries.push_segment(|index| {
            let next = match index {
                _ if index > last => RETIRED,
                _ if index == last => after,
                _ => index as u32 + 1,
            };
            Entry {
                generation,
                placement,
                state: State::Vacant {
                    next,
                    cancelled: false,
                },
            }
        });
        self.free = first as u32;
        true
    }

    /// Stores `value` and returns its key: `file` is told the new occupant's reference first
    /// and answers where it is filed. The free entry is looked up once.
    #[inline(always)]
    pub(crate) fn insert_with(
        &mut self,
        value: V,
        file: impl FnOnce(Ref) -> u32,
    ) -> Result<TimerKey, CapacityError> {
        if self.free == NONE && !self.grow() {
            return Err(CapacityError);
        }
        let index = self.free;
        let entry = &mut self.entries[index as usize];
        let State::Vacant { next, .. } = entry.state else {
            unreachable!("free list points at an occupied entry {index}");
        };
        let filed = file(make_ref(index, entry.placement));
        entry.state = State::Occupied { filed, value };
        self.free = next;
        self.len += 1;
        Ok(TimerKey {
            index,
            generation: entry.generation,
        })
    }

    /// Records where the occupant at `index` is filed.
    #[inline]
    pub(crate) fn set_filed(&mut self, index: u32, to: u32) {
        if let State::Occupied { filed, .. } = &mut self.entries[index as usize].state {
            *filed = to;
        }
    }

    /// Stores `value` and returns its key.
    #[cfg(test)]
    pub(crate) fn insert(&mut self, value: V, filed: u32) -> Result<TimerKey, CapacityError> {
        self.insert_with(value, |_| filed)
    }

    #[inline]
    pub(crate) fn get(&self, key: TimerKey) -> Option<&V> {
        let entry = self.entries.get(key.index as usize)?;
        match &entry.state {
            State::Occupied { value, .. } if entry.generation == key.generation => Some(value),
            _ => None,
        }
    }

    /// The occupant `key` names, if it is still there.
    #[inline]
    pub(crate) fn get_mut(&mut self, key: TimerKey) -> Option<Occupant<'_, V>> {
        let entry = self.entries.get_mut(key.index as usize)?;
        match &mut entry.state {
            State::Occupied { filed, value } if entry.generation == key.generation => {
                Some(Occupant { filed, value })
            }
            _ => None,
        }
    }

    /// The key of the occupant at `index`, if any.
    #[inline]
    pub(crate) fn key_at(&self, index: u32) -> Option<TimerKey> {
        let entry = self.entries.get(index as usize)?;
        match entry.state {
            State::Occupied { .. } => Some(TimerKey {
                index,
                generation: entry.generation,
            }),
            State::Vacant { .. } => None,
        }
    }

    /// The occupant a live reference names; `None` if the reference is stale.
    #[inline(always)]
    pub(crate) fn resolve(&self, r: Ref) -> Option<&V> {
        let entry = self.entries.get(ref_index(r) as usize)?;
        match &entry.state {
            State::Occupied { value, .. } if entry.placement == ref_placement(r) => Some(value),
            _ => None,
        }
    }

    /// The occupant a live reference names, with its filing; `None` if the reference is stale.
    #[inline(always)]
    pub(crate) fn resolve_mut(&mut self, r: Ref) -> Option<Occupant<'_, V>> {
        let entry = self.entries.get_mut(ref_index(r) as usize)?;
        match &mut entry.state {
            State::Occupied { filed, value } if entry.placement == ref_placement(r) => {
                Some(Occupant { filed, value })
            }
            _ => None,
        }
    }

    /// Whether a reference is live.
    #[inline(always)]
    pub(crate) fn is_live(&self, r: Ref) -> bool {
        self.resolve(r).is_some()
    }

    /// Where the occupant at `index` is filed, and its value, if there is one.
    #[inline]
    pub(crate) fn at(&self, index: u32) -> Option<(u32, &V)> {
        match &self.entries.get(index as usize)?.state {
            State::Occupied { filed, value } => Some((*filed, value)),
            State::Vacant { .. } => None,
        }
    }

    /// The live reference to the occupant at `index`, if there is one.
    #[cfg(test)]
    pub(crate) fn live_ref_at(&self, index: u32) -> Option<Ref> {
        let entry = self.entries.get(index as usize)?;
        match entry.state {
            State::Occupied { .. } => Some(make_ref(index, entry.placement)),
            State::Vacant { .. } => None,
        }
    }

    /// Makes every reference to the occupied entry at `index` stale, refiles it at `filed`
    /// and returns its new live reference: the owner moves the timer and leaves the old
    /// reference behind. A placement that would wrap retires the entry when it is freed.
    #[inline]
    pub(crate) fn replace(&mut self, index: u32, filed: u32) -> Ref {
        let entry = &mut self.entries[index as usize];
        // Wrapping here is harmless while the entry is occupied: `vacate` retires an entry
        // whose placement wrapped, so no reference from before the wrap can match a later
        // occupant. It cannot match this one either: its old references were all made at
        // placements this occupant has passed, and 2^32 moves of one timer while a stale
        // reference to it survives would need 2^32 references in one slot.
        entry.placement = entry.placement.wrapping_add(1);
        if let State::Occupied { filed: at, .. } = &mut entry.state {
            *at = filed;
        }
        make_ref(index, entry.placement)
    }

    /// What became of the occupant `key` names: still there, or how it left, if the entry has
    /// had no occupant since.
    pub(crate) fn fate(&self, key: TimerKey) -> Fate {
        let Some(entry) = self.entries.get(key.index as usize) else {
            return Fate::Unknown;
        };
        match entry.state {
            State::Occupied { .. } if entry.generation == key.generation => Fate::Pending,
            // The next generation is the one a vacant entry hands out next (a retired one kept
            // its last).
            State::Vacant { next, cancelled }
                if entry.generation.get().wrapping_sub(key.generation.get())
                    == u32::from(next != RETIRED) =>
            {
                if cancelled {
                    Fate::Cancelled
                } else {
                    Fate::Fired
                }
            }
            _ => Fate::Unknown,
        }
    }

    /// Records that the last occupant of `key`'s entry, taken out by `remove`, is to count as
    /// fired, not cancelled (the scheduler runs callbacks it took out that way).
    pub(crate) fn record_fired(&mut self, key: TimerKey) {
        if self.fate(key) == Fate::Cancelled {
            if let State::Vacant { cancelled, .. } = &mut self.entries[key.index as usize].state {
                *cancelled = false;
            }
        }
    }

    /// Bytes of the entries made so far, occupied or not.
    #[inline]
    pub(crate) fn bytes(&self) -> usize {
        self.entries.len() * std::mem::size_of::<Entry<V>>()
    }

    /// Starts loading the entry a reference names into the cache, for a read soon after; does
    /// nothing if there is no such entry.
    #[inline(always)]
    pub(crate) fn prefetch(&self, r: Ref) {
        if let Some(entry) = self.entries.get(ref_index(r) as usize) {
            crate::prefetch::prefetch(entry);
        }
    }

    /// Frees the occupant `key` names and returns where it was filed and its value, if it is
    /// still there.
    #[inline]
    pub(crate) fn remove(&mut self, key: TimerKey) -> Option<(u32, V)> {
        let entry = self.entries.get_mut(key.index as usize)?;
        let filed = match entry.state {
            State::Occupied { filed, .. } if entry.generation == key.generation => filed,
            _ => return None,
        };
        let value = Self::free_entry(entry, key.index, &mut self.free, true);
        self.len -= 1;
        Some((filed, value))
    }

    /// Makes the occupied `entry` at `index` vacant, on the free list headed by `free` (or
    /// retired), noting whether it was `cancelled`, and returns its value.
    #[inline(always)]
    fn free_entry(entry: &mut Entry<V>, index: u32, free: &mut u32, cancelled: bool) -> V {
        // A generation or placement that would wrap retires the entry: it never joins the
        // free list again.
        let next = match (
            entry.generation.checked_add(1),
            entry.placement.checked_add(1),
        ) {
            (Some(next_generation), Some(next_placement)) => {
                (entry.generation, entry.placement) = (next_generation, next_placement);
                std::mem::replace(free, index)
            }
            _ => {
                // Stale keys and references must not match while the entry sits retired.
                entry.placement = entry.placement.wrapping_add(1);
                RETIRED
            }
        };
        match std::mem::replace(&mut entry.state, State::Vacant { next, cancelled }) {
            State::Occupied { value, .. } => value,
            State::Vacant { .. } => unreachable!("freeing the vacant entry {index}"),
        }
    }

    /// Frees the occupied entry at `index` and returns its key and value.
    #[inline]
    pub(crate) fn vacate(&mut self, index: u32) -> (TimerKey, V) {
        let entry = &mut self.entries[index as usize];
        let generation = entry.generation;
        let value = Self::free_entry(entry, index, &mut self.free, false);
        self.len -= 1;
        (TimerKey { index, generation }, value)
    }

    /// The occupant at `index`, if any: its key and its value, to change.
    pub(crate) fn value_mut_at(&mut self, index: u32) -> Option<(TimerKey, &mut V)> {
        let entry = self.entries.get_mut(index as usize)?;
        let generation = entry.generation;
        match &mut entry.state {
            State::Occupied { value, .. } => Some((TimerKey { index, generation }, value)),
            State::Vacant { .. } => None,
        }
    }

    /// Entries made so far (the bound of the indices `iter` and `value_mut_at` visit).
    pub(crate) fn made(&self) -> u32 {
        self.entries.len() as u32
    }

    /// Removes every entry, keeping the allocation. Generations continue, so keys minted
    /// before the clear stay stale.
    pub(crate) fn clear(&mut self) {
        for index in 0..self.entries.len() as u32 {
            let entry = &mut self.entries[index as usize];
            if matches!(entry.state, State::Occupied { .. }) {
                drop(Self::free_entry(entry, index, &mut self.free, true));
                self.len -= 1;
            }
        }
    }

    /// Gives back the storage past the last occupied or retired entry, whole segments at a
    /// time, and relinks the free list in index order, so later inserts fill the lowest
    /// indices and a later shrink can give back more. Keys stay valid; stale keys stay stale.
    pub(crate) fn shrink_to_fit(&mut self) {
        let made = self.entries.len();
        let keep = (0..made)
            .rev()
            .find(|&index| {
                !matches!(
                    self.entries[index].state,
                    State::Vacant { next, .. } if next != RETIRED
                )
            })
            .map_or(0, |index| index + 1);
        let keep = keep.div_ceil(SEGMENT) * SEGMENT;
        // What the dropped entries had: entries made again later at their indices start above.
        for index in keep..made {
            let entry = &self.entries[index];
            let (generation, placement) = self.fresh;
            let generation = generation.max(entry.generation);
            let placement = placement.max(entry.placement);
            // Both are below u32::MAX: an entry that reached it was retired, and retired
            // entries are kept.
            self.fresh = (
                generation.checked_add(1).unwrap_or(NonZeroU32::MAX),
                placement.saturating_add(1),
            );
        }
        self.entries.truncate(keep);
        let mut free = NONE;
        for index in (0..keep).rev() {
            if let State::Vacant { next, .. } = &mut self.entries[index].state {
                if *next != RETIRED {
                    *next = free;
                    free = index as u32;
                }
            }
        }
        self.free = free;
    }

    /// Sets the generation of an entry, to test wrap-around without 2^32 reuses.
    #[cfg(test)]
    pub(crate) fn force_generation(&mut self, index: u32, to: NonZeroU32) {
        self.entries[index as usize].generation = to;
    }

    /// Sets the placement of an entry, to test wrap-around without 2^32 moves.
    #[cfg(test)]
    pub(crate) fn force_placement(&mut self, index: u32, to: u32) {
        self.entries[index as usize].placement = to;
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
    fn references_go_stale_on_free_and_on_replace() {
        let mut slab = Slab::new();
        let mut first = 0;
        let key = slab.insert_with('a', |r| {
            first = r;
            7
        });
        let key = key.unwrap();
        assert_eq!(slab.resolve(first), Some(&'a'));
        let second = slab.replace(key.index, 9);
        assert_ne!(first, second);
        assert!(!slab.is_live(first));
        assert_eq!(slab.at(key.index).map(|(filed, _)| filed), Some(9));
        assert_eq!(slab.live_ref_at(key.index), Some(second));
        slab.remove(key);
        assert!(!slab.is_live(second));
        // The next occupant of the same entry gets a fresh placement.
        let mut third = 0;
        slab.insert_with('b', |r| {
            third = r;
            0
        })
        .unwrap();
        assert!(!slab.is_live(first) && !slab.is_live(second) && slab.is_live(third));
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
    fn placement_wrap_retires_the_entry() {
        let mut slab = Slab::new();
        let a = slab.insert(1, 0).unwrap();
        slab.force_placement(a.index, u32::MAX);
        let stale = slab.live_ref_at(a.index).unwrap();
        slab.remove(a).unwrap();
        assert!(!slab.is_live(stale));
        let b = slab.insert(2, 0).unwrap();
        assert_ne!(
            b.index, a.index,
            "an entry whose placement wrapped was reused"
        );
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
        assert!(!slab.is_live(make_ref(7, 0)));
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

    #[test]
    fn shrink_gives_back_trailing_segments_and_keeps_keys() {
        let mut slab = Slab::new();
        let keys: Vec<_> = (0..3 * SEGMENT as u32 + 5)
            .map(|i| slab.insert(i, 0).unwrap())
            .collect();
        let stale_ref = slab.live_ref_at(keys[2 * SEGMENT].index).unwrap();
        for &key in &keys[10..] {
            slab.remove(key);
        }
        assert_eq!(slab.capacity(), 4 * SEGMENT);
        slab.shrink_to_fit();
        assert_eq!(slab.capacity(), SEGMENT);
        for (i, &key) in keys.iter().enumerate() {
            assert_eq!(slab.get(key), (i < 10).then_some(&(i as u32)));
        }
        // Indices made again do not revive old keys or references.
        let again: Vec<_> = (0..3 * SEGMENT as u32)
            .map(|i| slab.insert(i, 0).unwrap())
            .collect();
        for &key in &keys[10..] {
            assert_eq!(slab.get(key), None);
        }
        assert!(!slab.is_live(stale_ref));
        // The lowest free indices are used first after a shrink.
        assert_eq!(again[0].index, 10);
    }
}
