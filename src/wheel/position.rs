//! Where a timer lives: level and slot arithmetic over `u64` ticks.
//!
//! A timer due at effective deadline `d` while the wheel is at `now` (`d >= now`) lives on the
//! level of the highest bit in which `d` and `now` differ, in the slot named by `d`'s six bits
//! of that level. So level 0 holds the timers due in `now`'s own 64-tick block, one tick per
//! slot, and level `L` holds those due in a later 64^L-tick block of `now`'s 64^(L+1)-tick block.

/// Bits of the tick consumed by one level.
pub(crate) const SLOT_BITS: u32 = 6;

/// Slots per level, one bit each in a `u64` occupancy map.
pub(crate) const SLOTS: usize = 1 << SLOT_BITS;

/// Levels needed for the highest bit of a `u64` tick (bit 63) to have a level: 11. The top
/// level uses only 16 of its 64 slots, each 2^60 ticks long.
pub(crate) const LEVELS: usize = (u64::BITS as usize).div_ceil(SLOT_BITS as usize);

/// Mask of the slot bits of one level, once shifted down.
const SLOT_MASK: u64 = SLOTS as u64 - 1;

/// The level a timer with effective deadline `deadline` lives on while the wheel is at `now`.
#[inline]
pub(crate) fn level_of(now: u64, deadline: u64) -> usize {
    debug_assert!(deadline >= now, "deadline {deadline} is before now {now}");
    // `| SLOT_MASK` keeps timers of the current block on level 0 without a branch.
    let highest_differing_bit = 63 - ((now ^ deadline) | SLOT_MASK).leading_zeros();
    (highest_differing_bit / SLOT_BITS) as usize
}

/// The slot of `deadline` on `level`.
#[inline]
pub(crate) fn slot_of(deadline: u64, level: usize) -> usize {
    ((deadline >> (level as u32 * SLOT_BITS)) & SLOT_MASK) as usize
}

/// First tick covered by `slot` of `level` while the wheel is at `now`. The top level's span
/// (2^66 ticks) does not fit in a `u64`, so the bits above it are taken as zero, not shifted.
#[inline]
#[cfg(test)]
pub(crate) fn slot_start(now: u64, level: usize, slot: usize) -> u64 {
    let level_shift = level as u32 * SLOT_BITS;
    let above = match 1u64.checked_shl(level_shift + SLOT_BITS) {
        Some(span) => now & !(span - 1),
        None => 0,
    };
    above | ((slot as u64) << level_shift)
}

/// First tick of the block of `level` that holds `tick`: `tick` with the bits of `level` and
/// every finer level cleared (the 64 slots of a level-`level` block span 64^(level+1) ticks;
/// the top level's block spans the whole time line).
#[inline]
pub(crate) fn block_start(tick: u64, level: usize) -> u64 {
    match 1u64.checked_shl((level as u32 + 1) * SLOT_BITS) {
        Some(span) => tick & !(span - 1),
        None => 0,
    }
}

/// Last tick of the slot of `level` that starts at tick `start`: `start` plus the slot's span
/// of 64^level ticks, minus one. Never overflows: a slot starts at a multiple of its span.
#[inline]
pub(crate) fn slot_end(start: u64, level: usize) -> u64 {
    let span_mask = (1u64 << (level as u32 * SLOT_BITS)) - 1;
    debug_assert_eq!(
        start & span_mask,
        0,
        "{start} does not start a slot of level {level}"
    );
    start | span_mask
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every bit boundary: one below, at, and one above each power of two, plus both ends.
    fn boundaries() -> Vec<u64> {
        let mut ticks = vec![0, 1, u64::MAX - 1, u64::MAX];
        for bit in 0..64 {
            let p = 1u64 << bit;
            ticks.extend([p - 1, p, p.saturating_add(1)]);
        }
        ticks.sort_unstable();
        ticks.dedup();
        ticks
    }

    #[test]
    fn constants_derive_from_each_other() {
        assert_eq!(SLOTS, 64);
        assert_eq!(LEVELS, 11);
        assert!(LEVELS as u32 * SLOT_BITS >= u64::BITS);
        assert!((LEVELS as u32 - 1) * SLOT_BITS < u64::BITS);
    }

    /// The defining property, checked at every boundary pair: `deadline` lies inside its own
    /// slot, that slot starts after `now`'s slot on the level (or is `now`'s tick on level 0),
    /// and the two agree on every bit above the level.
    #[test]
    fn position_contains_the_deadline_at_every_boundary() {
        let ticks = boundaries();
        for &now in &ticks {
            for &deadline in ticks.iter().filter(|&&d| d >= now) {
                let level = level_of(now, deadline);
                let slot = slot_of(deadline, level);
                let start = slot_start(now, level, slot);
                let shift = level as u32 * SLOT_BITS;
                let last = start | ((1u64 << shift) - 1);
                assert!(
                    start <= deadline && deadline <= last,
                    "now {now} deadline {deadline}: level {level} slot {slot} covers {start}..={last}"
                );
                if level == 0 {
                    assert_eq!(start, deadline);
                } else {
                    assert!(slot > slot_of(now, level), "now {now} deadline {deadline}");
                    assert!(start > now, "now {now} deadline {deadline} start {start}");
                }
                if let Some(span) = 1u64.checked_shl(shift + SLOT_BITS) {
                    assert_eq!(now / span, deadline / span, "now {now} deadline {deadline}");
                }
            }
        }
    }

    #[test]
    fn levels_at_the_edges() {
        assert_eq!(level_of(0, 0), 0);
        assert_eq!(level_of(0, 63), 0);
        assert_eq!(level_of(0, 64), 1);
        assert_eq!(level_of(63, 64), 1);
        assert_eq!(level_of(64, 127), 0);
        assert_eq!(level_of(0, 4095), 1);
        assert_eq!(level_of(0, 4096), 2);
        assert_eq!(level_of(0, 1 << 60), 10);
        assert_eq!(level_of(0, u64::MAX), 10);
        assert_eq!(level_of(u64::MAX, u64::MAX), 0);
        assert_eq!(level_of(u64::MAX - 63, u64::MAX), 0);
        assert_eq!(level_of(u64::MAX - 64, u64::MAX), 1);
        assert_eq!(slot_of(u64::MAX, 10), 15);
        assert_eq!(slot_of(u64::MAX, 0), 63);
        // The top level's slots are 2^60 ticks long; its span would be 2^66.
        assert_eq!(slot_start(0, 10, 15), 15 << 60);
        assert_eq!(slot_start(u64::MAX, 10, 1), 1 << 60);
        assert_eq!(slot_start(u64::MAX - 5, 0, 63), u64::MAX);
    }
}
