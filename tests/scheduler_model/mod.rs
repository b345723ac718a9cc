//! A plain reference model of `Scheduler`, and a harness that drives the real scheduler and the
//! model through the same operations and panics on the first difference.
//!
//! Shared by `tests/scheduler_proptest.rs` and `fuzz/fuzz_targets/scheduler_ops.rs`. The model is
//! a vector of pending callbacks sorted on demand; times are whole nanoseconds in `u128`. It
//! knows nothing of wheels: a pass runs what was pending when it began and is due by its tick,
//! by (due tick, scheduling sequence), whether the time was past when scheduled or not.
#![allow(dead_code)]

use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Once;
use std::time::Duration;

use tierwheel::{Clock, ManualClock, Resolution, Scheduler, TimerHandle};

/// A delay, or a time on the scheduler's time line.
#[derive(Copy, Clone, Debug)]
pub(crate) enum Delay {
    Nanos(u64),
    Secs(u64),
    Max,
}

impl Delay {
    pub(crate) fn duration(self) -> Duration {
        match self {
            Delay::Nanos(n) => Duration::from_nanos(n),
            Delay::Secs(s) => Duration::from_secs(s),
            Delay::Max => Duration::MAX,
        }
    }
}

/// What a callback does when it runs, in order. A callback's children (scheduled by `Later`,
/// `At` and `Soon`) do the same, `depth` times over.
#[derive(Copy, Clone, Debug)]
pub(crate) enum Effect {
    Later(Delay),
    At(Delay),
    Soon,
    /// Cancels the n-th callback ever scheduled (modulo how many there are).
    Cancel(usize),
    /// Reschedules the n-th callback ever scheduled to a time (`reschedule`).
    Reschedule(usize, Delay),
    /// Reschedules the n-th callback ever scheduled to a delay from now (`reschedule_later`).
    RescheduleLater(usize, Delay),
    /// Panics: the rest of the effects do not happen, the pass ends.
    Panic,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Plan {
    pub(crate) effects: Rc<[Effect]>,
    pub(crate) depth: u8,
}

impl Plan {
    fn child(&self) -> Plan {
        match self.depth {
            0 => Plan::default(),
            depth => Plan {
                effects: self.effects.clone(),
                depth: depth - 1,
            },
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Op {
    Later(Delay, Plan),
    At(Delay, Plan),
    Soon(Plan),
    /// Cancels the n-th callback ever scheduled (modulo how many there are).
    Cancel(usize),
    /// Reschedules the n-th callback ever scheduled to a time (`reschedule`).
    Reschedule(usize, Delay),
    /// Reschedules the n-th callback ever scheduled to a delay from now (`reschedule_later`).
    RescheduleLater(usize, Delay),
    Advance(Delay),
    /// Sets the clock, possibly backwards (which must be refused).
    Set(u64),
    RunDue,
}

/// The payload of a planned panic, told apart from real failures by the panic hook.
struct PlannedPanic;

/// Silences planned panics; every other panic is reported as usual.
pub(crate) fn quiet_planned_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let report = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<PlannedPanic>() {
                report(info);
            }
        }));
    });
}

/// What the callbacks observed, in order.
#[derive(Default)]
struct Ctx {
    /// Ids of the callbacks run.
    log: Vec<usize>,
    /// Every handle returned, in scheduling order: a callback's id is its index here.
    handles: Vec<TimerHandle>,
    /// Results of the cancels and reschedules done by callbacks.
    outcomes: Vec<bool>,
}

type Sched = Scheduler<Ctx, ManualClock>;

