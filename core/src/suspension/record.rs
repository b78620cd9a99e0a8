//! What an execution's suspensions keep: its waitpoints (pending ones made
//! ahead of a suspension, and those of the current or last suspension),
//! that suspension, and the signals delivered to those waitpoints. A new
//! suspension drops what the last one left (its closed waitpoints and
//! their signals), so the signal cap counts one suspension, not a
//! lifetime, and an old waitpoint's token opens nothing.

use crate::base::ids::Uuid;
use crate::base::state::byte_enum;
use crate::suspension::condition::{Condition, Effect, Seen};

byte_enum!(WaitpointState {
    Pending = 0 => "pending",
    Active = 1 => "active",
    Closed = 2 => "closed",
});

byte_enum!(
    /// Why a waitpoint or suspension closed (the reference's reasons).
    CloseReason {
        Resumed = 0 => "resumed",
        AlreadySatisfied = 1 => "already_satisfied",
        Cancelled = 2 => "cancelled",
        Ended = 3 => "execution_ended",
        TimedOutFail = 4 => "timed_out_fail",
        TimedOutCancel = 5 => "timed_out_cancel",
        TimedOutExpire = 6 => "timed_out_expire",
        TimedOutAutoResume = 7 => "timed_out_auto_resume",
        Proactive = 8 => "proactive_close",
        NeverCommitted = 9 => "never_committed",
        Expired = 10 => "expired",
    }
);

byte_enum!(
    /// What a suspension's timeout does.
    TimeoutBehavior {
        Fail = 0 => "fail",
        Cancel = 1 => "cancel",
        Expire = 2 => "expire",
        AutoResume = 3 => "auto_resume",
        Escalate = 4 => "escalate",
    }
);

impl TimeoutBehavior {
    /// A behaviour by name; the reference's long name for auto-resume
    /// (whose timeout signal it never sent) is the same behaviour.
    pub fn from_arg(s: &[u8]) -> Option<TimeoutBehavior> {
        if s.eq_ignore_ascii_case(b"auto_resume_with_timeout_signal") {
            return Some(TimeoutBehavior::AutoResume);
        }
        TimeoutBehavior::parse(s)
    }

    pub fn close_reason(self) -> CloseReason {
        match self {
            TimeoutBehavior::Fail => CloseReason::TimedOutFail,
            TimeoutBehavior::Cancel => CloseReason::TimedOutCancel,
            TimeoutBehavior::Expire => CloseReason::TimedOutExpire,
            _ => CloseReason::TimedOutAutoResume,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waitpoint {
    pub id: Uuid,
    pub key: Box<[u8]>,
    pub state: WaitpointState,
    /// The attempt it was made for.
    pub attempt_index: u32,
    /// Signed into its token.
    pub created_at: u64,
    /// A pending waitpoint closes (`never_committed`) at this time.
    pub expires_at: Option<u64>,
    pub activated_at: Option<u64>,
    pub closed: Option<(u64, CloseReason)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suspension {
    pub id: Uuid,
    pub attempt_index: u32,
    /// The fence it was made under: a retry of the same suspend (same
    /// idempotency key, same fence) gets the stored outcome.
    pub lease_id: Uuid,
    pub lease_epoch: u64,
    pub attempt_id: Uuid,
    pub idempotency: Option<Box<[u8]>>,
    pub reason: Box<[u8]>,
    pub created_at: u64,
    pub timeout_at: Option<u64>,
    pub behavior: TimeoutBehavior,
    pub resume_delay_ms: u64,
    pub condition: Condition,
    /// Its waitpoints, the primary first.
    pub waitpoints: Vec<Uuid>,
    pub closed: Option<(u64, CloseReason)>,
    /// The signal that satisfied the condition.
    pub closer: Option<Uuid>,
}

/// A signal as delivered, byte-exact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signal {
    pub id: Uuid,
    pub waitpoint: Uuid,
    pub name: Box<[u8]>,
    pub category: Box<[u8]>,
    pub source_type: Box<[u8]>,
    pub source_identity: Box<[u8]>,
    pub correlation: Box<[u8]>,
    pub payload: Option<Box<[u8]>>,
    pub idempotency: Option<Box<[u8]>>,
    /// A retry with the same idempotency key is a duplicate until then.
    pub dedup_until: u64,
    pub accepted_at: u64,
    pub effect: Effect,
}

impl Signal {
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Signal>()
            + self.name.len()
            + self.category.len()
            + self.source_type.len()
            + self.source_identity.len()
            + self.correlation.len()
            + self.payload.as_ref().map_or(0, |p| p.len())
            + self.idempotency.as_ref().map_or(0, |p| p.len())
    }
}

/// An execution's waitpoints, suspension and signals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Waits {
    pub waitpoints: Vec<Waitpoint>,
    pub suspension: Option<Suspension>,
    pub signals: Vec<Signal>,
}

impl Waits {
    pub fn is_empty(&self) -> bool {
        self.waitpoints.is_empty() && self.suspension.is_none() && self.signals.is_empty()
    }

