//! Every synchronisation primitive the service uses, from `std` normally and from `loom` under
//! `cfg(tierwheel_loom)`, so the loom models check the very code the service runs. The cfg is
//! our own, not bare `loom`: a downstream crate that runs its own loom models turns `loom` on
//! for every crate it builds, and tierwheel must then still build, on std.

#[cfg(tierwheel_loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicU64, Ordering},
    Arc, Mutex, MutexGuard,
};
#[cfg(not(tierwheel_loom))]
pub(crate) use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc, Mutex, MutexGuard,
};

/// Locks `mutex`, ignoring poison: no code holding a service lock runs user code or panics, so a
/// poisoned lock can only come from a panic outside the protected section.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}
