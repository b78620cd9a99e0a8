//! Bytes an execution keeps (its payload): either its own copy, or bytes
//! held alive by whoever made them. A submit holds the server's argument
//! string instead of copying a payload the server has already allocated.

use std::ffi::c_void;

/// Immutable bytes, owned here or held from elsewhere.
pub struct Blob(Repr);

enum Repr {
    Owned(Box<[u8]>),
    Held(Held),
}

/// Bytes another owner keeps alive until `release(owner)` runs.
pub struct Held {
    ptr: *const u8,
    len: usize,
    owner: *mut c_void,
    release: unsafe fn(*mut c_void),
}

// SAFETY: the owner's bytes are immutable while held and `release` may
// run on any thread (a background free); see `Held::new`.
unsafe impl Send for Held {}

impl Held {
    /// # Safety
    /// `ptr..ptr + len` must stay valid and unchanged until
    /// `release(owner)` runs, which happens exactly once, on drop, possibly
    /// on another thread.
    pub unsafe fn new(
        ptr: *const u8,
        len: usize,
        owner: *mut c_void,
        release: unsafe fn(*mut c_void),
    ) -> Held {
        Held {
            ptr,
            len,
            owner,
            release,
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // SAFETY: `new`'s contract: `release(owner)` runs once, here.
        unsafe { (self.release)(self.owner) }
    }
}

impl Blob {
    pub fn copy(bytes: &[u8]) -> Blob {
        Blob(Repr::Owned(bytes.into()))
    }

    pub fn held(h: Held) -> Blob {
        Blob(Repr::Held(h))
    }

    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Owned(b) => b,
            Repr::Held(h) if h.ptr.is_null() || h.len == 0 => &[],
            // SAFETY: `new`'s contract keeps `ptr..ptr + len` valid and
            // unchanged while the `Held` lives.
            Repr::Held(h) => unsafe { std::slice::from_raw_parts(h.ptr, h.len) },
        }
    }
}

impl std::ops::Deref for Blob {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Default for Blob {
    fn default() -> Blob {
        Blob(Repr::Owned(Box::default()))
    }
}

impl From<Vec<u8>> for Blob {
    fn from(v: Vec<u8>) -> Blob {
        Blob(Repr::Owned(v.into_boxed_slice()))
    }
}

/// A clone is an owned copy: the holder's bytes are released only once.
impl Clone for Blob {
    fn clone(&self) -> Blob {
        Blob::copy(self)
    }
}

impl PartialEq for Blob {
    fn eq(&self, other: &Blob) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Blob {}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Blob({} bytes)", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static RELEASED: AtomicUsize = AtomicUsize::new(0);

    unsafe fn release(owner: *mut c_void) {
        // SAFETY: `owner` is the box leaked below, released once.
        drop(unsafe { Box::from_raw(owner.cast::<Vec<u8>>()) });
        RELEASED.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn held_bytes_are_released_once_and_clones_are_copies() {
        let owner = Box::new(b"payload".to_vec());
        let (ptr, len) = (owner.as_ptr(), owner.len());
        // SAFETY: the box owns the bytes until `release` frees it.
        let b = Blob::held(unsafe { Held::new(ptr, len, Box::into_raw(owner).cast(), release) });
        assert_eq!(&*b, b"payload");
        let c = b.clone();
        assert_eq!(b, c);
        drop(b);
        assert_eq!(RELEASED.load(Ordering::SeqCst), 1);
        assert_eq!(&*c, b"payload");
        drop(c);
        assert_eq!(RELEASED.load(Ordering::SeqCst), 1);
        assert!(Blob::default().is_empty());
    }
}
