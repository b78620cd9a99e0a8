//! Per-attempt output streams and the event feed (a later issue): a room
//! laid out like `execution`.
