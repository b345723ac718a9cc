//! A plain reference model of `TimerWheel`, and a harness that drives the wheel and the model
//! with the same operations and panics on the first difference.
//!
//! Shared by the property test (`tests/wheel_model.rs`) and the fuzz target
//! (`fuzz/fuzz_targets/wheel_ops.rs`, which includes this file by path). It uses nothing but
//! `std` and the public API, so that both can build it; under `cfg(fuzzing)` the operation
//! types also derive `arbitrary::Arbitrary`.
//!
//! The model is the specification, written as directly as possible: a `BTreeMap` keyed by
//! `(effective deadline, insertion sequence)` is the firing order, and a map from timer id to
//! its entry answers `deadline`, `cancel` and `reschedule`.

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
            KeyPick::Live(n) | KeyPick::Any(n) => Some(usize::from(n) % minted),
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
                    let got = self.wheel.reschedule(self.keys[id], deadline);
                    let want = self.model.reschedule(id, deadline);
                    assert_eq!(got, want, "reschedule(id {id}, {deadline}) {op:?}");
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
