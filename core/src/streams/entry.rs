//! Stream entry ids and trimming, decided so every node reaches the same
//! entries: a replica and an AOF replay write the same frames and events
//! as the primary did, from the same pinned time and the same stream, with
//! no entry of their own replicated.

/// A stream entry's id: milliseconds and a sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct EntryId {
    pub ms: u64,
    pub seq: u64,
}

impl EntryId {
    pub fn text(&self) -> String {
        format!("{}-{}", self.ms, self.seq)
    }

    /// The id an entry written at `now` gets after `last`: `now-0` when
    /// the clock is past the last entry, else the next sequence number
    /// (as XADD's `*` does, with the transition's pinned time for the
    /// clock). None when no id is left (the stream is at its last id).
    pub fn next_after(last: Option<EntryId>, now: u64) -> Option<EntryId> {
        let now = now.max(1);
        match last {
            None => Some(EntryId { ms: now, seq: 0 }),
            Some(l) if now > l.ms => Some(EntryId { ms: now, seq: 0 }),
            Some(l) => match l.seq.checked_add(1) {
                Some(seq) => Some(EntryId { ms: l.ms, seq }),
                None => l.ms.checked_add(1).map(|ms| EntryId { ms, seq: 0 }),
            },
        }
    }
}

/// How far past its length limit a stream may grow before it is trimmed
/// back to the limit: trims then remove whole runs of entries (as
/// `MAXLEN ~` does), yet exactly, so the result does not depend on how the
/// server laid the stream out in memory.
pub fn slack(maxlen: u64) -> u64 {
    (maxlen / 8).max(16)
}

/// The length to trim a stream of `len` entries to, if it is due.
pub fn trim_due(len: u64, maxlen: u64) -> Option<u64> {
    (len > maxlen.saturating_add(slack(maxlen))).then_some(maxlen)
}
