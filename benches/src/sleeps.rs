//! Registered sleeps, as the service bench's `vs_tokio` groups and the `sleeps` loop hold them:
//! one per connection, due in [`IDLE`], polled once.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Waker};
use std::time::Duration;

use tierwheel::service::{Handle, Sleep};

/// How far out each connection's sleep is due.
pub const IDLE: Duration = Duration::from_secs(30);

/// Polls a future once with a waker that does nothing: registers a sleep (tierwheel's or
/// tokio's).
///
/// # Panics
///
/// If the future completes: a sleep due in [`IDLE`] has not.
pub fn poll_once<F: Future + ?Sized>(future: Pin<&mut F>) {
    let mut cx = Context::from_waker(Waker::noop());
    assert!(future.poll(&mut cx).is_pending(), "a 30 s sleep completed");
}

/// A new sleep on `handle`, due in [`IDLE`] and registered.
pub fn registered(handle: &Handle) -> Sleep {
    let mut sleep = handle.sleep(IDLE);
    poll_once(Pin::new(&mut sleep));
    sleep
}
