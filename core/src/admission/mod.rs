//! Admission: budgets and quotas (a later issue): a room laid out like
//! `execution`.