    pub fn waitpoint(&self, id: Uuid) -> Option<&Waitpoint> {
        self.waitpoints.iter().find(|w| w.id == id)
    }

    /// The open suspension, if any.
    pub fn open(&self) -> Option<&Suspension> {
        self.suspension.as_ref().filter(|s| s.closed.is_none())
    }

    /// Pending and active waitpoints.
    pub fn open_waitpoints(&self) -> impl Iterator<Item = &Waitpoint> {
        self.waitpoints.iter().filter(|w| w.closed.is_none())
    }

    /// The signals that count towards the open (or last) suspension's
    /// condition, as the evaluator sees them.
    pub fn seen(&self) -> Vec<Seen<'_>> {
        self.counted()
            .filter_map(|g| {
                let w = self.waitpoint(g.waitpoint)?;
                Some(seen(g, w))
            })
            .collect()
    }

    /// When something here falls due: the open suspension's timeout, or a
    /// pending waitpoint's expiry.
    pub fn next_due(&self) -> Option<u64> {
        let timeout = self.open().and_then(|s| s.timeout_at);
        self.waitpoints
            .iter()
            .filter(|w| w.state == WaitpointState::Pending)
            .filter_map(|w| w.expires_at)
            .chain(timeout)
            .min()
    }

    /// Closes the waitpoints of the open suspension (and the suspension)
    /// with `reason`.
    pub fn close_suspension(&mut self, reason: CloseReason, closer: Option<Uuid>, now: u64) {
        let Some(s) = self.suspension.as_mut().filter(|s| s.closed.is_none()) else {
            return;
        };
        s.closed = Some((now, reason));
        s.closer = closer;
        let ids = s.waitpoints.clone();
        for w in &mut self.waitpoints {
            if ids.contains(&w.id) && w.closed.is_none() {
                close(w, reason, now);
            }
        }
    }

    /// The execution ended: everything still open closes.
    pub fn end(&mut self, reason: CloseReason, now: u64) {
        self.close_suspension(reason, None, now);
        for w in &mut self.waitpoints {
            if w.closed.is_none() {
                close(w, reason, now);
            }
        }
    }

    /// Closes pending waitpoints whose time ran out; true if any did.
    pub fn expire_pending(&mut self, now: u64) -> bool {
        let mut any = false;
        for w in &mut self.waitpoints {
            if w.state == WaitpointState::Pending && w.expires_at.is_some_and(|e| e <= now) {
                close(w, CloseReason::NeverCommitted, now);
                any = true;
            }
        }
        any
    }

    /// The signals that satisfied the last suspension, if it resumed
    /// (by its condition, or already at suspend).
    pub fn satisfiers(&self) -> Vec<&Signal> {
        let Some(s) = &self.suspension else {
            return Vec::new();
        };
        if !matches!(
            s.closed,
            Some((_, CloseReason::Resumed | CloseReason::AlreadySatisfied))
        ) {
            return Vec::new();
        }
        self.counted().collect()
    }

    /// The signals that counted towards the (open or last) suspension's
    /// condition.
    fn counted(&self) -> impl Iterator<Item = &Signal> {
        let ids: &[Uuid] = self.suspension.as_ref().map_or(&[], |s| &s.waitpoints);
        self.signals
            .iter()
            .filter(move |g| g.effect.counted() && ids.contains(&g.waitpoint))
    }

    /// Heap bytes, for MEMORY USAGE (walks the signals: bounded by the
    /// per-suspension cap).
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Waits>()
            + self
                .waitpoints
                .iter()
                .map(|w| std::mem::size_of::<Waitpoint>() + w.key.len())
                .sum::<usize>()
            + self.suspension.as_ref().map_or(0, |s| {
                std::mem::size_of::<Suspension>() + s.reason.len() + s.waitpoints.len() * 16
            })
            + self.signals.iter().map(Signal::heap_bytes).sum::<usize>()
    }
}

pub fn seen<'a>(g: &'a Signal, w: &'a Waitpoint) -> Seen<'a> {
    Seen {
        key: &w.key,
        waitpoint: w.id.0,
        signal: g.id.0,
        name: &g.name,
        source: (&g.source_type, &g.source_identity),
    }
}

pub fn close(w: &mut Waitpoint, reason: CloseReason, now: u64) {
    w.state = WaitpointState::Closed;
    w.closed = Some((now, reason));
}

/// The waitpoint ids of a suspension, derived from its id so a replica
/// (given the suspension id) derives the same ones.
pub fn waitpoint_id(suspension: Uuid, i: usize) -> Uuid {
    // splitmix64 of each half, offset by the position: distinct per
    // position, and as random as the suspension id.
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let i = i as u64 + 1;
    let hi = mix((suspension.0 >> 64) as u64 ^ i);
    let lo = mix(suspension.0 as u64 ^ i.rotate_left(32));
    // Keep the version-4 and variant bits of a random uuid.
    let v = (u128::from(hi) << 64 | u128::from(lo)) & !(0xf << 76) & !(0x3 << 62);
    Uuid(v | (0x4 << 76) | (0x2 << 62))
}