fn callback(id: usize, plan: Plan) -> impl FnOnce(&mut Ctx, &mut Sched) + 'static {
    move |ctx, sched| {
        ctx.log.push(id);
        for &effect in plan.effects.iter() {
            let child = || callback(ctx.handles.len(), plan.child());
            let handle = match effect {
                Effect::Later(delay) => sched.call_later(delay.duration(), child()),
                Effect::At(when) => sched.call_at(when.duration(), child()),
                Effect::Soon => sched.call_soon(child()),
                Effect::Cancel(n) => {
                    if let Some(&h) = pick(&ctx.handles, n) {
                        ctx.outcomes.push(sched.cancel(h));
                    }
                    continue;
                }
                Effect::Reschedule(n, when) => {
                    if let Some(&h) = pick(&ctx.handles, n) {
                        ctx.outcomes.push(sched.reschedule(h, when.duration()));
                    }
                    continue;
                }
                Effect::RescheduleLater(n, delay) => {
                    if let Some(&h) = pick(&ctx.handles, n) {
                        ctx.outcomes
                            .push(sched.reschedule_later(h, delay.duration()));
                    }
                    continue;
                }
                Effect::Panic => panic::panic_any(PlannedPanic),
            };
            ctx.handles.push(handle);
        }
    }
}

fn pick<T>(items: &[T], n: usize) -> Option<&T> {
    items.get(n.checked_rem(items.len())?)
}

/// One pending callback of the model.
#[derive(Debug)]
struct Pending {
    id: usize,
    /// The tick it is due at: the one it was given, or the pass's tick if it was given one at
    /// or before the tick of the pass that scheduled it.
    tick: u64,
    /// Scheduling order, the tiebreak; a reschedule takes a new one.
    seq: u64,
    plan: Plan,
}

struct Model {
    tick_nanos: u128,
    /// The clock, in nanoseconds (saturating at `u64::MAX`, as `ManualClock` does).
    now: u64,
    /// The last pass's tick: a pass never runs to an earlier one.
    last_pass: u64,
    /// The tick of the pass in progress.
    pass: Option<u64>,
    pending: Vec<Pending>,
    seq: u64,
    next_id: usize,
    log: Vec<usize>,
    outcomes: Vec<bool>,
}

const DURATION_MAX_NANOS: u128 = u64::MAX as u128 * 1_000_000_000 + 999_999_999;

impl Model {
    fn ceil(&self, nanos: u128) -> u64 {
        if nanos == DURATION_MAX_NANOS {
            return u64::MAX;
        }
        u64::try_from(nanos.div_ceil(self.tick_nanos)).unwrap_or(u64::MAX)
    }

    fn floor(&self, nanos: u128) -> u64 {
        u64::try_from(nanos / self.tick_nanos)
            .unwrap_or(u64::MAX)
            .min(u64::MAX - 1)
    }

    fn duration(&self, tick: u64) -> Duration {
        if tick == u64::MAX {
            return Duration::MAX;
        }
        let nanos = u128::from(tick) * self.tick_nanos;
        match u64::try_from(nanos / 1_000_000_000) {
            Ok(secs) => Duration::new(secs, (nanos % 1_000_000_000) as u32),
            Err(_) => Duration::MAX,
        }
    }

    /// The tick a callback given `tick` is due at.
    fn due(&self, tick: u64) -> u64 {
        self.pass.map_or(tick, |pass| tick.max(pass))
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq - 1
    }

    fn schedule(&mut self, tick: u64, plan: Plan) {
        let pending = Pending {
            id: self.next_id,
            tick: self.due(tick),
            seq: self.next_seq(),
            plan,
        };
        self.pending.push(pending);
        self.next_id += 1;
    }

    /// `now + delay`, as a tick rounded up.
    fn later_tick(&self, delay: Delay) -> u64 {
        let when = (u128::from(self.now) + delay.duration().as_nanos()).min(DURATION_MAX_NANOS);
        self.ceil(when)
    }

    fn later(&mut self, delay: Delay, plan: Plan) {
        self.schedule(self.later_tick(delay), plan);
    }

    fn at(&mut self, when: Delay, plan: Plan) {
        self.schedule(self.ceil(when.duration().as_nanos()), plan);
    }

    /// Moves the n-th callback ever scheduled to `tick`, as scheduled anew.
    fn reschedule(&mut self, n: usize, tick: u64) -> Option<bool> {
        if self.next_id == 0 {
            return None;
        }
        let id = n % self.next_id;
        let Some(i) = self.pending.iter().position(|p| p.id == id) else {
            return Some(false);
        };
        self.pending[i].tick = self.due(tick);
        self.pending[i].seq = self.next_seq();
        Some(true)
    }

