//! Every synchronisation primitive the service uses, from `std` normally and from `loom` under
//! `cfg(tierwheel_loom)`, so the loom models check the very code the service runs. The cfg is
//! our own, not bare `loom`: a downstream crate that runs its own loom models turns `loom` on
//! for every crate it builds, and tierwheel must then still build, on std.

#[cfg(tierwheel_loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicU64, AtomicU8, Ordering},
    Arc, Mutex, MutexGuard,
};
#[cfg(not(tierwheel_loom))]
pub(crate) use std::sync::{
    atomic::{AtomicU64, AtomicU8, Ordering},
    Arc, Mutex, MutexGuard,
};

/// Locks `mutex`, ignoring poison: no code holding a service lock runs user code or panics, so a
/// poisoned lock can only come from a panic outside the protected section.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// A small number naming the calling thread, fixed for its life: threads are numbered in the
/// order they first ask, so threads started together get different numbers. It only spreads
/// callers over command shards; nothing is synchronised through it.
#[cfg(not(tierwheel_loom))]
pub(crate) fn thread_index() -> usize {
    use std::sync::atomic::AtomicUsize;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    std::thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    INDEX.with(|index| *index)
}

/// Under loom: the model thread's number (0 for the model's main thread, then 1, 2, ... in
/// spawn order), the same in every execution, so the explored interleavings are replayable.
#[cfg(tierwheel_loom)]
pub(crate) fn thread_index() -> usize {
    let id = format!("{:?}", loom::thread::current().id());
    id.trim_start_matches("ThreadId(")
        .trim_end_matches(')')
        .parse()
        .expect("loom's ThreadId prints as ThreadId(n)")
}
