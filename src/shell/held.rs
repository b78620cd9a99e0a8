//! Payloads kept as the server's own argument strings (see the core's `base::blob`):
//! holding a string takes a reference instead of a copy.

use std::ffi::c_void;

use redis_module::raw;

use flowfabric_core::base::blob::{Blob, Held};

/// Keeps `arg` (whose bytes are `bytes`) by reference, or copies `bytes`
/// when the server cannot lend it.
pub fn hold(arg: Option<&*mut raw::RedisModuleString>, bytes: &[u8]) -> Blob {
    // SAFETY: function pointers the server filled in at load.
    let (Some(&s), Some(hold), Some(ptr_len)) =
        (arg, unsafe { raw::RedisModule_HoldString }, unsafe {
            raw::RedisModule_StringPtrLen
        })
    else {
        return Blob::copy(bytes);
    };
    // No context: the reference is ours until `release`, not the command's.
    // SAFETY: `s` is one of the command's argument strings.
    let held = unsafe { hold(std::ptr::null_mut(), s) };
    if held.is_null() {
        return Blob::copy(bytes);
    }
    let mut len = 0;
    // SAFETY: `held` is a string this module now holds a reference to.
    let ptr = unsafe { ptr_len(held, &mut len) };
    // SAFETY: the server never changes a string's bytes while it has more
    // than one reference, and freeing a string is safe from a background
    // thread (lazyfree does the same to its own values); `release` drops
    // this module's one reference.
    Blob::held(unsafe { Held::new(ptr.cast(), len, held.cast(), release) })
}

unsafe fn release(owner: *mut c_void) {
    // SAFETY: a function pointer the server filled in at load; `owner` is
    // the string `hold` took a reference to, released once.
    if let Some(free) = unsafe { raw::RedisModule_FreeString } {
        unsafe { free(std::ptr::null_mut(), owner.cast()) };
    }
}
