//! A plain reference model of `TimerWheel`, and a harness that drives the wheel and the model
//! with the same operations and panics on the first difference.
//!
//! Shared by the property test (`tests/wheel_model.rs`) and the fuzz target
//! (`fuzz/fuzz_targets/wheel_ops.rs`, which includes this file by path). It uses nothing but
//! `std` and the public API, so that both can build it; under `cfg(fuzzing)` the operation
//! types also derive `arbitrary::Arbitrary`.
//!
//! The model is the specification, written as directly as possible: a `BTreeMap` keyed by
//! `(effective deadline, insertion sequence)` is the firing order, a reschedule taking a new
//! sequence number as an insertion does, and a map from timer id to its entry answers
//! `deadline`, `cancel` and `reschedule`. After every operation the harness compares `now()`,
//! `len()`, `is_empty()`, `next_deadline()` and `peek()` (key, deadline, value).
//!
//! Besides reschedules to any tick, the operations move a timer relative to its own deadline:
//! later by a little, past a slot or level boundary, or to the end of time (the wheel leaves
//! such a timer where it is and files it again when time reaches its slot), and earlier within
//! its coarse slot or before it; and they pick the next timer to fire, whose moves and cancels
//! the wheel must answer with an exact `next_deadline()` at once.

use std::collections::{BTreeMap, HashSet};

use tierwheel::{TimerKey, TimerWheel};

/// A tick, described relative to the state it is resolved in, so that operations generated
/// without knowing the wheel's time still land on the interesting values.
#[derive(Clone, Debug)]
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
pub(crate) enum Time {
    /// This exact tick.
    Abs(u64),
    /// `now() + n`, saturating.
    After(u64),
    /// `now() - n`, saturating at 0: the past.
    Before(u64),
    /// `u64::MAX - n`, saturating at 0: the end of time.
    End(u16),
    /// `64^level + offset` (level 11 stands for `2^64`, saturating at `u64::MAX`): an absolute
    /// level boundary, and its neighbours.
    LevelBoundary { level: u8, offset: i8 },
    /// The next multiple of `64^level` above `now()`, plus `offset`: where a slot of that level
    /// starts, seen from the current time.
    SlotBoundary { level: u8, offset: i8 },
    /// The effective deadline of some pending timer (`now()` if none): a tie.
    TieWith(KeyPick),
}

/// Which timer an operation is about.
#[derive(Clone, Debug)]
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
pub(crate) enum KeyPick {
    /// The n-th pending timer (modulo how many there are); any timer if none is pending.
    Live(u16),
    /// The n-th key ever minted (modulo how many there are), pending or stale.
    Any(u16),
    /// The next timer to fire (the key `peek()` gives); any timer if none is pending.
    Next,
}

/// A deadline later than a timer's own (its effective deadline: the deadline asked for, or
/// `now()` if that has passed), never earlier.
#[derive(Clone, Debug)]
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
pub(crate) enum Later {
    /// `n` ticks later, saturating: usually still in the timer's slot.
    By(u16),
    /// `64^level + offset` ticks later (as in `Time::LevelBoundary`): past a slot of that level.
    Span { level: u8, offset: i8 },
    /// The first multiple of `64^level` after the deadline, plus `offset` (but not earlier than
    /// the deadline): just before or after the end of its slot of that level.
    NextSlot { level: u8, offset: i8 },
    /// `u64::MAX - n` (but not earlier than the deadline): the end of time.
    End(u16),
}

/// A deadline earlier than a timer's own (its effective deadline), or the same when there is
/// no room. The *coarse slot* is the one of the level where a timer due then is filed now.
#[derive(Clone, Debug)]
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
pub(crate) enum Earlier {
    /// `n` ticks earlier, saturating at 0 (into the past).
    By(u16),
    /// A tick (picked by `n`) from the start of its coarse slot (or `now()`, if later) up to
    /// just before its deadline: earlier, still inside the slot.
    InSlot(u16),
    /// The same inside its slot of level `level % 10 + 1`, which may start before `now()`.
    InSlotOf { level: u8, n: u16 },
    /// `n + 1` ticks before the start of its coarse slot, saturating at 0: out of the slot,
    /// perhaps into the past.
    BeforeSlot(u16),
}

