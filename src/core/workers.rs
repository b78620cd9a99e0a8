//! The node's worker registry: each worker instance with its lanes,
//! capabilities and a liveness TTL. A worker whose heartbeat lapses (or
//! that an operator marks dead) is dead; the shell then revokes its leases.

use std::collections::BTreeMap;

use crate::core::caps::CapSet;
use crate::core::codec::{DecodeError, Reader, Writer};

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

impl WorkerError {
    pub fn message(&self) -> &'static str {
        match self {
            WorkerError::NotFound => "WORKER_NOT_FOUND no such worker instance is registered here",
            WorkerError::Dead => {
                "WORKER_DEAD the worker instance was marked dead; register it again"
            }
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registry {
    pub workers: BTreeMap<Box<[u8]>, Worker>,
}

impl Registry {
    pub fn register(&mut self, instance: &[u8], w: Worker) {
        self.workers.insert(instance.into(), w);
    }

    pub fn heartbeat(&mut self, instance: &[u8], now: u64) -> Result<(), WorkerError> {
        let w = self
            .workers
            .get_mut(instance)
            .ok_or(WorkerError::NotFound)?;
        if w.dead_at.is_some() {
            return Err(WorkerError::Dead);
        }
        w.last_heartbeat = now;
        Ok(())
    }

    /// Marks a worker dead; false if it was dead already.
    pub fn mark_dead(&mut self, instance: &[u8], now: u64) -> Result<bool, WorkerError> {
        let w = self
            .workers
            .get_mut(instance)
            .ok_or(WorkerError::NotFound)?;
        if w.dead_at.is_some() {
            return Ok(false);
        }
        w.dead_at = Some(now);
        Ok(true)
    }

    /// The earliest time a live worker's heartbeat lapses.
    pub fn next_due(&self) -> Option<u64> {
        self.workers.values().filter_map(Worker::expires_at).min()
    }

    /// Live workers whose heartbeat has lapsed by `now`.
    pub fn lapsed(&self, now: u64) -> Vec<Box<[u8]>> {
        self.workers
            .iter()
            .filter(|(_, w)| w.expires_at().is_some_and(|t| t <= now))
            .map(|(k, _)| k.clone())
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
            reg.workers.insert(instance, w);
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
        assert_eq!(r.lapsed(150), vec![Box::from(&b"i2"[..])]);
        assert_eq!(r.mark_dead(b"i2", 150), Ok(true));
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
