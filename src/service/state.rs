//! The per-timer state machine: one atomic byte, and compare-and-swap out of `PENDING` as the
//! only way to decide a timer's fate.
//!
//! ```text
//!            cancel() wins            start_firing() wins        claim_unfired() wins
//! CANCELLED <------------- PENDING ----------------------> EXPIRED      (shutdown)
//!                             |                               ^
//!                             +------------> UNFIRED ---------+ finish_unfired()
//! ```
//!
//! `PENDING` is the only state with more than one way out, and every way out is a CAS from
//! `PENDING`: whichever CAS lands first decides, every later one fails. That is the whole
//! exactly-once argument; docs/design.md ("The timer service") spells it out. The same word
//! carries one more bit, `PLACED`, that only says whether the driver's scheduler holds the
//! timer (and so who frees a cancelled one); every transition carries it over unchanged.

use super::sync::{AtomicU8, Ordering};
use std::fmt;

const PENDING: u8 = 0;
const EXPIRED: u8 = 1;
const CANCELLED: u8 = 2;
const UNFIRED: u8 = 3;
/// The bits above that hold one of the four states.
const STATE: u8 = 0b011;
/// Set once by the driver when the timer is in its scheduler; no CAS on the state ever
/// changes it. It shares the state's word so that a winning cancel learns, in the same CAS,
/// whether it must ask the driver to free the timer (see [`TimerState::cancel_placed`]).
const PLACED: u8 = 0b100;

/// Where a timer is in its life, as [`Timeout::status`](super::Timeout::status) reads it.
///
/// New states may be added, so a `match` on it needs a wildcard arm.
///
/// ```
/// use std::time::Duration;
/// use tierwheel::service::{TimerService, TimerStatus};
///
/// let mut driver = TimerService::builder().build_manual();
/// let fires = driver.handle().call_later(Duration::from_millis(1), || {}).unwrap();
/// let cancelled = driver.handle().call_later(Duration::from_millis(1), || {}).unwrap();
/// let unfired = driver.handle().call_later(Duration::from_secs(1), || {}).unwrap();
/// assert_eq!(fires.status(), TimerStatus::Pending);
/// assert!(cancelled.cancel());
/// driver.run_until(Duration::from_millis(1));
/// drop(driver.shutdown());
/// assert_eq!(fires.status(), TimerStatus::Expired);
/// assert_eq!(cancelled.status(), TimerStatus::Cancelled);
/// assert_eq!(unfired.status(), TimerStatus::Unfired);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimerStatus {
    /// Nothing has decided the timer's fate yet.
    Pending,
    /// The callback has started (the driver, or whoever ran it after shutdown, won).
    Expired,
    /// A `cancel` won: the callback will never run.
    Cancelled,
    /// Shutdown claimed the timer and handed it back to the caller of `shutdown`.
    Unfired,
}

/// The state word of one timer, shared by every [`Timeout`](super::Timeout) clone and the
/// driver thread.
///
/// Each way out of [`TimerStatus::Pending`] is one compare-and-swap, so for every timer exactly
/// one of [`cancel_placed`](Self::cancel_placed), [`start_firing`](Self::start_firing) and
/// [`claim_unfired`](Self::claim_unfired) ever succeeds, once.
pub(crate) struct TimerState {
    word: AtomicU8,
}

impl TimerState {
    /// A pending timer.
    pub(crate) fn new() -> Self {
        TimerState {
            word: AtomicU8::new(PENDING),
        }
    }

    /// `from -> to`, leaving the `PLACED` bit as it is; the word it replaced iff this call
    /// made the move. Reads the word first, so that the CAS expects the right `PLACED` bit
    /// (and a lost race costs no CAS); at most two tries, as `PLACED` is set at most once.
    fn transition(&self, from: u8, to: u8) -> Option<u8> {
        let mut current = self.word.load(Ordering::Acquire);
        if current & STATE != from {
            return None;
        }
        loop {
            let next = (current & PLACED) | to;
            match self
                .word
                .compare_exchange(current, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(current),
                Err(actual) if actual & STATE == from => current = actual,
                Err(_) => return None,
            }
        }
    }

    /// `PENDING -> to`; true iff this call made the move.
    fn leave_pending(&self, to: u8) -> bool {
        self.transition(PENDING, to).is_some()
    }

    /// `PENDING -> CANCELLED`, the one way a cancel wins; if this call won, whether the driver
    /// had placed the timer in its scheduler first.
    ///
    /// With [`mark_placed`](Self::mark_placed) this decides who frees a cancelled timer, both
    /// being read-modify-writes of this one word (so one of them comes first, whatever the
    /// interleaving): a cancel that finds `PLACED` asks the driver to take the timer out of
    /// its scheduler; otherwise `mark_placed`, coming later, finds `CANCELLED` and the driver
    /// takes it out at once. Never both, never neither.
    pub(crate) fn cancel_placed(&self) -> Option<bool> {
        let before = self.transition(PENDING, CANCELLED)?;
        Some(before & PLACED != 0)
    }

