//! The forwarder's decisions as a pure state machine: what to send next and when to try
//! again, driven by `now` and by what the journal and the server said. The tokio shell in
//! `forwarder` does the I/O.

use chrono::{DateTime, TimeDelta, Utc};
use protocol::Seq;
use protocol::wire::MAX_BATCH_ENTRIES;

/// Where the journal stands, as the forwarder needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// The first entry not yet acknowledged by the server.
    pub first_pending: Option<Seq>,
    /// The journal's last entry.
    pub last_seq: Seq,
}

impl Cursor {
    /// The last entry the agent counts as acknowledged (the server acknowledges in order).
    pub fn delivered_through(&self) -> Seq {
        self.first_pending.map_or(self.last_seq, |first| Seq(first.0 - 1))
    }

    /// How many entries await the server's acknowledgement: the journal's tail from the
    /// first of them, counted with two index lookups rather than a scan.
    pub fn pending(&self) -> u64 {
        self.last_seq.0 - self.delivered_through().0
    }
}

/// What to do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Send entries from this seq on (at most [`Forwarder::max_entries`]).
    Send {
        /// The first entry of the batch.
        from: Seq,
    },
    /// Send a batch without entries: the device's figures only.
    Heartbeat,
    /// Nothing to do before this time (or before new entries, whichever comes first).
    Wait {
        /// When to look again.
        until: DateTime<Utc>,
    },
}

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered with per-entry results.
    Delivered {
        /// The highest seq it holds now.
        accepted_through: Seq,
    },
    /// The server holds less than the batch assumed: resend from `accepted_through + 1`.
    Gap {
        /// The highest seq it holds.
        accepted_through: Seq,
    },
    /// The body was too large for the server: send fewer entries.
    TooLarge,
    /// Anything else: the network, a timeout, a refusal, a server error.
    Failed,
}

/// The forwarder's memory between attempts.
#[derive(Clone, Debug)]
pub struct Forwarder {
    heartbeat: TimeDelta,
    retry_base: TimeDelta,
    retry_max: TimeDelta,
    failures: u32,
    not_before: Option<DateTime<Utc>>,
    resume_from: Option<Seq>,
    last_gap: Option<Seq>,
    last_contact: Option<DateTime<Utc>>,
    max_entries: usize,
}

impl Forwarder {
    /// A forwarder that sends a heartbeat every `heartbeat` when idle and waits at most
    /// `retry_max` between failed attempts.
    pub fn new(heartbeat: TimeDelta, retry_max: TimeDelta) -> Forwarder {
        Forwarder {
            heartbeat,
            retry_base: TimeDelta::milliseconds(250).min(retry_max),
            retry_max,
            failures: 0,
            not_before: None,
            resume_from: None,
            last_gap: None,
            last_contact: None,
            max_entries: MAX_BATCH_ENTRIES,
        }
    }

    /// The most entries the next batch may carry.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Consecutive failed attempts.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// What to do at `now`.
    pub fn next(&self, now: DateTime<Utc>, cursor: Cursor) -> Step {
        if let Some(until) = self.not_before.filter(|&t| t > now) {
            return Step::Wait { until };
        }
        let from = self.resume_from.filter(|&seq| seq <= cursor.last_seq).or(cursor.first_pending);
        if let Some(from) = from {
            return Step::Send { from };
        }
        match self.last_contact {
            Some(at) if now - at < self.heartbeat => Step::Wait { until: at + self.heartbeat },
            _ => Step::Heartbeat,
        }
    }

    /// Records how the attempt made at `now` from `cursor` ended; `jitter` is uniform in
    /// `[0, 1)`.
    pub fn outcome(&mut self, now: DateTime<Utc>, cursor: Cursor, outcome: Outcome, jitter: f64) {
        match outcome {
            Outcome::Delivered { accepted_through } => {
                self.succeeded(now);
                self.max_entries = (self.max_entries * 2).min(MAX_BATCH_ENTRIES);
                // The server holds less than the agent counts as acknowledged — a rewind under
                // way, or a server restored from a backup (a heartbeat tells): go on from there.
                self.resume_from = (accepted_through < cursor.delivered_through()).then(|| accepted_through.next());
                self.last_gap = None;
            }
            Outcome::Gap { accepted_through } => {
                self.last_contact = Some(now);
                if self.last_gap == Some(accepted_through) {
                    // The same gap twice: resending did not help, so wait like any failure.
                    self.fail(now, jitter);
                } else {
                    self.not_before = None;
                }
                self.last_gap = Some(accepted_through);
                self.resume_from = Some(accepted_through.next());
            }
            // One entry is as small as a batch gets: then it is a failure like any other.
            Outcome::TooLarge if self.max_entries == 1 => self.fail(now, jitter),
            Outcome::TooLarge => {
                self.max_entries /= 2;
                self.not_before = None;
            }
            Outcome::Failed => self.fail(now, jitter),
        }
    }

    fn succeeded(&mut self, now: DateTime<Utc>) {
        self.failures = 0;
        self.not_before = None;
        self.last_contact = Some(now);
    }

