//! One attempt's output stream as the execution's record knows it: how
//! many frames it took, what of it is never trimmed, its rolling summary,
//! and whether it is closed. The frames themselves live in a real Valkey
//! stream (see `keys`); this decides what an append may do and how the
//! stream is trimmed after it.

use crate::base::limits::{
    ATTEMPT_FRAMES_MAX, ATTEMPT_FRAME_BYTES_MAX, BEST_EFFORT_MAXLEN, FRAME_PAYLOAD_MAX,
    SUMMARY_BYTES_MAX, SUMMARY_WINDOW,
};
use crate::base::state::byte_enum;
use crate::streams::entry::EntryId;
use crate::streams::errors::StreamError;
use crate::streams::merge_patch;

byte_enum!(Mode {
    Durable = 0 => "durable",
    Summary = 1 => "summary",
    BestEffort = 2 => "best_effort",
});

byte_enum!(CloseReason {
    Completed = 0 => "completed",
    Failed = 1 => "failed",
    Cancelled = 2 => "cancelled",
    Expired = 3 => "expired",
    LeaseExpired = 4 => "lease_expired",
    LeaseRevoked = 5 => "lease_revoked",
    Reclaimed = 6 => "reclaimed",
});

/// The rolling summary: the merged document and how often it changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The document's JSON text (an object).
    pub doc: Box<str>,
    pub version: u64,
    pub first_at: u64,
    pub last_at: u64,
}

/// What the record keeps of one attempt's stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    pub attempt: u32,
    /// Frames appended, trimmed or not (the reply's frame count).
    pub frames: u64,
    /// Frames the module never trims, and their payload bytes: durable
    /// frames, and every frame once the stream holds a durable one.
    pub kept_frames: u64,
    pub kept_bytes: u64,
    /// The stream holds a durable frame: nothing in it is trimmed.
    pub durable: bool,
    pub summary: Option<Box<Summary>>,
    pub closed: Option<(u64, CloseReason)>,
    /// The id the module gave the attempt's last frame: the next follows
    /// it (see `EntryId::next_after`).
    pub last: Option<EntryId>,
}

/// How the stream is trimmed after an append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trim {
    Keep,
    /// Keep about this many entries (trimmed back to it once past it by
    /// `entry::slack`), and none older than the time (`MINID`) when given.
    To {
        maxlen: u64,
        min_ms: Option<u64>,
    },
}

/// An accepted append: the frame count after it, the summary's version
/// (summary mode) and the trim to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    pub frames: u64,
    pub version: Option<u64>,
    pub trim: Trim,
}

/// A frame's mode-specific options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameMode {
    pub mode: Mode,
    /// Best effort: keep about this many entries.
    pub maxlen: Option<u64>,
    /// Best effort: drop entries older than this.
    pub ttl_ms: Option<u64>,
}

impl Output {
    pub fn new(attempt: u32) -> Output {
        Output {
            attempt,
            frames: 0,
            kept_frames: 0,
            kept_bytes: 0,
            durable: false,
            summary: None,
            closed: None,
            last: None,
        }
    }

    /// Checks and records an append of `payload`; on a refusal nothing
    /// changed.
    pub fn append(
        &mut self,
        m: &FrameMode,
        payload: &[u8],
        now: u64,
    ) -> Result<Appended, StreamError> {
        if self.closed.is_some() {
            return Err(StreamError::Closed);
        }
        let len = payload.len() as u64;
        if payload.len() > FRAME_PAYLOAD_MAX {
            return Err(StreamError::FrameTooLarge);
        }
        let kept = m.mode == Mode::Durable || self.durable;
        if kept
            && (self.kept_frames >= ATTEMPT_FRAMES_MAX
                || self.kept_bytes.saturating_add(len) > ATTEMPT_FRAME_BYTES_MAX)
        {
            return Err(StreamError::AttemptFull);
        }
        let summary = match m.mode {
            Mode::Summary => {
                let doc = self.summary.as_ref().map_or("", |s| &s.doc);
                let merged = merge_patch::merge(doc, payload).map_err(StreamError::Patch)?;
                if merged.len() > SUMMARY_BYTES_MAX {
                    return Err(StreamError::SummaryFull);
                }
                Some(merged)
            }
            _ => None,
        };
        // Accepted: nothing below refuses.
        self.frames = self.frames.saturating_add(1);
        if kept {
            self.kept_frames = self.kept_frames.saturating_add(1);
            self.kept_bytes = self.kept_bytes.saturating_add(len);
        }
        self.durable |= m.mode == Mode::Durable;
        let version = summary.map(|doc| {
            let s = self.summary.get_or_insert_with(|| {
                Box::new(Summary {
                    doc: Box::default(),
                    version: 0,
                    first_at: now,
                    last_at: now,
                })
            });
            s.doc = doc.into_boxed_str();
            s.version = s.version.saturating_add(1);
            s.last_at = now;
            s.version
        });
        let trim = match (self.durable, m.mode) {
            (true, _) | (_, Mode::Durable) => Trim::Keep,
            (false, Mode::Summary) => Trim::To {
                maxlen: SUMMARY_WINDOW,
                min_ms: None,
            },
            (false, Mode::BestEffort) => Trim::To {
                maxlen: m.maxlen.unwrap_or(BEST_EFFORT_MAXLEN),
                min_ms: m.ttl_ms.map(|t| now.saturating_sub(t)),
            },
        };
        Ok(Appended {
            frames: self.frames,
            version,
            trim,
        })
    }

    /// Closes the stream; false when it was closed already.
    pub fn close(&mut self, reason: CloseReason, now: u64) -> bool {
        if self.closed.is_some() {
            return false;
        }
        self.closed = Some((now, reason));
        true
    }

    /// Bytes held for the record's running memory count.
    pub fn mem_usage(&self) -> usize {
        std::mem::size_of::<Output>()
            + self
                .summary
                .as_ref()
                .map_or(0, |s| std::mem::size_of::<Summary>() + s.doc.len())
    }
}
