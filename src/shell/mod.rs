//! The thin shell around the core: one file per mechanism every domain
//! uses, and the command handlers, one file per domain.
//!
//! Imports go one way, from the top: `registration` (the command table)
//! and `info` (the INFO section)
//! → `dispatch`, `timer` and the handlers → `blocking` (claims that wait)
//! → `claiming` (→ `access`, a claim's key permissions), `revocations`, `due`, `persistence`, `migration`,
//! `events` → `effects` (what follows every transition) → `schedule` (due
//! times, the armed timer), `keys`, `aux` → `node` (process-wide state) →
//! `call`, `guard`, `config`, `reply`, `held`.

pub mod access;
pub mod aux;
pub mod blocking;
pub mod call;
pub mod claiming;
pub mod command_table;
pub mod config;
pub mod dispatch;
pub mod due;
pub mod effects;
pub mod events;
pub mod feed;
pub mod guard;
pub mod handlers;
pub mod held;
pub mod info;
pub mod keys;
pub mod migration;
pub mod node;
pub mod persistence;
pub mod registration;
pub mod reply;
pub mod revocations;
pub mod schedule;
pub mod streams;
pub mod timer;
