//! One slot of one level: an append-only list of timer references in insertion order.
//!
//! Cancelling a timer frees its storage at once but leaves its reference here as a tombstone;
//! the reference carries the stamp the timer had when it was placed, so a tombstone never
//! matches a later timer in the same storage entry. Tombstones are dropped when the slot is
//! cascaded or fired, when its last live timer leaves (`clear`), and when a push would grow
//! a list that is at least half tombstones (`compact`). That keeps cancel to one write in the
//! timer's own entry and this slot's header, and keeps every list within twice its live count
//! at the time it last grew.

/// A reference from a slot to a timer: the storage index and the placement stamp.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct SlotEntry {
    pub(crate) index: u32,
    pub(crate) stamp: u32,
}

/// A slot's list and the counts that let cancel and `next_deadline` avoid walking it.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    /// References in insertion order; those before `head` have been consumed.
    pub(crate) entries: Vec<SlotEntry>,
    /// First unconsumed reference (only level 0 consumes one at a time).
    pub(crate) head: u32,
    /// References in `entries[head..]` whose timer is still placed here.
    pub(crate) live: u32,
    /// Smallest effective deadline placed here since the slot was last empty, in ticks, and
    /// the reference that brought it. Exact while that reference is live; a lower bound after.
    pub(crate) earliest: u64,
    pub(crate) earliest_entry: Option<SlotEntry>,
}

impl Slot {
    pub(crate) fn push(&mut self, entry: SlotEntry, deadline: u64) {
        self.entries.push(entry);
        self.live += 1;
        if self.earliest_entry.is_none() || deadline < self.earliest {
            self.earliest = deadline;
            self.earliest_entry = Some(entry);
        }
    }

    /// Whether the next push would reallocate a list that is at least half tombstones.
    #[inline]
    pub(crate) fn should_compact(&self) -> bool {
        let len = self.entries.len();
        len == self.entries.capacity() && len >= 8 && (self.live as usize) * 2 <= len
    }

    /// Forgets every reference, keeping the allocation.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.head = 0;
        self.live = 0;
        self.earliest_entry = None;
    }
}