/// One operation on the wheel.
#[derive(Clone, Debug)]
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
pub(crate) enum Op {
    /// `insert_at`, or `try_insert_at` when `try_` is set.
    InsertAt {
        at: Time,
        try_: bool,
    },
    /// `insert_after`, or `try_insert_after` when `try_` is set.
    InsertAfter {
        delay: Delay,
        try_: bool,
    },
    Cancel(KeyPick),
    Reschedule(KeyPick, Time),
    /// `reschedule` later than the timer's own deadline.
    RescheduleLater(KeyPick, Later),
    /// `reschedule` earlier than the timer's own deadline.
    RescheduleEarlier(KeyPick, Earlier),
    /// Reschedules every `(step % 8 + 2)`-th pending timer later, starting at the `offset`-th:
    /// leaves a crowded slot full of timers whose true deadlines lie elsewhere.
    RescheduleEvery {
        step: u8,
        offset: u8,
        later: Later,
    },
    Deadline(KeyPick),
    Poll(Time),
    /// `advance(to)`, taking at most `take` timers from the `Drain` before dropping it.
    Advance {
        to: Time,
        take: Option<u8>,
    },
    /// `count` inserts due at `at + i % (spread + 1)`: crowds one slot, or a few neighbours.
    InsertBurst {
        at: Time,
        count: u8,
        spread: u8,
    },
    /// Cancels every `(step % 8 + 2)`-th pending timer, starting at the `offset`-th: leaves a
    /// crowded slot mostly tombstones.
    CancelEvery {
        step: u8,
        offset: u8,
    },
    /// `clear()`: every pending timer goes, every key turns stale, time stays.
    Clear,
}

/// A delay for `insert_after`, in ticks.
#[derive(Clone, Debug)]
#[cfg_attr(fuzzing, derive(arbitrary::Arbitrary))]
pub(crate) enum Delay {
    /// Exactly this many ticks.
    Ticks(u64),
    /// `64^level + offset`, saturating: lands on and around level boundaries.
    Level { level: u8, offset: i8 },
    /// Days at 1 ms per tick.
    Days(u16),
    /// Years (365 days) at 1 ms per tick.
    Years(u16),
    /// `u64::MAX - n`: saturates at the end of time from any `now() > n`.
    Huge(u16),
}

pub(crate) const DAY_MS: u64 = 86_400_000;
pub(crate) const YEAR_MS: u64 = 365 * DAY_MS;

/// `64^level + offset`, saturating; `64^11 = 2^66` saturates to `u64::MAX`.
fn level_boundary(level: u8, offset: i8) -> u64 {
    let boundary = match level % 12 {
        11 => u64::MAX,
        level => 1 << (6 * level),
    };
    boundary.saturating_add_signed(i64::from(offset))
}

/// The level a timer due at `deadline` (at or after `now`) is filed on at `now`: that of the
/// highest bit in which the two differ, six bits a level (the wheel's documented geometry).
fn level_of(now: u64, deadline: u64) -> u32 {
    (63 - ((now ^ deadline) | 63).leading_zeros()) / 6
}

/// The first tick of the slot of `level` that holds `tick`.
fn slot_start(tick: u64, level: u32) -> u64 {
    tick & !((1u64 << (6 * level)) - 1)
}

/// A tick picked by `n` in `[start, end)`, or `end` if that is empty.
fn tick_in(start: u64, end: u64, n: u16) -> u64 {
    if start < end {
        start + u64::from(n) % (end - start)
    } else {
        end
    }
}

impl Delay {
    pub(crate) fn ticks(&self) -> u64 {
        match *self {
            Delay::Ticks(n) => n,
            Delay::Level { level, offset } => level_boundary(level, offset),
            Delay::Days(n) => u64::from(n) * DAY_MS,
            Delay::Years(n) => u64::from(n) * YEAR_MS,
            Delay::Huge(n) => u64::MAX - u64::from(n),
        }
    }
}

/// A pending timer in the model.
#[derive(Clone, Debug)]
struct Entry {
    /// The deadline that was asked for.
    deadline: u64,
    /// `max(deadline, now at insertion)`.
    effective: u64,
    seq: u64,
}

/// The reference model: what the wheel must do, without any of its cleverness.
#[derive(Default)]
pub(crate) struct Model {
    now: u64,
    next_seq: u64,
    /// Firing order: `(effective deadline, insertion seq) -> id`.
    queue: BTreeMap<(u64, u64), usize>,
    /// Pending timers by id (ids are the indices of minted keys, in minting order).
    pending: BTreeMap<usize, Entry>,
}

impl Model {
    pub(crate) fn starting_at(now: u64) -> Self {
        Model {
            now,
            ..Model::default()
        }
    }

