//! The thin shell around the core: one file per mechanism every domain
//! uses, and the command handlers, one file per domain.
//!
//! Imports go one way. Handlers use the mechanisms; among the mechanisms,
//! from the bottom: `node` (process-wide state), `config`, `reply`, `call`,
//! `guard`, `keys` and `persistence` (the data type), `schedule` (due
//! times, the armed timer), `effects` (what follows every transition),
//! `claiming`, `blocking`, `revocations`, `due`, `timer`, `dispatch`,
//! `registration`, `events`, `migration`, `aux`.

pub mod aux;
pub mod blocking;
pub mod call;
pub mod claiming;
pub mod config;
pub mod dispatch;
pub mod due;
pub mod effects;
pub mod events;
pub mod guard;
pub mod handlers;
pub mod held;
pub mod keys;
pub mod migration;
pub mod node;
pub mod persistence;
pub mod registration;
pub mod reply;
pub mod revocations;
pub mod schedule;
pub mod timer;
