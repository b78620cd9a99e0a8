//! The holder's frame appends and the record's side of its attempts'
//! output streams: the stream state per attempt, closed when the attempt
//! ends (see `settle_output`).

use crate::base::state::{AttemptLifecycle, OwnershipState, TerminalOutcome};
use crate::execution::attempt::Fence;
use crate::execution::errors::LeaseError;
use crate::execution::record::Execution;
use crate::streams::{Appended, CloseReason, FrameMode, Output, StreamError};

impl Execution {
    /// The stream state of attempt `index`, if it ever took a frame.
    pub fn output(&self, index: u32) -> Option<&Output> {
        self.extra
            .as_ref()
            .and_then(|x| x.outputs.iter().find(|o| o.attempt == index))
    }

    pub fn output_mut(&mut self, index: u32) -> Option<&mut Output> {
        self.extra
            .as_mut()
            .and_then(|x| x.outputs.iter_mut().find(|o| o.attempt == index))
    }

    pub fn outputs(&self) -> &[Output] {
        self.extra.as_ref().map_or(&[][..], |x| &x.outputs)
    }

    /// Appends a frame to the current attempt's stream, fenced by its
    /// lease: returns the attempt's index and what the append did.
    pub fn append(
        &mut self,
        fence: &Fence,
        m: &FrameMode,
        payload: &[u8],
        now: u64,
    ) -> Result<(u32, Appended), (StreamError, bool)> {
        self.check_fence(fence, now).map_err(|(e, changed)| {
            let e = match e {
                LeaseError::NotActive { .. } => StreamError::Closed,
                _ => StreamError::StaleOwner,
            };
            (e, changed)
        })?;
        let index = self.current_attempt().map_or(0, |a| a.index);
        let outputs = &mut self.extra.get_or_insert_with(Box::default).outputs;
        let pos = match outputs.iter().position(|o| o.attempt == index) {
            Some(p) => p,
            None => {
                outputs.push(Output::new(index));
                outputs.len() - 1
            }
        };
        let r = match outputs.get_mut(pos) {
            Some(o) => o.append(m, payload, now),
            None => Err(StreamError::Closed),
        };
        if r.is_err() && outputs.get(pos).is_some_and(|o| o.frames == 0) {
            // Refused before its first frame: leave no trace.
            outputs.remove(pos);
            if self.extra.as_ref().is_some_and(|x| x.is_default()) {
                self.extra = None;
            }
        }
        let appended = r.map_err(|e| (e, false))?;
        self.last_mutation_at = now;
        Ok((index, appended))
    }

    /// After a transition: when the attempt that was current (index and
    /// lifecycle before it) has now ended, closes its stream if it has
    /// one, and says which and why.
    pub(crate) fn settle_output(
        &mut self,
        before: Option<(u32, AttemptLifecycle)>,
        now: u64,
    ) -> Option<(u32, CloseReason)> {
        let (index, was) = before?;
        if !matches!(
            was,
            AttemptLifecycle::Created | AttemptLifecycle::Started | AttemptLifecycle::Suspended
        ) {
            return None;
        }
        let state = self.attempts.iter().find(|a| a.index == index)?.state;
        // A lease that ran out or was revoked ends the attempt for its
        // holder at once (it may append no more), before any reclaim.
        let reason = match (state, self.ownership) {
            (AttemptLifecycle::EndedSuccess, _) => CloseReason::Completed,
            (AttemptLifecycle::EndedCancelled, _) => CloseReason::Cancelled,
            (AttemptLifecycle::EndedFailure, _) if self.terminal == TerminalOutcome::Expired => {
                CloseReason::Expired
            }
            (AttemptLifecycle::EndedFailure, _) => CloseReason::Failed,
            (_, OwnershipState::LeaseRevoked) => CloseReason::LeaseRevoked,
            (_, OwnershipState::LeaseExpiredReclaimable) => CloseReason::LeaseExpired,
            // Out of reclaims: the execution failed.
            (AttemptLifecycle::InterruptedReclaimed, _) if self.is_terminal() => {
                CloseReason::Failed
            }
            (AttemptLifecycle::InterruptedReclaimed, _) => CloseReason::Reclaimed,
            _ => return None,
        };
        let o = self
            .extra
            .as_mut()?
            .outputs
            .iter_mut()
            .find(|o| o.attempt == index)?;
        o.close(reason, now).then_some((index, reason))
    }
}
