//! One timer as its owners and the driver share it: a single atomic word that holds either the
//! timer's true deadline (while it is pending) or its fate, and what firing does.
//!
//! ```text
//!              cancel() wins           fire() wins                 claim_unfired() wins
//! CANCELLED <--------------- PENDING(tick) ----------> EXPIRED           (shutdown)
//!                              |    ^  |                   ^
//!                  extend()    +----+  +----> UNFIRED -----+ finish_unfired()
//!            (a later tick, CAS)
//! ```
//!
//! Every way out of pending is a compare-and-swap from a pending word, so whichever lands first
//! decides and every later one fails: a callback runs once or a cancel wins, never both, never
//! neither. A later reset is a CAS from one pending tick to a later one, with no lock: the
//! wheel still holds the timer at its old tick, and when the driver reaches it there it reads
//! the word ([`Entry::due`]), finds a later tick and files it again, as a cascade would. A timer
//! the pass finds due stays pending on the driver's due list; the driver's CAS (to `EXPIRED`,
//! [`Entry::fire`]) comes just before its action runs, so a callback earlier in the same pass
//! can still cancel it, and a reset that lands meanwhile sends it back to the wheel. A timer
//! therefore never fires before its true deadline. An earlier reset cannot be lazy (the wheel
//! would fire it late): it takes the lock and moves the timer in the wheel, unless the driver
//! already holds it as due.

use super::sync::{lock, AtomicU64, Mutex, Ordering};
use super::TimerStatus;
use crate::TimerKey;
use std::task::Waker;
use std::time::Duration;

/// The last tick a timer can be due at; the words above it are fates. A deadline past it
/// saturates there (at 1 ns per tick that is 584 years after the service started).
pub(crate) const LAST_TICK: u64 = u64::MAX - 3;
const UNFIRED: u64 = u64::MAX - 2;
const CANCELLED: u64 = u64::MAX - 1;
const EXPIRED: u64 = u64::MAX;

/// What firing a timer does.
pub(crate) enum Action {
    /// Nothing (yet): a sleep that has not been polled, or whose waker was taken.
    None,
    /// Wake the task that polled the sleep.
    Wake(Waker),
    /// Run a callback.
    Call(Box<dyn FnOnce() + Send>),
}

/// What [`Entry::fire`] found.
pub(crate) enum Fire {
    /// The timer was reset to this later tick meanwhile: file it there.
    Refile(u64),
    /// It is due and this call made it expired: its action is the driver's to perform.
    Fired,
    /// A cancel won first (or shutdown claimed it): nothing to do.
    Gone,
}

/// What [`Entry::due`] found.
pub(crate) enum Due {
    /// A reset moved the timer to this later tick: file it there.
    Later(u64),
    /// Pending at the tick it was filed at (or earlier): it is due.
    Now,
    /// A cancel won first (or shutdown claimed it).
    Gone,
}

/// What [`Entry::extend`] found.
pub(crate) enum Extend {
    /// The timer is pending at the tick asked for or later than before: done.
    Done,
    /// The tick asked for is before the timer's true deadline: the wheel must move it.
    Earlier,
    /// The timer is no longer pending.
    Finished,
}

/// One timer.
pub(crate) struct Entry {
    /// A tick up to `LAST_TICK`: pending, due then. Above: its fate.
    state: AtomicU64,
    /// Where the wheel holds it, as `TimerKey` bits; read and written under the service's lock
    /// only (an atomic for `Sync`, accessed relaxed).
    key: AtomicU64,
    /// The deadline asked for, in nanoseconds on the service's time line, saturated at
    /// `u64::MAX`: for `Timeout::deadline` and panic reports.
    asked: AtomicU64,
    action: Mutex<Action>,
}

impl Entry {
    /// A timer that is not pending (a new entry for the pool).
    pub(crate) fn new() -> Self {
        Entry {
            state: AtomicU64::new(EXPIRED),
            key: AtomicU64::new(0),
            asked: AtomicU64::new(0),
            action: Mutex::new(Action::None),
        }
    }

    /// Makes a timer that nobody else can see yet pending at `tick`, with `action`. Its
    /// publication (filing it in the wheel under the lock, or the `Arc` handed to another
    /// thread) orders these stores before anyone reads them.
    pub(crate) fn arm(&self, tick: u64, asked: Duration, action: Action) {
        debug_assert!(tick <= LAST_TICK);
        self.set_asked(asked);
        *lock(&self.action) = action;
        self.state.store(tick, Ordering::Release);
    }

    /// Records a new deadline asked for (a reset).
    pub(crate) fn set_asked(&self, asked: Duration) {
        let nanos = u64::try_from(asked.as_nanos()).unwrap_or(u64::MAX);
        self.asked.store(nanos, Ordering::Relaxed);
    }

    /// The deadline asked for, on the service's time line.
    pub(crate) fn asked(&self) -> Duration {
        match self.asked.load(Ordering::Relaxed) {
            u64::MAX => Duration::MAX,
            nanos => Duration::from_nanos(nanos),
        }
    }

    /// Where the wheel holds the timer. Under the service's lock only.
    pub(crate) fn key(&self) -> Option<TimerKey> {
        TimerKey::from_bits(self.key.load(Ordering::Relaxed))
    }

    /// Records where the wheel holds the timer. Under the service's lock only.
    pub(crate) fn set_key(&self, key: TimerKey) {
        self.key.store(key.to_bits(), Ordering::Relaxed);
    }

