//! Flows: DAGs of executions, edge groups and cascades (a later issue): a
//! room laid out like `execution`.
