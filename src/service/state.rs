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

/// Where a timer is in its life, as read from a [`TimerState`].
///
/// ```
/// use tierwheel::service::{TimerState, TimerStatus};
///
/// let state = TimerState::new();
/// assert_eq!(state.status(), TimerStatus::Pending);
/// assert!(state.cancel());
/// assert_eq!(state.status(), TimerStatus::Cancelled);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
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
/// This is the exact type [`TimerService`](super::TimerService) uses; it is public so that the
/// loom models and the `cancel_race` fuzz target can drive it. Each `try`-style method is one
/// compare-and-swap out of [`TimerStatus::Pending`], so for every timer exactly one of
/// [`cancel`](Self::cancel), [`start_firing`](Self::start_firing) and
/// [`claim_unfired`](Self::claim_unfired) ever returns `true`, once.
///
/// ```
/// use tierwheel::service::TimerState;
///
/// let state = TimerState::new();
/// assert!(state.start_firing()); // the driver wins the race
/// assert!(!state.cancel()); // too late: the callback has started
/// assert!(!state.claim_unfired());
/// assert!(state.is_expired());
/// ```
pub struct TimerState {
    word: AtomicU8,
}

impl TimerState {
    /// A pending timer.
    ///
    /// ```
    /// assert!(tierwheel::service::TimerState::new().is_pending());
    /// ```
    pub fn new() -> Self {
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

    /// `PENDING -> CANCELLED`, as [`cancel`](Self::cancel); if this call won, whether the
    /// driver had placed the timer in its scheduler first.
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

    /// `PENDING -> CANCELLED`. True iff this call stopped the callback.
    ///
    /// ```
    /// let state = tierwheel::service::TimerState::new();
    /// assert!(state.cancel());
    /// assert!(!state.cancel()); // a second cancel never wins
    /// ```
    pub fn cancel(&self) -> bool {
        self.leave_pending(CANCELLED)
    }

    /// `PENDING -> EXPIRED`, taken by the driver just before it runs the callback. True iff the
    /// caller must run it.
    ///
    /// ```
    /// let state = tierwheel::service::TimerState::new();
    /// assert!(state.cancel());
    /// assert!(!state.start_firing()); // cancelled: the driver drops the callback
    /// ```
    pub fn start_firing(&self) -> bool {
        self.leave_pending(EXPIRED)
    }

    /// `PENDING -> UNFIRED`, taken by shutdown for each timer it hands back. True iff the timer
    /// now belongs to the caller (who may run it, see [`finish_unfired`](Self::finish_unfired)).
    ///
    /// ```
    /// let state = tierwheel::service::TimerState::new();
    /// assert!(state.claim_unfired());
    /// assert!(!state.cancel());
    /// ```
    pub fn claim_unfired(&self) -> bool {
        self.leave_pending(UNFIRED)
    }

    /// `UNFIRED -> EXPIRED`: the owner of a timer handed back by shutdown is about to run it.
    /// True iff the timer was unfired (and so is now expired).
    ///
    /// ```
    /// let state = tierwheel::service::TimerState::new();
    /// assert!(!state.finish_unfired()); // only an unfired timer can be run this way
    /// assert!(state.claim_unfired());
    /// assert!(state.finish_unfired());
    /// assert!(state.is_expired());
    /// ```
    pub fn finish_unfired(&self) -> bool {
        self.transition(UNFIRED, EXPIRED).is_some()
    }

    /// The current status.
    ///
    /// ```
    /// use tierwheel::service::{TimerState, TimerStatus};
    ///
    /// let state = TimerState::new();
    /// state.claim_unfired();
    /// assert_eq!(state.status(), TimerStatus::Unfired);
    /// ```
    pub fn status(&self) -> TimerStatus {
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
    ///
    /// ```
    /// assert!(tierwheel::service::TimerState::new().is_pending());
    /// ```
    pub fn is_pending(&self) -> bool {
        self.status() == TimerStatus::Pending
    }

    /// Whether a `cancel` won.
    ///
    /// ```
    /// let state = tierwheel::service::TimerState::new();
    /// state.cancel();
    /// assert!(state.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.status() == TimerStatus::Cancelled
    }

    /// Whether the callback has started.
    ///
    /// ```
    /// let state = tierwheel::service::TimerState::new();
    /// state.start_firing();
    /// assert!(state.is_expired());
    /// ```
    pub fn is_expired(&self) -> bool {
        self.status() == TimerStatus::Expired
    }
}

impl Default for TimerState {
    /// A pending timer.
    ///
    /// ```
    /// assert!(tierwheel::service::TimerState::default().is_pending());
    /// ```
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for TimerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TimerState").field(&self.status()).finish()
    }
}
