//! What every domain shares: the argument reader and its one options loop,
//! codec primitives, ids, capability sets, state enums, limits, the
//! error codes, and times in requests (absolute or relative).

pub mod args;
pub mod blob;
pub mod caps;
pub mod codec;
pub mod errors;
pub mod ids;
pub mod limits;
pub mod state;
#[cfg(test)]
pub mod testing;
pub mod time;