    pub(crate) fn now(&self) -> u64 {
        self.now
    }

    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.queue.keys().next().map(|&(effective, _)| effective)
    }

    /// The next timer to fire as `(id, asked-for deadline)`.
    pub(crate) fn peek(&self) -> Option<(usize, u64)> {
        let (_, &id) = self.queue.first_key_value()?;
        Some((id, self.pending[&id].deadline))
    }

    /// Inserts timer `id` (which must be new) due at `deadline`.
    pub(crate) fn insert_at(&mut self, id: usize, deadline: u64) {
        let entry = self.enqueue(id, deadline);
        assert!(
            self.pending.insert(id, entry).is_none(),
            "model: id {id} reused"
        );
    }

    fn enqueue(&mut self, id: usize, deadline: u64) -> Entry {
        let effective = deadline.max(self.now);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.insert((effective, seq), id);
        Entry {
            deadline,
            effective,
            seq,
        }
    }

    /// Cancels `id`; its asked-for deadline if it was pending.
    pub(crate) fn cancel(&mut self, id: usize) -> Option<u64> {
        let entry = self.pending.remove(&id)?;
        self.queue.remove(&(entry.effective, entry.seq));
        Some(entry.deadline)
    }

    pub(crate) fn reschedule(&mut self, id: usize, deadline: u64) -> bool {
        let Some(old) = self.pending.get(&id).cloned() else {
            return false;
        };
        self.queue.remove(&(old.effective, old.seq));
        let entry = self.enqueue(id, deadline);
        self.pending.insert(id, entry);
        true
    }

    pub(crate) fn clear(&mut self) {
        self.queue.clear();
        self.pending.clear();
    }

    pub(crate) fn deadline(&self, id: usize) -> Option<u64> {
        self.pending.get(&id).map(|entry| entry.deadline)
    }

    /// The deadline a move relative to timer `id` is measured from: its effective deadline
    /// now, `max(deadline, now)`; `now` for a timer that is not pending.
    fn base(&self, id: usize) -> u64 {
        self.pending
            .get(&id)
            .map_or(self.now, |entry| entry.deadline.max(self.now))
    }

    /// A deadline `later` after timer `id`'s own.
    pub(crate) fn later(&self, id: usize, later: &Later) -> u64 {
        let base = self.base(id);
        match *later {
            Later::By(n) => base.saturating_add(u64::from(n)),
            Later::Span { level, offset } => base.saturating_add(level_boundary(level, offset)),
            Later::NextSlot { level, offset } => {
                let shift = 6 * u32::from(level % 11);
                let next = ((u128::from(base) >> shift) + 1) << shift;
                let next = u64::try_from(next).unwrap_or(u64::MAX);
                next.saturating_add_signed(i64::from(offset)).max(base)
            }
            Later::End(n) => (u64::MAX - u64::from(n)).max(base),
        }
    }

    /// A deadline `earlier` before timer `id`'s own.
    pub(crate) fn earlier(&self, id: usize, earlier: &Earlier) -> u64 {
        let base = self.base(id);
        let coarse = slot_start(base, level_of(self.now, base)).max(self.now);
        match *earlier {
            Earlier::By(n) => base.saturating_sub(u64::from(n)),
            Earlier::InSlot(n) => tick_in(coarse, base, n),
            Earlier::InSlotOf { level, n } => {
                let start = slot_start(base, u32::from(level % 10) + 1).max(self.now);
                tick_in(start, base, n)
            }
            Earlier::BeforeSlot(n) => coarse.saturating_sub(u64::from(n) + 1),
        }
    }

    /// The next due timer as `(id, asked-for deadline)`, updating `now` as the contract says.
    pub(crate) fn poll(&mut self, now: u64) -> Option<(usize, u64)> {
        let now = now.max(self.now);
        match self.queue.first_key_value() {
            Some((&(effective, seq), &id)) if effective <= now => {
                self.queue.remove(&(effective, seq));
                let entry = self
                    .pending
                    .remove(&id)
                    .expect("model: queued id is pending");
                self.now = self.now.max(effective);
                Some((id, entry.deadline))
            }
            _ => {
                self.now = now;
                None
            }
        }
    }

    /// Ids of the pending timers, in minting order.
    pub(crate) fn pending_ids(&self) -> impl Iterator<Item = usize> + '_ {
        self.pending.keys().copied()
    }

    /// The id an operation picks out of `minted` keys, if any was ever minted.
    pub(crate) fn pick(&self, pick: &KeyPick, minted: usize) -> Option<usize> {
        if minted == 0 {
            return None;
        }
        match *pick {
            KeyPick::Live(n) if !self.pending.is_empty() => {
                let n = usize::from(n) % self.pending.len();
                self.pending.keys().nth(n).copied()
            }
            KeyPick::Next if !self.pending.is_empty() => self.peek().map(|(id, _)| id),
            KeyPick::Live(n) | KeyPick::Any(n) => Some(usize::from(n) % minted),
            KeyPick::Next => Some(0),
        }
    }

    pub(crate) fn resolve(&self, time: &Time) -> u64 {
        match time {
            Time::Abs(t) => *t,
            Time::After(n) => self.now.saturating_add(*n),
            Time::Before(n) => self.now.saturating_sub(*n),
            Time::End(n) => u64::MAX - u64::from(*n),
            Time::LevelBoundary { level, offset } => level_boundary(*level, *offset),
            Time::SlotBoundary { level, offset } => {
                let shift = 6 * u32::from(level % 11);
                // In the last slot of a level, 2^64 is the next boundary: saturate to u64::MAX.
                let next = ((u128::from(self.now) >> shift) + 1) << shift;
                let next = u64::try_from(next).unwrap_or(u64::MAX);
                next.saturating_add_signed(i64::from(*offset))
            }
            Time::TieWith(pick) => self
                .pick(pick, usize::MAX)
                .and_then(|id| self.pending.get(&id))
                .map_or(self.now, |entry| entry.effective),
        }
    }
}

