//! The panic guard. Every callback the server makes into the module (a
//! command, the timer, the data type's and aux data's callbacks, server
//! events, blocked clients) runs under `guard`. A panic is a bug, and
//! unwinding into the server would take it down: the guard catches it,
//! logs where it happened (not its message, which may hold client bytes),
//! and answers with an error or a safe default.

use std::cell::Cell;

thread_local! {
    /// Where the last panic happened, recorded by the hook for the guard.
    static PANIC_AT: Cell<Option<String>> = const { Cell::new(None) };
}

/// Records panics' locations instead of printing their messages (which
/// may hold client bytes) to the server's stderr.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()));
        PANIC_AT.with(|p| p.set(at));
    }));
}

/// Logs a caught panic: what was running and where it broke.
fn log_panic(what: &str) {
    let place = PANIC_AT
        .with(Cell::take)
        .unwrap_or_else(|| "an unknown place".to_string());
    // Our own text only: no client bytes, no NUL.
    redis_module::logging::log_warning(
        format!("flowfabric: internal error (a bug) in {what} at {place}; the step was abandoned")
            .replace('\0', ""),
    );
}

/// Runs a callback the server makes; a panic becomes `fallback` (after
/// logging), never an unwinding into the server. Inlined: it wraps every
/// command.
#[inline(always)]
pub fn guard<R>(what: &str, fallback: R, f: impl FnOnce() -> R) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => {
            log_panic(what);
            fallback
        }
    }
}
