//! A flow's encoding (one tagged item of its partition, after the
//! executions it joins). Version 1.

use crate::base::codec::{DecodeError, Reader, Writer};
use crate::base::ids::Uuid;
use crate::flows::edge::{DependencyKind, Edge, EdgeState};
use crate::flows::flow::{CancelPolicy, Cancellation, Flow, EDGES_MAX, MEMBERS_MAX};
use crate::flows::group::{Group, GroupState, OnSatisfied, Policy, PolicyKind, QUORUM_MAX};

const FLOW_ENCODING: u8 = 1;

impl Flow {
    pub fn encode(&self, w: &mut Writer) {
        w.u8(FLOW_ENCODING);
        w.u128(self.id.0);
        w.bytes(&self.kind);
        w.bytes(&self.namespace);
        w.u64(self.created_at);
        w.u64(self.last_mutation_at);
        w.u64(self.revision);
        match &self.cancel {
            None => w.u8(0),
            Some(c) => {
                w.u8(1);
                w.u64(c.at);
                w.bytes(&c.reason);
                w.u8(c.policy as u8);
            }
        }
        w.u32(self.tags.len() as u32);
        for (k, v) in &self.tags {
            w.bytes(k);
            w.bytes(v);
        }
        w.u32(self.members.len() as u32);
        for m in &self.members {
            w.u128(m.0);
        }
        w.u32(self.edges.len() as u32);
        for e in &self.edges {
            w.u128(e.id.0);
            w.u128(e.up.0);
            w.u128(e.down.0);
            w.u8(e.kind as u8);
            w.opt_bytes(e.data_ref.as_deref());
            w.u8(e.state as u8);
            w.u64(e.created_at);
            w.opt_u64(e.resolved_at);
        }
        w.u32(self.groups.len() as u32);
        for (down, g) in &self.groups {
            w.u128(down.0);
            w.u8(g.policy.kind as u8);
            w.u32(g.policy.k);
            w.u8(g.policy.on_satisfied as u8);
            w.u8(u8::from(g.explicit));
            w.u32(g.n);
            w.u32(g.succeeded);
            w.u32(g.failed);
            w.u32(g.skipped);
            w.u8(g.state as u8);
            w.opt_u64(g.fired_at);
        }
    }

    /// A flow from its encoding, checked for what one flow alone can show
    /// (the partition checks its members and endpoints).
    pub fn decode(buf: &[u8]) -> Result<Flow, DecodeError> {
        let mut r = Reader::new(buf);
        if r.u8()? != FLOW_ENCODING {
            return Err(DecodeError("unknown flow encoding"));
        }
        let mut f = Flow {
            id: Uuid(r.u128()?),
            kind: r.bytes()?.into(),
            namespace: r.bytes()?.into(),
            created_at: r.u64()?,
            last_mutation_at: r.u64()?,
            revision: r.u64()?,
            ..Flow::default()
        };
        f.cancel = match r.u8()? {
            0 => None,
            1 => Some(Cancellation {
                at: r.u64()?,
                reason: r.bytes()?.into(),
                policy: r.enum_u8(CancelPolicy::from_u8)?,
            }),
            _ => return Err(DecodeError("bad flow cancellation flag")),
        };
        for _ in 0..r.count(8)? {
            let (k, v) = (r.bytes()?, r.bytes()?);
            // Written in key order: anything else is not a flow this code
            // wrote (and would not encode back to the same bytes).
            if f.tags
                .last_key_value()
                .is_some_and(|(last, _)| **last >= *k)
            {
                return Err(DecodeError("flow tags out of order"));
            }
            f.tags.insert(k.into(), v.into());
        }
        let members = r.count(16)?;
        if members > MEMBERS_MAX {
            return Err(DecodeError("flow has too many members"));
        }
        for _ in 0..members {
            f.members.push(Uuid(r.u128()?));
        }
        let edges = r.count(60)?;
        if edges > EDGES_MAX {
            return Err(DecodeError("flow has too many edges"));
        }
        for _ in 0..edges {
            f.edges.push(Edge {
                id: Uuid(r.u128()?),
                up: Uuid(r.u128()?),
                down: Uuid(r.u128()?),
                kind: r.enum_u8(DependencyKind::from_u8)?,
                data_ref: r.opt_bytes()?.map(Into::into),
                state: r.enum_u8(EdgeState::from_u8)?,
                created_at: r.u64()?,
                resolved_at: r.opt_u64()?,
            });
        }
        for _ in 0..r.count(40)? {
            let down = Uuid(r.u128()?);
            let policy = Policy {
                kind: r.enum_u8(PolicyKind::from_u8)?,
                k: r.u32()?,
                on_satisfied: r.enum_u8(OnSatisfied::from_u8)?,
            };
            if policy.kind == PolicyKind::Quorum && !(1..=QUORUM_MAX).contains(&policy.k) {
                return Err(DecodeError("flow group quorum out of range"));
            }
            let g = Group {
                policy,
                explicit: r.bool()?,
                n: r.u32()?,
                succeeded: r.u32()?,
                failed: r.u32()?,
                skipped: r.u32()?,
                state: r.enum_u8(GroupState::from_u8)?,
                fired_at: r.opt_u64()?,
            };
            if g.resolved() > g.n || u64::from(g.n) > edges as u64 {
                return Err(DecodeError("flow group counts exceed its edges"));
            }
            if f.groups
                .last_key_value()
                .is_some_and(|(last, _)| *last >= down)
            {
                return Err(DecodeError("flow groups out of order"));
            }
            f.groups.insert(down, g);
        }
        r.finish()?;
        f.index_edges();
        check_edges(&f)?;
        Ok(f)
    }
}

/// Each edge id once, each edge's downstream with a group, each group's
/// count its edges', no self edges.
fn check_edges(f: &Flow) -> Result<(), DecodeError> {
    let mut ids = std::collections::HashSet::new();
    for e in &f.edges {
        if !ids.insert(e.id) {
            return Err(DecodeError("a flow edge id appears twice"));
        }
        if e.up == e.down {
            return Err(DecodeError("a flow edge joins an execution to itself"));
        }
    }
    for (down, g) in &f.groups {
        if f.into_of(*down).len() != g.n as usize {
            return Err(DecodeError(
                "a flow group's edge count disagrees with its edges",
            ));
        }
    }
    if f.edges.iter().any(|e| f.group(e.down).is_none()) {
        return Err(DecodeError("a flow edge's downstream has no group"));
    }
    Ok(())
}