/// Pending timers above which `InsertBurst` adds none.
const BURST_LIMIT: usize = 256;

/// Drives a `TimerWheel<usize>` (each value is the timer's id) and a `Model` side by side.
pub(crate) struct Harness {
    wheel: TimerWheel<usize>,
    model: Model,
    /// Every key ever minted, indexed by id.
    keys: Vec<TimerKey>,
    minted: HashSet<TimerKey>,
}

impl Harness {
    pub(crate) fn starting_at(now: u64) -> Self {
        let harness = Harness {
            wheel: TimerWheel::starting_at(now),
            model: Model::starting_at(now),
            keys: Vec::new(),
            minted: HashSet::new(),
        };
        harness.check_state("starting_at");
        harness
    }

    /// Applies `op` to both, comparing every returned value and then the observable state.
    pub(crate) fn apply(&mut self, op: &Op) {
        match op {
            Op::InsertAt { at, try_ } => {
                let deadline = self.model.resolve(at);
                let id = self.keys.len();
                let key = if *try_ {
                    self.wheel
                        .try_insert_at(deadline, id)
                        .expect("try_insert_at refused with few timers pending")
                } else {
                    self.wheel.insert_at(deadline, id)
                };
                self.mint(key);
                self.model.insert_at(id, deadline);
            }
            Op::InsertAfter { delay, try_ } => {
                let delay = delay.ticks();
                let id = self.keys.len();
                let key = if *try_ {
                    self.wheel
                        .try_insert_after(delay, id)
                        .expect("try_insert_after refused with few timers pending")
                } else {
                    self.wheel.insert_after(delay, id)
                };
                self.mint(key);
                let deadline = self.model.now().saturating_add(delay);
                self.model.insert_at(id, deadline);
            }
            Op::Cancel(pick) => {
                if let Some(id) = self.model.pick(pick, self.keys.len()) {
                    let got = self.wheel.cancel(self.keys[id]);
                    let want = self.model.cancel(id).map(|_| id);
                    assert_eq!(got, want, "cancel(id {id}) {op:?}");
                }
            }
            Op::Reschedule(pick, at) => {
                if let Some(id) = self.model.pick(pick, self.keys.len()) {
                    let deadline = self.model.resolve(at);
                    self.reschedule(id, deadline, op);
                }
            }
            Op::RescheduleLater(pick, later) => {
                if let Some(id) = self.model.pick(pick, self.keys.len()) {
                    let deadline = self.model.later(id, later);
                    self.reschedule(id, deadline, op);
                }
            }
            Op::RescheduleEarlier(pick, earlier) => {
                if let Some(id) = self.model.pick(pick, self.keys.len()) {
                    let deadline = self.model.earlier(id, earlier);
                    self.reschedule(id, deadline, op);
                }
            }
            Op::RescheduleEvery {
                step,
                offset,
                later,
            } => {
                let step = usize::from(step % 8 + 2);
                let moved: Vec<usize> = self
                    .model
                    .pending_ids()
                    .skip(usize::from(*offset))
                    .step_by(step)
                    .collect();
                for id in moved {
                    let deadline = self.model.later(id, later);
                    self.reschedule(id, deadline, op);
                }
            }
            Op::Deadline(pick) => {
                if let Some(id) = self.model.pick(pick, self.keys.len()) {
                    let got = self.wheel.deadline(self.keys[id]);
                    assert_eq!(got, self.model.deadline(id), "deadline(id {id})");
                }
            }
            Op::Poll(at) => {
                let now = self.model.resolve(at);
                let got = self.wheel.poll(now).map(|e| (e.key, e.value, e.deadline));
                let want = self.model.poll(now).map(|(id, d)| (self.keys[id], id, d));
                assert_eq!(got, want, "poll({now})");
            }
            Op::Advance { to, take } => {
                let now = self.model.resolve(to);
                let mut drain = self.wheel.advance(now);
                let mut taken = 0usize;
                loop {
                    if take.is_some_and(|take| taken == usize::from(take)) {
                        break; // the Drain is dropped part way
                    }
                    let got = drain.next().map(|e| (e.key, e.value, e.deadline));
                    let want = self.model.poll(now).map(|(id, d)| (self.keys[id], id, d));
                    assert_eq!(got, want, "advance({now}), item {taken}");
                    if got.is_none() {
                        break;
                    }
                    taken += 1;
                }
            }
            Op::InsertBurst { at, count, spread } => {
                let at = self.model.resolve(at);
                // Bursts stop at a few hundred pending timers, to keep each run fast.
                let room = BURST_LIMIT.saturating_sub(self.model.len());
                for i in 0..u64::from(*count).min(room as u64) {
                    let deadline = at.saturating_add(i % (u64::from(*spread) + 1));
                    let id = self.keys.len();
                    let key = self.wheel.insert_at(deadline, id);
                    self.mint(key);
                    self.model.insert_at(id, deadline);
                }
            }
            Op::CancelEvery { step, offset } => {
                let step = usize::from(step % 8 + 2);
                let doomed: Vec<usize> = self
                    .model
                    .pending_ids()
                    .skip(usize::from(*offset))
                    .step_by(step)
                    .collect();
                for id in doomed {
                    let got = self.wheel.cancel(self.keys[id]);
                    let want = self.model.cancel(id).map(|_| id);
                    assert_eq!(got, want, "cancel(id {id}) in {op:?}");
                }
            }
            Op::Clear => {
                self.wheel.clear();
                self.model.clear();
            }
        }
        self.check_state(op);
    }

