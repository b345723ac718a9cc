//! Duration <-> tick conversion: never early, the first tick that is not early, saturating at
//! the end of time, monotonic, never a panic; and `ManualClock` never goes backwards.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tierwheel::clock::{Clock, ManualClock, Resolution, ResolutionError};

/// A time, biased toward the ends of the range and tick boundaries.
#[derive(Arbitrary, Debug)]
enum Time {
    Raw {
        secs: u64,
        nanos: u32,
    },
    Nanos(u64),
    /// Start of tick `ticks`, plus `offset` nanoseconds (which may be negative).
    TickEdge {
        ticks: u64,
        offset: i8,
    },
    NearMax(u32),
    Max,
}

impl Time {
    fn duration(&self, tick_nanos: u64) -> Duration {
        match *self {
            Time::Raw { secs, nanos } => Duration::new(secs, nanos % 1_000_000_000),
            Time::Nanos(n) => Duration::from_nanos(n),
            Time::TickEdge { ticks, offset } => {
                let start = i128::from(ticks).saturating_mul(i128::from(tick_nanos));
                from_nanos(u128::try_from(start.saturating_add(i128::from(offset))).unwrap_or(0))
            }
            Time::NearMax(back) => Duration::MAX - Duration::from_nanos(u64::from(back)),
            Time::Max => Duration::MAX,
        }
    }
}

fn from_nanos(nanos: u128) -> Duration {
    match u64::try_from(nanos / 1_000_000_000) {
        Ok(secs) => Duration::new(secs, (nanos % 1_000_000_000) as u32),
        Err(_) => Duration::MAX,
    }
}

#[derive(Arbitrary, Debug)]
enum Tick {
    Nanos(u64),
    Common(u8),
    Raw { secs: u64, nanos: u32 },
}

#[derive(Arbitrary, Debug)]
struct Input {
    tick: Tick,
    a: Time,
    b: Time,
    clock_steps: Vec<(bool, Time)>,
}

fuzz_target!(|input: Input| {
    let resolution = match input.tick {
        Tick::Nanos(n) => Resolution::from_nanos(n),
        Tick::Common(i) => Ok([
            Resolution::NANOSECOND,
            Resolution::MICROSECOND,
            Resolution::MILLISECOND,
        ][usize::from(i) % 3]),
        Tick::Raw { secs, nanos } => Resolution::new(Duration::new(secs, nanos % 1_000_000_000)),
    };
    let r = match resolution {
        Ok(r) => r,
        Err(err) => {
            assert!(
                matches!(err, ResolutionError::Zero | ResolutionError::TooLong),
                "{err:?}"
            );
            return;
        }
    };
    let tick_nanos = u64::try_from(r.tick().as_nanos()).expect("a tick fits u64 nanoseconds");
    assert!(tick_nanos > 0);

    let (a, b) = (input.a.duration(tick_nanos), input.b.duration(tick_nanos));
    for d in [a, b] {
        let ceil = r.ticks_ceil(d);
        let floor = r.ticks_floor(d);
        // Never early, and not a tick later than needed (short of the end of time).
        assert!(r.duration(ceil) >= d, "{r:?} {d:?}: ceil {ceil} early");
        if ceil != 0 && ceil != u64::MAX {
            assert!(r.duration(ceil - 1) < d, "{r:?} {d:?}: ceil {ceil} late");
        }
        if d == Duration::MAX {
            assert_eq!((ceil, floor), (u64::MAX, u64::MAX));
        } else {
            assert!(
                floor < u64::MAX,
                "{r:?} {d:?}: finite time reached the end of time"
            );
        }
        if ceil == u64::MAX && d != Duration::MAX {
            let last = r.duration(u64::MAX - 1);
            assert!(
                d > last || last == Duration::MAX,
                "{r:?} {d:?}: saturated early"
            );
        }
        // A clock reading reaches the tick it floors to, and no later one.
        assert!(
            r.duration(floor) <= d,
            "{r:?} {d:?}: floor {floor} not reached"
        );
        if floor < u64::MAX - 1 {
            assert!(
                r.duration(floor + 1) > d,
                "{r:?} {d:?}: floor {floor} too low"
            );
        }
        assert!(floor <= ceil);
        // A deadline at `d` is due at a clock reading `t` only if `t >= d`.
        let due_at = r.duration(ceil);
        assert!(r.ticks_floor(due_at) >= ceil || ceil == u64::MAX);
    }
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    assert!(r.ticks_ceil(lo) <= r.ticks_ceil(hi));
    assert!(r.ticks_floor(lo) <= r.ticks_floor(hi));
    // Never early across the pair: a reading `lo` never reaches a deadline `hi > lo`.
    if lo < hi {
        assert!(
            r.ticks_floor(lo) < r.ticks_ceil(hi),
            "{r:?}: {lo:?} reaches {hi:?}"
        );
    }

    let clock = ManualClock::new();
    let mut last = clock.now();
    for (advance, step) in input.clock_steps.iter().take(16) {
        let d = step.duration(tick_nanos);
        if *advance {
            clock.advance(d);
        } else {
            let result = clock.set(d);
            let capped = Duration::from_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
            assert_eq!(result.is_ok(), capped >= last, "set({d:?}) from {last:?}");
        }
        let now = clock.now();
        assert!(
            now >= last,
            "ManualClock went back from {last:?} to {now:?}"
        );
        last = now;
    }
});
