//! Trying again after a failure: exponential backoff with jitter, a limit on attempts, and a
//! deadline.
//!
//! Many network failures go away on their own: a server restarts and refuses connections for a
//! second, a connection is reset, a reply is lost. Trying again is then right, but not at once
//! and not forever:
//!
//! - **Backoff.** Wait before the next attempt, and wait longer each time: the first wait is
//!   [`Backoff::first`], and each later one may be up to twice as long as the one before, never
//!   longer than [`Backoff::cap`] (exponential backoff). A server that is down or overloaded is
//!   not hammered by clients retrying in a tight loop.
//! - **Jitter.** Make each wait random ([`Jitter`]). When many clients lose the same server at the
//!   same moment, fixed waits bring them all back at the same moments, again and again: a
//!   *thundering herd* that knocks the server over each time it comes back. Random waits spread
//!   them out.
//! - **Limits.** Stop after [`RetryPolicy::max_attempts`] attempts, and never start a wait that
//!   would end after the request's [`Deadline`]: the caller has promised its own caller an answer
//!   by then, one way or the other.
//!
//! Whether a failed request may be repeated at all is the caller's decision: repeating a request
//! that changes something on the server (a write) can apply it twice. See lesson 09.
//!
//! Nothing here knows about TCP or sleeps: [`Retry::after_failure`] only says how long to wait, or
//! that it is time to give up. A TCP client sleeps that long and reconnects; a UDP client can use
//! the same waits as its retransmission timeouts (send, wait up to the next wait for a reply, send
//! again), preferably with [`Jitter::Decorrelated`], whose waits never drop below
//! [`Backoff::first`].
//!
//! **Reproducible.** The random waits come from a small generator that the caller seeds: the same
//! seed gives the same waits, so tests and transcripts are the same on every run. Programs that
//! run side by side must use different seeds ([`random_seed`]): clients that share a seed share
//! their waits, and the jitter spreads nothing.
//!
//! ```
//! use std::time::Duration;
//! use socket_workbook::lesson::Deadline;
//! use socket_workbook::retry::{Backoff, Jitter, Next, Retry, RetryPolicy};
//!
//! let policy = RetryPolicy {
//!     max_attempts: 3,
//!     backoff: Backoff { first: Duration::from_millis(1), cap: Duration::from_millis(5), jitter: Jitter::Full },
//! };
//! let mut retry = Retry::new(policy, Deadline::after(Duration::from_secs(5)), 42);
//! let mut attempts = 0;
//! let outcome = loop {
//!     attempts += 1;
//!     let result: Result<&str, &str> = if attempts < 3 { Err("connection refused") } else { Ok("OK") };
//!     match result {
//!         Ok(reply) => break Ok(reply),
//!         Err(why) => match retry.after_failure() {
//!             Next::RetryAfter(wait) => std::thread::sleep(wait),
//!             Next::GiveUp(gave_up) => break Err(format!("{why}; {gave_up}")),
//!         },
//!     }
//! };
//! assert_eq!(outcome, Ok("OK"));
//! ```

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

use crate::lesson::Deadline;

/// How random each wait is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// No randomness: `first`, `2 × first`, `4 × first`, ..., up to the cap. Predictable, and
    /// therefore a herd: every client waits exactly as long as the others.
    None,
    /// "Full jitter": wait n (counting from 0) is random between zero and `first × 2ⁿ` (at most
    /// the cap). The limit doubles; the wait can be anywhere below it, even zero.
    Full,
    /// "Decorrelated jitter": each wait is random between `first` and three times the previous
    /// wait (at most the cap). Never shorter than `first`, which suits a retransmission timeout.
    Decorrelated,
}

/// How long to wait between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The base of the waits: the limit of the first one (and, for [`Jitter::Decorrelated`], the
    /// shortest wait). A `first` above `cap` counts as `cap`.
    pub first: Duration,
    /// No wait is ever longer than this.
    pub cap: Duration,
    pub jitter: Jitter,
}