    /// Reschedules timer `id` to `deadline` on both and compares what they return.
    fn reschedule(&mut self, id: usize, deadline: u64, op: &Op) {
        let got = self.wheel.reschedule(self.keys[id], deadline);
        let want = self.model.reschedule(id, deadline);
        assert_eq!(got, want, "reschedule(id {id}, {deadline}) {op:?}");
    }

    fn mint(&mut self, key: TimerKey) {
        assert!(
            self.minted.insert(key),
            "insert minted {key:?}, a key given out before"
        );
        self.keys.push(key);
    }

    fn check_state(&self, after: impl std::fmt::Debug) {
        let (wheel, model) = (&self.wheel, &self.model);
        assert_eq!(wheel.now(), model.now(), "now() after {after:?}");
        assert_eq!(wheel.len(), model.len(), "len() after {after:?}");
        assert_eq!(
            wheel.is_empty(),
            model.len() == 0,
            "is_empty() after {after:?}"
        );
        assert_eq!(
            wheel.next_deadline(),
            model.next_deadline(),
            "next_deadline() after {after:?}"
        );
        let got = wheel
            .peek()
            .map(|(key, deadline, &value)| (key, deadline, value));
        let want = model
            .peek()
            .map(|(id, deadline)| (self.keys[id], deadline, id));
        assert_eq!(got, want, "peek() after {after:?}");
    }

    /// Runs everything that is left to the end of time and checks it all fires, in order.
    pub(crate) fn finish(mut self) {
        self.apply(&Op::Advance {
            to: Time::Abs(u64::MAX),
            take: None,
        });
        assert!(self.wheel.is_empty(), "timers left after advance(u64::MAX)");
        assert_eq!(self.wheel.poll(u64::MAX).map(|e| e.value), None);
    }
}
