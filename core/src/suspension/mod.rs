//! Suspension, waitpoints and HMAC-signed signals (the next issue): a room
//! laid out like `execution` — its records, pure transitions, requests and
//! codec beside each other.