    fn soon(&mut self, plan: Plan) {
        self.schedule(self.floor(u128::from(self.now)), plan);
    }

    fn cancel(&mut self, n: usize) -> Option<bool> {
        if self.next_id == 0 {
            return None;
        }
        let id = n % self.next_id;
        let found = self.pending.iter().position(|p| p.id == id);
        Some(found.map(|i| self.pending.remove(i)).is_some())
    }

    /// Returns how many callbacks ran and whether one panicked.
    fn run_due(&mut self) -> (usize, bool) {
        let pass = self.floor(u128::from(self.now)).max(self.last_pass);
        self.last_pass = pass;
        let mut due: Vec<(u64, u64, usize)> = self
            .pending
            .iter()
            .filter(|p| p.tick <= pass)
            .map(|p| (p.tick, p.seq, p.id))
            .collect();
        due.sort_unstable();
        self.pass = Some(pass);
        let mut ran = 0;
        for (_, seq, id) in due {
            // Gone if an earlier callback of this pass cancelled it; with another sequence
            // number if one rescheduled it, which makes it wait for a later pass.
            let Some(i) = self.pending.iter().position(|p| p.id == id && p.seq == seq) else {
                continue;
            };
            let timer = self.pending.remove(i);
            ran += 1;
            self.log.push(id);
            for &effect in timer.plan.effects.iter() {
                let child = timer.plan.child();
                match effect {
                    Effect::Later(delay) => self.later(delay, child),
                    Effect::At(when) => self.at(when, child),
                    Effect::Soon => self.soon(child),
                    Effect::Cancel(n) => {
                        if let Some(result) = self.cancel(n) {
                            self.outcomes.push(result);
                        }
                    }
                    Effect::Reschedule(n, when) => {
                        let tick = self.ceil(when.duration().as_nanos());
                        if let Some(result) = self.reschedule(n, tick) {
                            self.outcomes.push(result);
                        }
                    }
                    Effect::RescheduleLater(n, delay) => {
                        let tick = self.later_tick(delay);
                        if let Some(result) = self.reschedule(n, tick) {
                            self.outcomes.push(result);
                        }
                    }
                    Effect::Panic => {
                        self.pass = None;
                        return (ran, true);
                    }
                }
            }
        }
        self.pass = None;
        (ran, false)
    }

    fn next_timeout(&self) -> Option<Duration> {
        let next = self.pending.iter().map(|p| p.tick).min()?;
        Some(
            self.duration(next)
                .saturating_sub(Duration::from_nanos(self.now)),
        )
    }
}