    /// Capped exponential backoff with jitter: the n-th failure in a row waits between half
    /// and all of `min(retry_max, base · 2ⁿ⁻¹)`, so registers that lost the server together
    /// do not come back together.
    fn fail(&mut self, now: DateTime<Utc>, jitter: f64) {
        self.failures += 1;
        let exponent = (self.failures - 1).min(20);
        let ceiling = (self.retry_base * 2i32.pow(exponent)).min(self.retry_max);
        let wait = ceiling.num_milliseconds() as f64 * (0.5 + 0.5 * jitter.clamp(0.0, 1.0));
        self.not_before = Some(now + TimeDelta::milliseconds(wait as i64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    fn cursor(first_pending: Option<u64>, last: u64) -> Cursor {
        Cursor { first_pending: first_pending.map(Seq), last_seq: Seq(last) }
    }

    fn forwarder() -> Forwarder {
        Forwarder::new(TimeDelta::minutes(5), TimeDelta::seconds(60))
    }

    #[test]
    fn sends_pending_entries_then_heartbeats_when_idle() {
        let mut f = forwarder();
        assert_eq!(f.next(t(0), cursor(Some(7), 9)), Step::Send { from: Seq(7) });
        assert_eq!(f.next(t(0), cursor(None, 9)), Step::Heartbeat, "first contact at start");
        f.outcome(t(0), cursor(Some(7), 9), Outcome::Delivered { accepted_through: Seq(9) }, 0.5);
        assert_eq!(f.next(t(10), cursor(None, 9)), Step::Wait { until: t(300) });
        assert_eq!(f.next(t(300), cursor(None, 9)), Step::Heartbeat);
        assert_eq!(f.next(t(10), cursor(Some(10), 10)), Step::Send { from: Seq(10) }, "new entries go at once");
    }

    #[test]
    fn failures_back_off_exponentially_with_jitter_up_to_the_cap() {
        let mut f = forwarder();
        let mut waits = Vec::new();
        for _ in 0..12 {
            f.outcome(t(0), cursor(Some(1), 1), Outcome::Failed, 1.0);
            let Step::Wait { until } = f.next(t(0), cursor(Some(1), 1)) else { panic!() };
            waits.push((until - t(0)).num_milliseconds());
        }
        assert_eq!(&waits[..4], &[250, 500, 1000, 2000]);
        assert!(waits.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*waits.last().unwrap(), 60_000, "capped");
        f.outcome(t(0), cursor(Some(1), 1), Outcome::Failed, 0.0);
        let Step::Wait { until } = f.next(t(0), cursor(Some(1), 1)) else { panic!() };
        assert_eq!((until - t(0)).num_milliseconds(), 30_000, "jitter takes up to half off");
        // Once the wait is over it tries again, and success resets the backoff.
        assert_eq!(f.next(t(60), cursor(Some(1), 1)), Step::Send { from: Seq(1) });
        f.outcome(t(60), cursor(Some(1), 1), Outcome::Delivered { accepted_through: Seq(1) }, 0.0);
        assert_eq!(f.failures(), 0);
        f.outcome(t(61), cursor(Some(2), 2), Outcome::Failed, 1.0);
        assert_eq!(f.next(t(61), cursor(Some(2), 2)), Step::Wait { until: t(61) + TimeDelta::milliseconds(250) });
    }

    #[test]
    fn a_gap_rewinds_to_what_the_server_holds_and_walks_forward() {
        let mut f = forwarder();
        f.outcome(t(0), cursor(Some(500), 900), Outcome::Gap { accepted_through: Seq(100) }, 0.0);
        assert_eq!(f.next(t(0), cursor(Some(500), 900)), Step::Send { from: Seq(101) }, "at once");
        f.outcome(t(1), cursor(Some(500), 900), Outcome::Delivered { accepted_through: Seq(350) }, 0.0);
        assert_eq!(f.next(t(1), cursor(Some(500), 900)), Step::Send { from: Seq(351) }, "walks forward");
        f.outcome(t(1), cursor(Some(500), 900), Outcome::Delivered { accepted_through: Seq(600) }, 0.0);
        assert_eq!(f.next(t(1), cursor(Some(601), 900)), Step::Send { from: Seq(601) });
        f.outcome(t(2), cursor(Some(601), 900), Outcome::Delivered { accepted_through: Seq(900) }, 0.0);
        assert_eq!(f.next(t(2), cursor(None, 900)), Step::Wait { until: t(2) + TimeDelta::minutes(5) });
    }

    #[test]
    fn the_same_gap_twice_backs_off_instead_of_looping() {
        let mut f = forwarder();
        f.outcome(t(0), cursor(Some(9), 9), Outcome::Gap { accepted_through: Seq(5) }, 0.0);
        f.outcome(t(0), cursor(Some(9), 9), Outcome::Gap { accepted_through: Seq(5) }, 0.0);
        assert!(matches!(f.next(t(0), cursor(Some(9), 9)), Step::Wait { .. }));
    }

    #[test]
    fn too_large_halves_the_batch_down_to_one_then_backs_off_and_success_restores_it() {
        let mut f = forwarder();
        let c = cursor(Some(1), 9);
        f.outcome(t(0), c, Outcome::TooLarge, 0.0);
        assert_eq!(f.max_entries(), MAX_BATCH_ENTRIES / 2);
        assert_eq!(f.next(t(0), c), Step::Send { from: Seq(1) });
        while f.max_entries() > 1 {
            f.outcome(t(0), c, Outcome::TooLarge, 0.0);
        }
        assert_eq!(f.next(t(0), c), Step::Send { from: Seq(1) });
        f.outcome(t(0), c, Outcome::TooLarge, 0.0);
        assert!(matches!(f.next(t(0), c), Step::Wait { .. }), "no hammering with single entries");
        for _ in 0..10 {
            f.outcome(t(1), c, Outcome::Delivered { accepted_through: Seq(1) }, 0.0);
        }
        assert_eq!(f.max_entries(), MAX_BATCH_ENTRIES);
    }

    #[test]
    fn a_heartbeat_answered_by_a_server_that_lost_entries_rewinds() {
        let mut f = forwarder();
        f.outcome(t(0), cursor(None, 9), Outcome::Delivered { accepted_through: Seq(5) }, 0.0);
        assert_eq!(f.next(t(1), cursor(None, 9)), Step::Send { from: Seq(6) });
    }
}