    /// The timer's status, read once.
    pub(crate) fn status(&self) -> TimerStatus {
        match self.state.load(Ordering::Acquire) {
            EXPIRED => TimerStatus::Expired,
            CANCELLED => TimerStatus::Cancelled,
            UNFIRED => TimerStatus::Unfired,
            _ => TimerStatus::Pending,
        }
    }

    /// Moves a pending timer from its tick to `to`, if `to` is not earlier: the lock-free,
    /// lazy reset.
    pub(crate) fn extend(&self, to: u64) -> Extend {
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            if current > LAST_TICK {
                return Extend::Finished;
            }
            if to < current {
                return Extend::Earlier;
            }
            match self
                .state
                .compare_exchange_weak(current, to, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Extend::Done,
                Err(actual) => current = actual,
            }
        }
    }

    /// Moves a pending timer to `to`, earlier or not; under the service's lock, so that the
    /// caller moves it in the wheel too. False if it is no longer pending.
    pub(crate) fn move_to(&self, to: u64) -> bool {
        let mut current = self.state.load(Ordering::Acquire);
        while current <= LAST_TICK {
            match self
                .state
                .compare_exchange_weak(current, to, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
        false
    }

    /// The wheel gave up the timer at tick `at`: whether it is due then, or was moved later
    /// meanwhile, or has gone. Decides nothing (the fate is `fire`'s to take).
    pub(crate) fn due(&self, at: u64) -> Due {
        match self.state.load(Ordering::Acquire) {
            state if state > LAST_TICK => Due::Gone,
            state if state > at => Due::Later(state),
            _ => Due::Now,
        }
    }

    /// The driver is about to perform the timer's action at tick `now`: makes it expired unless
    /// a cancel or shutdown won first, or a reset moved it past `now` (then it is filed again).
    pub(crate) fn fire(&self, now: u64) -> Fire {
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            if current > LAST_TICK {
                return Fire::Gone;
            }
            if current > now {
                return Fire::Refile(current);
            }
            match self.state.compare_exchange_weak(
                current,
                EXPIRED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Fire::Fired,
                Err(actual) => current = actual,
            }
        }
    }

    /// Pending -> cancelled. True iff this call decided the timer's fate.
    pub(crate) fn cancel(&self) -> bool {
        self.leave_pending(CANCELLED)
    }

    /// Pending -> unfired, for shutdown. True iff the timer is now the caller's.
    pub(crate) fn claim_unfired(&self) -> bool {
        self.leave_pending(UNFIRED)
    }

    /// Unfired -> expired: the owner of an unfired timer runs it.
    pub(crate) fn finish_unfired(&self) -> bool {
        self.state
            .compare_exchange(UNFIRED, EXPIRED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn leave_pending(&self, to: u64) -> bool {
        let mut current = self.state.load(Ordering::Acquire);
        while current <= LAST_TICK {
            match self
                .state
                .compare_exchange_weak(current, to, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
        false
    }

    /// Takes what firing does, leaving nothing.
    pub(crate) fn take_action(&self) -> Action {
        std::mem::replace(&mut *lock(&self.action), Action::None)
    }

    /// Gives an unfired timer its callback back, for its `UnfiredTimer` to run or drop.
    pub(crate) fn put_callback(&self, callback: Box<dyn FnOnce() + Send>) {
        *lock(&self.action) = Action::Call(callback);
    }

    /// Sets the waker a sleep's firing wakes, unless it already wakes the same task.
    pub(crate) fn set_waker(&self, waker: &Waker) {
        let mut action = lock(&self.action);
        match &*action {
            Action::Wake(current) if current.will_wake(waker) => {}
            _ => *action = Action::Wake(waker.clone()),
        }
    }
}

#[cfg(all(test, not(tierwheel_loom)))]
mod tests {
    use super::*;

    #[test]
    fn every_way_out_of_pending_is_taken_once() {
        let entry = Entry::new();
        assert_eq!(entry.status(), TimerStatus::Expired);
        entry.arm(10, Duration::from_millis(10), Action::None);
        assert_eq!(entry.status(), TimerStatus::Pending);
        assert!(matches!(entry.extend(20), Extend::Done));
        assert!(matches!(entry.extend(15), Extend::Earlier));
        assert!(matches!(entry.due(10), Due::Later(20)));
        assert!(matches!(entry.due(20), Due::Now));
        assert!(matches!(entry.fire(10), Fire::Refile(20)));
        assert!(matches!(entry.fire(20), Fire::Fired));
        assert!(!entry.cancel());
        assert!(!entry.claim_unfired());
        assert!(matches!(entry.extend(30), Extend::Finished));
        assert!(!entry.move_to(30));

        entry.arm(5, Duration::ZERO, Action::None);
        assert!(entry.cancel());
        assert!(!entry.cancel());
        assert!(matches!(entry.fire(5), Fire::Gone));
        assert!(matches!(entry.due(5), Due::Gone));
        assert_eq!(entry.status(), TimerStatus::Cancelled);

        entry.arm(5, Duration::ZERO, Action::None);
        assert!(entry.move_to(3));
        assert!(entry.claim_unfired());
        assert!(!entry.cancel());
        assert!(entry.finish_unfired());
        assert!(!entry.finish_unfired());
        assert_eq!(entry.status(), TimerStatus::Expired);
    }

    #[test]
    fn the_asked_deadline_saturates() {
        let entry = Entry::new();
        entry.arm(LAST_TICK, Duration::MAX, Action::None);
        assert_eq!(entry.asked(), Duration::MAX);
        entry.arm(1, Duration::from_nanos(1500), Action::None);
        assert_eq!(entry.asked(), Duration::from_nanos(1500));
    }
}
