//! Time, injected: the binary reads the system clock, tests drive a manual one.

use std::sync::Mutex;

use chrono::{DateTime, FixedOffset, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;

    /// Now, in the register's time zone and to the whole second, as documents carry it
    /// (`2024-10-11T15:04:50+03:00`).
    fn now_in(&self, zone: Tz) -> DateTime<FixedOffset> {
        let now = self.now();
        let whole = now.with_nanosecond(0).unwrap_or(now);
        whole.with_timezone(&zone).fixed_offset()
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until told to move: for tests.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock showing `at`.
    pub fn new(at: DateTime<Utc>) -> ManualClock {
        ManualClock(Mutex::new(at))
    }

    /// Sets the time.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().expect("clock lock") = at;
    }

    /// Moves the time forward.
    pub fn advance(&self, by: TimeDelta) {
        *self.0.lock().expect("clock lock") += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock lock")
    }
}
