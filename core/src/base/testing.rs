//! What the unit tests of every domain's requests share.

use crate::base::limits::Limits;

/// The limits the request tests parse under.
pub const L: Limits = Limits {
    partitions: 256,
    max_payload_bytes: 1024,
    default_lease_ms: 30_000,
    retention_ms: 0,
    max_reclaims: 100,
};

/// A command line split at spaces into arguments.
pub fn split(s: &str) -> Vec<&[u8]> {
    s.split(' ').map(|x| x.as_bytes()).collect()
}
