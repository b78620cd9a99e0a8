//! FF.ACQUIRE: a claim the primary decided, as it replicates it.

use super::parse_lease;
use crate::base::args::{check_worker, parse_exec_id, parse_uuid, Args};
use crate::base::errors::{CmdError, CmdResult};
use crate::base::ids::{ExecId, Uuid};
use crate::base::limits::{Limits, TIME_MAX_MS};

/// The replicated outcome of a claim: which execution, under which ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acquire<'a> {
    pub id: ExecId,
    pub worker_id: &'a [u8],
    pub worker_instance_id: &'a [u8],
    pub lease_ms: u64,
    pub lease_id: Uuid,
    pub attempt_id: Uuid,
    pub at: u64,
}

/// `FF.ACQUIRE id worker instance lease_ms lease_id attempt_id at`.
pub fn parse_acquire<'a>(args: &'a [&'a [u8]], limits: &Limits) -> CmdResult<Acquire<'a>> {
    let mut a = Args::new(args);
    let r = Acquire {
        id: parse_exec_id(a.next("execution id")?, limits)?,
        worker_id: check_worker(a.next("worker id")?, "worker id")?,
        worker_instance_id: check_worker(a.next("worker instance id")?, "worker instance id")?,
        lease_ms: parse_lease(a.next("lease ms")?)?,
        lease_id: parse_uuid(a.next("lease id")?, "lease id")?,
        attempt_id: parse_uuid(a.next("attempt id")?, "attempt id")?,
        at: a.next_u64("at", TIME_MAX_MS)?,
    };
    if !a.is_done() {
        return Err(CmdError::syntax("too many arguments"));
    }
    Ok(r)
}

impl Acquire<'_> {
    pub fn to_args(&self) -> Vec<Vec<u8>> {
        vec![
            self.id.key().into_bytes(),
            self.worker_id.to_vec(),
            self.worker_instance_id.to_vec(),
            self.lease_ms.to_string().into_bytes(),
            self.lease_id.to_string().into_bytes(),
            self.attempt_id.to_string().into_bytes(),
            self.at.to_string().into_bytes(),
        ]
    }
}