/// Runs `ops` on a real scheduler (ticks of `tick_nanos`, clock starting at `start_nanos`) and
/// on the model, panicking at the first difference.
pub(crate) fn check(tick_nanos: u64, start_nanos: u64, ops: &[Op]) {
    quiet_planned_panics();
    let resolution = Resolution::from_nanos(tick_nanos).expect("tick_nanos > 0");
    let clock = ManualClock::starting_at(Duration::from_nanos(start_nanos));
    let mut sched = Sched::with_clock_and_resolution(clock.clone(), resolution);
    let mut ctx = Ctx::default();
    let mut model = Model {
        tick_nanos: u128::from(tick_nanos),
        now: start_nanos,
        last_pass: 0,
        pass: None,
        pending: Vec::new(),
        seq: 0,
        next_id: 0,
        log: Vec::new(),
        outcomes: Vec::new(),
    };

    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Later(delay, plan) => {
                let id = ctx.handles.len();
                let h = sched.call_later(delay.duration(), callback(id, plan.clone()));
                ctx.handles.push(h);
                model.later(*delay, plan.clone());
            }
            Op::At(when, plan) => {
                let id = ctx.handles.len();
                let h = sched.call_at(when.duration(), callback(id, plan.clone()));
                ctx.handles.push(h);
                model.at(*when, plan.clone());
            }
            Op::Soon(plan) => {
                let id = ctx.handles.len();
                let h = sched.call_soon(callback(id, plan.clone()));
                ctx.handles.push(h);
                model.soon(plan.clone());
            }
            Op::Cancel(n) => {
                let real = pick(&ctx.handles, *n).map(|&h| sched.cancel(h));
                assert_eq!(real, model.cancel(*n), "step {step}: cancel({n})");
            }
            Op::Reschedule(n, when) => {
                let real = pick(&ctx.handles, *n).map(|&h| sched.reschedule(h, when.duration()));
                let tick = model.ceil(when.duration().as_nanos());
                assert_eq!(real, model.reschedule(*n, tick), "step {step}: {op:?}");
            }
            Op::RescheduleLater(n, delay) => {
                let real =
                    pick(&ctx.handles, *n).map(|&h| sched.reschedule_later(h, delay.duration()));
                let tick = model.later_tick(*delay);
                assert_eq!(real, model.reschedule(*n, tick), "step {step}: {op:?}");
            }
            Op::Advance(by) => {
                clock.advance(by.duration());
                model.now = u64::try_from(u128::from(model.now) + by.duration().as_nanos())
                    .unwrap_or(u64::MAX);
            }
            Op::Set(to) => {
                let real = clock.set(Duration::from_nanos(*to)).is_ok();
                let ok = *to >= model.now;
                if ok {
                    model.now = *to;
                }
                assert_eq!(real, ok, "step {step}: set({to}) from {}", model.now);
            }
            Op::RunDue => {
                let logged = ctx.log.len();
                let real = panic::catch_unwind(AssertUnwindSafe(|| sched.run_due(&mut ctx)));
                let (ran, panicked) = model.run_due();
                match real {
                    Ok(n) => {
                        assert!(
                            !panicked,
                            "step {step}: the model panicked, run_due did not"
                        );
                        assert_eq!(n, ran, "step {step}: callbacks run");
                    }
                    Err(payload) => {
                        assert!(
                            payload.is::<PlannedPanic>(),
                            "step {step}: run_due panicked with an unplanned payload"
                        );
                        assert!(panicked, "step {step}: run_due panicked, the model did not");
                    }
                }
                assert_eq!(ctx.log.len() - logged, ran, "step {step}: callbacks logged");
            }
        }
        assert_eq!(
            ctx.log, model.log,
            "step {step} ({op:?}): order of callbacks run"
        );
        assert_eq!(
            ctx.outcomes, model.outcomes,
            "step {step}: cancels and reschedules by callbacks"
        );
        assert_eq!(
            ctx.handles.len(),
            model.next_id,
            "step {step}: callbacks scheduled"
        );
        assert_eq!(sched.len(), model.pending.len(), "step {step}: len");
        assert_eq!(sched.is_empty(), model.pending.is_empty(), "step {step}");
        assert_eq!(sched.time(), clock.now(), "step {step}: time");
        assert_eq!(
            sched.next_timeout(),
            model.next_timeout(),
            "step {step}: next_timeout"
        );
        // Every handle after every step costs O(steps x handles): past a hundred handles, only
        // after passes and at the end, which is where handles change state in bulk.
        let last = step + 1 == ops.len();
        if ctx.handles.len() > 100 && !last && !matches!(op, Op::RunDue) {
            continue;
        }
        for (id, &h) in ctx.handles.iter().enumerate() {
            let pending = model.pending.iter().find(|p| p.id == id);
            assert_eq!(
                sched.is_pending(h),
                pending.is_some(),
                "step {step}: id {id}"
            );
            assert_eq!(
                sched.when(h),
                pending.map(|p| model.duration(p.tick)),
                "step {step}: when of id {id}"
            );
        }
    }
    // Every callback ran exactly once, or was cancelled, or is still pending.
    let mut ran = ctx.log.clone();
    ran.sort_unstable();
    ran.dedup();
    assert_eq!(
        ran.len(),
        ctx.log.len(),
        "a callback ran twice: {:?}",
        ctx.log
    );
}