impl Backoff {
    /// The waits in order, endlessly: the wait after the first failure, after the second, ...
    /// The same `seed` gives the same waits.
    ///
    /// ```
    /// use std::time::Duration;
    /// use socket_workbook::retry::{Backoff, Jitter};
    ///
    /// let ms = Duration::from_millis;
    /// let doubling = Backoff { first: ms(100), cap: ms(1000), jitter: Jitter::None };
    /// let waits: Vec<Duration> = doubling.waits(0).take(6).collect();
    /// assert_eq!(waits, [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]);
    ///
    /// let full = Backoff { jitter: Jitter::Full, ..doubling };
    /// for (n, wait) in full.waits(7).take(6).enumerate() {
    ///     assert!(wait <= ms(100 << n).min(ms(1000)));
    /// }
    /// ```
    pub fn waits(&self, seed: u64) -> Waits {
        let first = self.first.min(self.cap);
        Waits {
            backoff: Backoff { first, ..*self },
            rng: SplitMix64(seed),
            produced: 0,
            previous: first,
        }
    }

    /// `first × 2ⁿ`, at most the cap (without overflowing for any `n`).
    fn exponential(&self, n: u32) -> Duration {
        let factor = 1u32 << n.min(31);
        self.first.saturating_mul(factor).min(self.cap)
    }
}

/// The waits of one [`Backoff`], from [`Backoff::waits`].
#[derive(Debug, Clone)]
pub struct Waits {
    backoff: Backoff,
    rng: SplitMix64,
    /// How many waits this has produced.
    produced: u32,
    /// The last wait (`first` before the first one), for decorrelated jitter.
    previous: Duration,
}

impl Iterator for Waits {
    type Item = Duration;

    // ANCHOR: waits
    fn next(&mut self) -> Option<Duration> {
        let Backoff { first, cap, jitter } = self.backoff;
        let wait = match jitter {
            Jitter::None => self.backoff.exponential(self.produced),
            Jitter::Full => self
                .rng
                .between(Duration::ZERO, self.backoff.exponential(self.produced)),
            Jitter::Decorrelated => {
                let upper = self.previous.saturating_mul(3).min(cap);
                self.rng.between(first, upper)
            }
        };
        self.produced = self.produced.saturating_add(1);
        self.previous = wait;
        Some(wait)
    }
    // ANCHOR_END: waits
}

/// The limits of one request's attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Most attempts in all, the first one included: 1 means "never retry" (0 counts as 1).
    pub max_attempts: u32,
    pub backoff: Backoff,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wait this long, then try again.
    RetryAfter(Duration),
    /// Stop, and report the last failure.
    GiveUp(GaveUp),
}

/// Why [`Retry`] said to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GaveUp {
    /// All `attempts` allowed were made.
    Attempts { attempts: u32 },
    /// After `attempts` attempts, the deadline has passed, or would pass during the next wait.
    Deadline { attempts: u32 },
}

impl GaveUp {
    /// How many attempts were made.
    pub fn attempts(&self) -> u32 {
        match *self {
            GaveUp::Attempts { attempts } | GaveUp::Deadline { attempts } => attempts,
        }
    }
}

impl fmt::Display for GaveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            GaveUp::Attempts { attempts: 1 } => write!(f, "gave up after 1 attempt"),
            GaveUp::Attempts { attempts } => write!(f, "gave up after {attempts} attempts"),
            GaveUp::Deadline { attempts } => write!(
                f,
                "gave up after {attempts} attempt{}: no time left for another before the deadline",
                if attempts == 1 { "" } else { "s" }
            ),
        }
    }
}

/// The retries of one request: counts the failed attempts and says, after each one, how long to
/// wait or that it is time to give up.
#[derive(Debug, Clone)]
pub struct Retry {
    waits: Waits,
    max_attempts: u32,
    deadline: Deadline,
    failures: u32,
}

impl Retry {
    /// Retries within `policy` and `deadline`, with waits drawn from `seed`.
    pub fn new(policy: RetryPolicy, deadline: Deadline, seed: u64) -> Retry {
        Retry {
            waits: policy.backoff.waits(seed),
            max_attempts: policy.max_attempts.max(1),
            deadline,
            failures: 0,
        }
    }