    /// Sets `PLACED`: the driver has just put the timer in its scheduler. True iff the timer
    /// was still pending, so any cancel from now on finds `PLACED`; false if a cancel won
    /// first without seeing it, and the driver must free the timer itself.
    pub(crate) fn mark_placed(&self) -> bool {
        let before = self.word.fetch_or(PLACED, Ordering::AcqRel);
        debug_assert_eq!(before & PLACED, 0, "timer placed twice");
        before & STATE == PENDING
    }

    /// `PENDING -> EXPIRED`, taken by the driver just before it runs the callback. True iff the
    /// caller must run it.
    pub(crate) fn start_firing(&self) -> bool {
        self.leave_pending(EXPIRED)
    }

    /// `PENDING -> UNFIRED`, taken by shutdown for each timer it hands back. True iff the timer
    /// now belongs to the caller (who may run it, see [`finish_unfired`](Self::finish_unfired)).
    pub(crate) fn claim_unfired(&self) -> bool {
        self.leave_pending(UNFIRED)
    }

    /// `UNFIRED -> EXPIRED`: the owner of a timer handed back by shutdown is about to run it.
    /// True iff the timer was unfired (and so is now expired).
    pub(crate) fn finish_unfired(&self) -> bool {
        self.transition(UNFIRED, EXPIRED).is_some()
    }

    /// The current status.
    pub(crate) fn status(&self) -> TimerStatus {
        match self.word.load(Ordering::Acquire) & STATE {
            PENDING => TimerStatus::Pending,
            EXPIRED => TimerStatus::Expired,
            CANCELLED => TimerStatus::Cancelled,
            state => {
                debug_assert_eq!(state, UNFIRED);
                TimerStatus::Unfired
            }
        }
    }

    /// Whether nothing has decided the timer's fate yet.
    pub(crate) fn is_pending(&self) -> bool {
        self.status() == TimerStatus::Pending
    }

    /// Whether a cancel won.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.status() == TimerStatus::Cancelled
    }

    /// Whether the callback has started.
    pub(crate) fn is_expired(&self) -> bool {
        self.status() == TimerStatus::Expired
    }
}

impl fmt::Debug for TimerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TimerState").field(&self.status()).finish()
    }
}

#[cfg(all(test, not(tierwheel_loom)))]
mod tests {
    use super::*;

    /// The three ways out of `PENDING`, and who wins when each goes first.
    #[test]
    fn the_first_way_out_of_pending_wins_and_every_later_one_fails() {
        let fired = TimerState::new();
        assert!(fired.is_pending());
        assert!(fired.start_firing());
        assert_eq!(
            fired.cancel_placed(),
            None,
            "too late: the callback has started"
        );
        assert!(!fired.claim_unfired());
        assert!(fired.is_expired());

        let cancelled = TimerState::new();
        assert_eq!(cancelled.cancel_placed(), Some(false));
        assert_eq!(
            cancelled.cancel_placed(),
            None,
            "a second cancel never wins"
        );
        assert!(
            !cancelled.start_firing(),
            "cancelled: the driver drops the callback"
        );
        assert!(!cancelled.claim_unfired());
        assert!(cancelled.is_cancelled());
        assert_eq!(cancelled.status(), TimerStatus::Cancelled);

        let unfired = TimerState::new();
        assert!(unfired.claim_unfired());
        assert_eq!(unfired.status(), TimerStatus::Unfired);
        assert_eq!(unfired.cancel_placed(), None);
        assert!(!unfired.start_firing());
    }

    #[test]
    fn only_an_unfired_timer_can_be_finished_and_only_once() {
        let state = TimerState::new();
        assert!(!state.finish_unfired());
        assert!(state.claim_unfired());
        assert!(state.finish_unfired());
        assert!(state.is_expired());
        assert!(!state.finish_unfired());
    }

    /// `PLACED` tells a winning cancel whether the driver must free the timer, and tells the
    /// driver whether a cancel won before it placed the timer; no transition changes it.
    #[test]
    fn the_placed_bit_decides_who_frees_a_cancelled_timer() {
        let placed_first = TimerState::new();
        assert!(placed_first.mark_placed());
        assert_eq!(placed_first.cancel_placed(), Some(true));
        assert!(placed_first.is_cancelled());

        let cancelled_first = TimerState::new();
        assert_eq!(cancelled_first.cancel_placed(), Some(false));
        assert!(!cancelled_first.mark_placed());
        assert!(cancelled_first.is_cancelled());

        let fired = TimerState::new();
        assert!(fired.mark_placed());
        assert!(fired.start_firing());
        assert_eq!(fired.status(), TimerStatus::Expired);
    }
}
