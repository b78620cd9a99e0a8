//! The node's worker registry: each worker instance with its lanes,
//! capabilities and a liveness TTL. A worker whose heartbeat lapses (or
//! that an operator marks dead) is dead; the shell then revokes its leases.

use std::collections::{BTreeMap, BTreeSet};

use crate::base::caps::CapSet;
use crate::base::codec::{DecodeError, Reader, Writer};
use crate::base::errors::{Code, Refused};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Worker {
    pub worker_id: Box<[u8]>,
    pub lanes: Vec<Box<str>>,
    pub caps: CapSet,
    pub ttl_ms: u64,
    pub registered_at: u64,
    pub last_heartbeat: u64,
    pub dead_at: Option<u64>,
}

impl Worker {
    /// When the worker is considered dead without a heartbeat.
    pub fn expires_at(&self) -> Option<u64> {
        match self.dead_at {
            Some(_) => None,
            None => Some(self.last_heartbeat.saturating_add(self.ttl_ms)),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkerError {
    NotFound,
    Dead,
}

impl Refused for WorkerError {
    fn code(&self) -> Code {
        match self {
            WorkerError::NotFound => Code::WorkerNotFound,
            WorkerError::Dead => Code::WorkerDead,
        }
    }

    fn message(&self) -> String {
        match self {
            WorkerError::NotFound => "no such worker instance is registered here",
            WorkerError::Dead => "the worker instance was marked dead; register it again",
        }
        .into()
    }

    fn codes() -> &'static [Code] {
        &[Code::WorkerNotFound, Code::WorkerDead]
    }
}

/// Workers by instance, with the live ones also ordered by when their
/// heartbeat lapses, so a heartbeat and the timer's look at who lapsed are
/// O(log workers), not a pass over all of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registry {
    workers: BTreeMap<Box<[u8]>, Worker>,
    lapses: BTreeSet<(u64, Box<[u8]>)>,
}

impl Registry {
    pub fn workers(&self) -> &BTreeMap<Box<[u8]>, Worker> {
        &self.workers
    }

    /// Replaces `instance`'s entry, keeping the lapse order in step.
    fn put(&mut self, instance: &[u8], w: Worker) {
        if let Some(t) = self.workers.get(instance).and_then(Worker::expires_at) {
            self.lapses.remove(&(t, instance.into()));
        }
        if let Some(t) = w.expires_at() {
            self.lapses.insert((t, instance.into()));
        }
        self.workers.insert(instance.into(), w);
    }

    pub fn register(&mut self, instance: &[u8], w: Worker) {
        self.put(instance, w);
    }

    pub fn heartbeat(&mut self, instance: &[u8], now: u64) -> Result<(), WorkerError> {
        let mut w = self
            .workers
            .get(instance)
            .ok_or(WorkerError::NotFound)?
            .clone();
        if w.dead_at.is_some() {
            return Err(WorkerError::Dead);
        }
        w.last_heartbeat = now;
        self.put(instance, w);
        Ok(())
    }

    /// Marks a worker dead; false if it was dead already.
    pub fn mark_dead(&mut self, instance: &[u8], now: u64) -> Result<bool, WorkerError> {
        let mut w = self
            .workers
            .get(instance)
            .ok_or(WorkerError::NotFound)?
            .clone();
        if w.dead_at.is_some() {
            return Ok(false);
        }
        w.dead_at = Some(now);
        self.put(instance, w);
        Ok(true)
    }

    /// The earliest time a live worker's heartbeat lapses.
    pub fn next_due(&self) -> Option<u64> {
        self.lapses.first().map(|(t, _)| *t)
    }

    /// Up to `max` live workers whose heartbeat has lapsed by `now`,
    /// earliest first.
    pub fn lapsed(&self, now: u64, max: usize) -> Vec<Box<[u8]>> {
        self.lapses
            .iter()
            .take_while(|(t, _)| *t <= now)
            .take(max)
            .map(|(_, i)| i.clone())
            .collect()
    }

    pub fn encode(&self, w: &mut Writer) {
        w.u32(self.workers.len() as u32);
        for (instance, x) in &self.workers {
            w.bytes(instance);
            w.bytes(&x.worker_id);
            w.u32(x.lanes.len() as u32);
            for l in &x.lanes {
                w.bytes(l.as_bytes());
            }
            w.bytes(x.caps.as_str().as_bytes());
            w.u64(x.ttl_ms);
            w.u64(x.registered_at);
            w.u64(x.last_heartbeat);
            w.opt_u64(x.dead_at);
        }
    }

    pub fn decode(r: &mut Reader) -> Result<Registry, DecodeError> {
        let mut reg = Registry::default();
        for _ in 0..r.count(40)? {
            let instance = r.bytes()?.into_boxed_slice();
            // Written in instance order, each once.
            if reg
                .workers
                .keys()
                .next_back()
                .is_some_and(|last| *last >= instance)
            {
                return Err(DecodeError("workers out of order"));
            }
            let worker_id = r.bytes()?.into_boxed_slice();
            let mut lanes = Vec::new();
            for _ in 0..r.count(4)? {
                lanes.push(r.string()?.into_boxed_str());
            }
            let caps = CapSet::from_canonical(r.string()?)
                .map_err(|_| DecodeError("bad capability set"))?;
            let w = Worker {
                worker_id,
                lanes,
                caps,
                ttl_ms: r.u64()?,
                registered_at: r.u64()?,
                last_heartbeat: r.u64()?,
                dead_at: r.opt_u64()?,
            };
            reg.put(&instance, w);
        }
        Ok(reg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(now: u64) -> Worker {
        Worker {
            worker_id: b"w"[..].into(),
            lanes: vec!["q".into()],
            caps: CapSet::parse_worker(b"gpu").unwrap(),
            ttl_ms: 100,
            registered_at: now,
            last_heartbeat: now,
            dead_at: None,
        }
    }

    #[test]
    fn liveness_and_codec() {
        let mut r = Registry::default();
        r.register(b"i1", worker(0));
        r.register(b"i2", worker(50));
        assert_eq!(r.next_due(), Some(100));
        r.heartbeat(b"i1", 80).unwrap();
        assert_eq!(r.next_due(), Some(150));
        assert_eq!(r.lapsed(150, 10), vec![Box::from(&b"i2"[..])]);
        assert!(r.lapsed(149, 10).is_empty());
        assert_eq!(r.mark_dead(b"i2", 150), Ok(true));
        assert_eq!(r.next_due(), Some(180), "the dead no longer lapse");
        assert_eq!(r.mark_dead(b"i2", 151), Ok(false));
        assert_eq!(r.heartbeat(b"i2", 152), Err(WorkerError::Dead));
        assert_eq!(r.heartbeat(b"nope", 152), Err(WorkerError::NotFound));
        let mut w = Writer::default();
        r.encode(&mut w);
        let mut rd = Reader::new(&w.buf);
        assert_eq!(Registry::decode(&mut rd).unwrap(), r);
        rd.finish().unwrap();
        for cut in 0..w.buf.len() {
            let mut rd = Reader::new(&w.buf[..cut]);
            assert!(Registry::decode(&mut rd).and_then(|_| rd.finish()).is_err());
        }
    }
}
