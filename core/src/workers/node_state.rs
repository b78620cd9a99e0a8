//! What a node persists besides its partitions (RDB aux data): the lanes
//! paused on it and its worker registry. Decoding is strict: what decodes
//! encodes back to the same bytes.

use std::collections::BTreeSet;

use crate::base::codec::{DecodeError, Reader, Writer};
use crate::suspension::token::Keyring;
use crate::workers::registry::Registry;

/// Version 2 added the worker registry after the paused lanes; version 3
/// the waitpoint key ring after it.
const VERSION: u8 = 3;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeState {
    pub paused: BTreeSet<Box<str>>,
    pub registry: Registry,
    /// The waitpoint token keys (their secrets never leave in a reply).
    pub keyring: Keyring,
}

impl NodeState {
    pub fn encode(&self, w: &mut Writer) {
        w.u8(VERSION);
        w.u32(u32::try_from(self.paused.len()).unwrap_or(u32::MAX));
        for l in &self.paused {
            w.bytes(l.as_bytes());
        }
        self.registry.encode(w);
        self.keyring.encode(w);
    }

    /// Version 1 (paused lanes only) still loads, with an empty registry.
    pub fn decode(buf: &[u8]) -> Result<NodeState, DecodeError> {
        let mut r = Reader::new(buf);
        let version = r.u8()?;
        if version == 0 || version > VERSION {
            return Err(DecodeError("unknown node-state encoding"));
        }
        let mut paused = BTreeSet::new();
        for _ in 0..r.count(4)? {
            let lane = r.string()?.into_boxed_str();
            // Written in order, each once.
            if paused.last().is_some_and(|last| *last >= lane) {
                return Err(DecodeError("paused lanes out of order"));
            }
            paused.insert(lane);
        }
        let registry = if version >= 2 {
            Registry::decode(&mut r)?
        } else {
            Registry::default()
        };
        let keyring = if version >= 3 {
            Keyring::decode(&mut r)?
        } else {
            Keyring::default()
        };
        r.finish()?;
        Ok(NodeState {
            paused,
            registry,
            keyring,
        })
    }
}