    /// How many attempts have failed so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The deadline of the whole request.
    pub fn deadline(&self) -> Deadline {
        self.deadline
    }

    /// Call this after each failed attempt: wait the returned time and try again, or give up.
    pub fn after_failure(&mut self) -> Next {
        self.decide(self.deadline.time_left())
    }

    // ANCHOR: decide
    /// [`after_failure`](Retry::after_failure) with the time left given, so the tests can
    /// check the deadline without a clock.
    fn decide(&mut self, time_left: Option<Duration>) -> Next {
        self.failures = self.failures.saturating_add(1);
        let attempts = self.failures;
        if attempts >= self.max_attempts {
            return Next::GiveUp(GaveUp::Attempts { attempts });
        }
        let wait = self.waits.next().unwrap_or(self.waits.backoff.cap);
        match time_left {
            // The next attempt must start before the deadline, with some time left to work in.
            Some(left) if wait < left => Next::RetryAfter(wait),
            _ => Next::GiveUp(GaveUp::Deadline { attempts }),
        }
    }
    // ANCHOR_END: decide
}

/// A seed that differs from run to run and from process to process, for programs that were not
/// given one.
pub fn random_seed() -> u64 {
    // The standard library seeds each `RandomState` with random keys from the operating system.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    if let Ok(since_epoch) = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        hasher.write_u128(since_epoch.as_nanos());
    }
    hasher.finish()
}

