//! The event feed's settings, and the one number a replicated call pins
//! them as (`FEED n`) when they are not the defaults, so a replica and an
//! AOF replay raise the events the primary raised.

/// About how many entries a partition's events stream keeps by default.
pub const EVENTS_MAXLEN_DEFAULT: u64 = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedSettings {
    pub on: bool,
    /// At least 1.
    pub maxlen: u64,
    pub renewals: bool,
}

impl FeedSettings {
    pub const DEFAULT: FeedSettings = FeedSettings {
        on: true,
        maxlen: EVENTS_MAXLEN_DEFAULT,
        renewals: false,
    };

    /// 0 when off, else the length limit and the renewals bit.
    pub fn code(self) -> u64 {
        if self.on {
            self.maxlen.max(1).saturating_mul(2) | u64::from(self.renewals)
        } else {
            0
        }
    }

    pub fn from_code(c: u64) -> FeedSettings {
        FeedSettings {
            on: c != 0,
            maxlen: (c / 2).max(1),
            renewals: c & 1 == 1,
        }
    }
}
