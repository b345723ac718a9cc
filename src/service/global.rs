//! The process-wide default service, for code that needs a timer service but was not handed
//! one (a [`DelayQueue`](crate::DelayQueue) made with [`new`](crate::DelayQueue::new)).

use super::TimerService;
use std::sync::OnceLock;

static GLOBAL: OnceLock<TimerService> = OnceLock::new();

/// The process-wide timer service: started on first use with the default configuration
/// (1 ms ticks, thread `"tierwheel-timer"`), then shared by every caller. It is never shut
/// down: its driver thread parks until the next deadline and ends with the process.
///
/// # Panics
///
/// On first use, if the driver thread cannot be spawned, as [`TimerService::new`].
///
/// ```
/// use std::time::Duration;
/// use tierwheel::service;
///
/// let timeout = service::global().call_later(Duration::from_secs(60), || {})?;
/// assert!(timeout.cancel());
/// assert!(std::ptr::eq(service::global(), service::global()));
/// # Ok::<(), service::ShutdownError>(())
/// ```
pub fn global() -> &'static TimerService {
    GLOBAL.get_or_init(TimerService::new)
}