/// SplitMix64: a tiny, fast generator of well-mixed 64-bit numbers (Steele, Lea and Flood, 2014).
/// Good enough to spread waits; not for anything secret.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A duration between `low` and `high`, both included (`low` if `high < low`), in whole
    /// nanoseconds.
    fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let low_ns = low.as_nanos().min(u128::from(u64::MAX));
        let high_ns = high.as_nanos().min(u128::from(u64::MAX)).max(low_ns);
        let span = high_ns - low_ns + 1;
        // Scale a 64-bit random number into the span (unbiased enough for waits).
        let offset = (u128::from(self.next_u64()) * span) >> 64;
        let nanos = (low_ns + offset) as u64;
        Duration::from_nanos(nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn jitter() -> impl Strategy<Value = Jitter> {
        prop_oneof![Just(Jitter::None), Just(Jitter::Full), Just(Jitter::Decorrelated)]
    }

    fn backoff() -> impl Strategy<Value = Backoff> {
        (0u64..5_000, 0u64..60_000, jitter()).prop_map(|(first, cap, jitter)| Backoff {
            first: ms(first),
            cap: ms(cap),
            jitter,
        })
    }

    proptest! {
        #[test]
        fn waits_never_exceed_the_cap(backoff in backoff(), seed in any::<u64>()) {
            for wait in backoff.waits(seed).take(100) {
                prop_assert!(wait <= backoff.cap, "{wait:?} > cap {:?}", backoff.cap);
            }
        }

        #[test]
        fn full_jitter_stays_below_the_doubling_limit(backoff in backoff(), seed in any::<u64>()) {
            let backoff = Backoff { jitter: Jitter::Full, ..backoff };
            let first = backoff.first.min(backoff.cap);
            for (n, wait) in backoff.waits(seed).take(40).enumerate() {
                let limit = first.saturating_mul(1 << n.min(31)).min(backoff.cap);
                prop_assert!(wait <= limit, "wait {n}: {wait:?} > {limit:?}");
            }
        }

        #[test]
        fn decorrelated_jitter_never_waits_less_than_first(backoff in backoff(), seed in any::<u64>()) {
            let backoff = Backoff { jitter: Jitter::Decorrelated, ..backoff };
            let first = backoff.first.min(backoff.cap);
            let mut previous = first;
            for wait in backoff.waits(seed).take(40) {
                prop_assert!(wait >= first && wait <= backoff.cap);
                prop_assert!(wait <= previous.saturating_mul(3));
                previous = wait;
            }
        }

        #[test]
        fn the_same_seed_gives_the_same_waits(backoff in backoff(), seed in any::<u64>()) {
            let once: Vec<Duration> = backoff.waits(seed).take(20).collect();
            let again: Vec<Duration> = backoff.waits(seed).take(20).collect();
            prop_assert_eq!(once, again);
        }

        /// With all the time in the world, exactly `max_attempts` attempts are made.
        #[test]
        fn attempts_are_bounded(backoff in backoff(), max_attempts in 0u32..20, seed in any::<u64>()) {
            let policy = RetryPolicy { max_attempts, backoff };
            let mut retry = Retry::new(policy, Deadline::after(Duration::from_secs(1)), seed);
            let mut attempts = 1;
            loop {
                match retry.decide(Some(Duration::MAX)) {
                    Next::RetryAfter(_) => attempts += 1,
                    Next::GiveUp(gave_up) => {
                        prop_assert_eq!(gave_up, GaveUp::Attempts { attempts });
                        break;
                    }
                }
                prop_assert!(attempts <= max_attempts.max(1));
            }
            prop_assert_eq!(attempts, max_attempts.max(1));
        }

        /// A simulated clock: attempts take random times (each ends by the deadline at the latest,
        /// as a caller's attempts do), and every wait the policy hands out ends before the
        /// deadline, so the request is over by then.
        #[test]
        fn no_wait_goes_past_the_deadline(
            backoff in backoff(),
            max_attempts in 1u32..50,
            budget_ms in 1u64..20_000,
            attempt_ms in proptest::collection::vec(0u64..3_000, 50),
            seed in any::<u64>(),
        ) {
            let budget = ms(budget_ms);
            let policy = RetryPolicy { max_attempts, backoff };
            let mut retry = Retry::new(policy, Deadline::after(budget), seed);
            let mut elapsed = Duration::ZERO;
            for attempt in &attempt_ms {
                elapsed = (elapsed + ms(*attempt)).min(budget);
                let left = budget.checked_sub(elapsed).filter(|left| !left.is_zero());
                match retry.decide(left) {
                    Next::RetryAfter(wait) => {
                        prop_assert!(elapsed + wait < budget, "{elapsed:?} + {wait:?} >= {budget:?}");
                        elapsed += wait;
                    }
                    Next::GiveUp(_) => break,
                }
            }
            prop_assert!(elapsed <= budget);
        }
    }

    #[test]
    fn a_passed_deadline_gives_up_at_once() {
        let policy = RetryPolicy {
            max_attempts: 5,
            backoff: Backoff {
                first: ms(10),
                cap: ms(100),
                jitter: Jitter::None,
            },
        };
        let mut retry = Retry::new(policy, Deadline::after(Duration::ZERO), 1);
        assert_eq!(
            retry.after_failure(),
            Next::GiveUp(GaveUp::Deadline { attempts: 1 })
        );
        // A wait as long as the time left is not started either: the next attempt would have none.
        let mut retry = Retry::new(policy, Deadline::after(Duration::from_secs(60)), 1);
        assert_eq!(
            retry.decide(Some(ms(10))),
            Next::GiveUp(GaveUp::Deadline { attempts: 1 })
        );
    }

    #[test]
    fn different_seeds_give_different_waits() {
        let backoff = Backoff {
            first: ms(100),
            cap: ms(10_000),
            jitter: Jitter::Full,
        };
        let a: Vec<Duration> = backoff.waits(1).take(5).collect();
        let b: Vec<Duration> = backoff.waits(2).take(5).collect();
        assert_ne!(a, b);
    }

    #[test]
    fn gave_up_reads_well() {
        assert_eq!(
            GaveUp::Attempts { attempts: 4 }.to_string(),
            "gave up after 4 attempts"
        );
        assert_eq!(
            GaveUp::Deadline { attempts: 1 }.to_string(),
            "gave up after 1 attempt: no time left for another before the deadline"
        );
    }
}
