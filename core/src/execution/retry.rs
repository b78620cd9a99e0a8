//! Retry backoff. Fixed, or exponential with a cap: `initial * multiplier ^
//! retries`, at most `max`. With jitter the delay is drawn uniformly from
//! the upper half, `[d/2, d]` ("equal jitter"), so retries spread out but
//! never come sooner than half the planned backoff. Integer-only so the
//! result is the same everywhere; the random draw comes from the caller and
//! is replicated as the resulting time.

/// Retry policy stored at submit; applied by `fail` (a later issue).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub backoff: Backoff,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backoff {
    Fixed {
        delay_ms: u64,
    },
    /// `multiplier_milli` is the multiplier in thousandths, so the policy is
    /// integer-only and replays identically everywhere.
    Exponential {
        initial_ms: u64,
        max_ms: u64,
        multiplier_milli: u32,
        jitter: bool,
    },
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            backoff: Backoff::Exponential {
                initial_ms: 1000,
                max_ms: 60_000,
                multiplier_milli: 2000,
                jitter: false,
            },
        }
    }
}

pub fn backoff_ms(b: &Backoff, retries_so_far: u32, jitter: u64) -> u64 {
    match *b {
        Backoff::Fixed { delay_ms } => delay_ms,
        Backoff::Exponential {
            initial_ms,
            max_ms,
            multiplier_milli,
            jitter: with_jitter,
        } => {
            let mut d = initial_ms.min(max_ms);
            for _ in 0..retries_so_far {
                d = (u128::from(d) * u128::from(multiplier_milli) / 1000).min(u128::from(max_ms))
                    as u64;
                if d >= max_ms {
                    break;
                }
            }
            if with_jitter && d > 1 {
                let half = d / 2;
                half + jitter % (d - half + 1)
            } else {
                d
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_with_cap_and_jitter() {
        let b = Backoff::Exponential {
            initial_ms: 100,
            max_ms: 1000,
            multiplier_milli: 2000,
            jitter: false,
        };
        let seq: Vec<u64> = (0..6).map(|r| backoff_ms(&b, r, 0)).collect();
        assert_eq!(seq, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff_ms(&b, u32::MAX, 0), 1000);
        let j = Backoff::Exponential {
            initial_ms: 100,
            max_ms: 1000,
            multiplier_milli: 2000,
            jitter: true,
        };
        for r in 0..1000u64 {
            let d = backoff_ms(&j, 2, r.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            assert!((200..=400).contains(&d), "{d}");
        }
        assert_eq!(backoff_ms(&Backoff::Fixed { delay_ms: 7 }, 9, 123), 7);
        let huge = Backoff::Exponential {
            initial_ms: u64::MAX,
            max_ms: u64::MAX,
            multiplier_milli: 100_000,
            jitter: false,
        };
        assert_eq!(backoff_ms(&huge, 3, 0), u64::MAX);
    }
}
