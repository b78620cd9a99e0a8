//! The names of the real Valkey streams, in the execution's slot, so a
//! client derives them from an execution id (or a partition) alone.

use crate::base::ids::ExecId;

/// `ff:stream:{fp:N}:<uuid>:<attempt index>`: one attempt's frames.
pub fn stream_key(id: &ExecId, attempt: u32) -> String {
    let text = id.text();
    format!(
        "ff:stream:{}:{attempt}",
        String::from_utf8_lossy(text.as_bytes())
    )
}

/// `ff:events:{fp:N}`: the partition's event feed.
pub fn events_key(partition: u16) -> String {
    format!("ff:events:{{fp:{partition}}}")
}
