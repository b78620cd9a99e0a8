//! Why a flow request was refused.

use crate::base::errors::{Code, Refused};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowError {
    FlowNotFound,
    FlowAlreadyTerminal,
    ExecutionNotFound,
    /// The execution's partition is not the flow's.
    PartitionMismatch,
    /// Member of another flow (its id).
    OtherFlow(String),
    SelfEdge,
    StaleRevision {
        expected: u64,
        current: u64,
    },
    NotInFlow(&'static str),
    Cycle,
    /// The same pair is already an edge (its id).
    DependencyExists(String),
    /// An edge id reused for another pair.
    EdgeIdTaken,
    GroupFired,
    DownstreamEnded,
    PolicyFixed,
    PolicyChanged,
    Limit(&'static str, usize),
    Invalid(String),
}

impl Refused for FlowError {
    fn code(&self) -> Code {
        match self {
            FlowError::FlowNotFound => Code::FlowNotFound,
            FlowError::FlowAlreadyTerminal => Code::FlowAlreadyTerminal,
            FlowError::ExecutionNotFound => Code::ExecutionNotFound,
            FlowError::PartitionMismatch => Code::PartitionMismatch,
            FlowError::OtherFlow(_) => Code::AlreadyMemberOfDifferentFlow,
            FlowError::SelfEdge => Code::SelfReferencingEdge,
            FlowError::StaleRevision { .. } => Code::StaleGraphRevision,
            FlowError::NotInFlow(_) => Code::ExecutionNotInFlow,
            FlowError::Cycle => Code::CycleDetected,
            FlowError::DependencyExists(_) | FlowError::EdgeIdTaken => {
                Code::DependencyAlreadyExists
            }
            FlowError::GroupFired | FlowError::DownstreamEnded => Code::GroupAlreadyTerminal,
            FlowError::Limit(..) => Code::FlowLimitExceeded,
            FlowError::PolicyFixed | FlowError::PolicyChanged | FlowError::Invalid(_) => {
                Code::InvalidInput
            }
        }
    }

    fn message(&self) -> String {
        match self {
            FlowError::FlowNotFound => "no such flow".into(),
            FlowError::FlowAlreadyTerminal => "the flow is cancelled".into(),
            FlowError::ExecutionNotFound => "no such execution".into(),
            FlowError::PartitionMismatch => "the execution is not in the flow's partition".into(),
            FlowError::OtherFlow(f) => format!("the execution is a member of flow {f}"),
            FlowError::SelfEdge => "an edge cannot join an execution to itself".into(),
            FlowError::StaleRevision { expected, current } => {
                format!("expected graph revision {expected}, the flow is at {current}")
            }
            FlowError::NotInFlow(which) => format!("the {which} execution is not in the flow"),
            FlowError::Cycle => "the edge would close a cycle".into(),
            FlowError::DependencyExists(e) => format!("edge {e} already joins these executions"),
            FlowError::EdgeIdTaken => "the edge id joins other executions".into(),
            FlowError::GroupFired => {
                "the downstream's edge group has already fired: it takes no more edges".into()
            }
            FlowError::DownstreamEnded => "the downstream execution has ended".into(),
            FlowError::PolicyFixed => {
                "edge_group_policy_already_fixed: dependencies already staged".into()
            }
            FlowError::PolicyChanged => {
                "edge_group_policy_already_fixed: another policy is set".into()
            }
            FlowError::Limit(what, max) => format!("a flow holds at most {max} {what}"),
            FlowError::Invalid(m) => m.clone(),
        }
    }

    fn codes() -> &'static [Code] {
        &[
            Code::FlowNotFound,
            Code::FlowAlreadyTerminal,
            Code::ExecutionNotFound,
            Code::PartitionMismatch,
            Code::AlreadyMemberOfDifferentFlow,
            Code::SelfReferencingEdge,
            Code::StaleGraphRevision,
            Code::ExecutionNotInFlow,
            Code::CycleDetected,
            Code::DependencyAlreadyExists,
            Code::GroupAlreadyTerminal,
            Code::FlowLimitExceeded,
            Code::InvalidInput,
        ]
    }
}
