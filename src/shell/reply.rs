//! Replies written straight to the client buffer, without building an
//! intermediate value. Client bytes always go out as bulk strings.

use std::os::raw::c_long;

use redis_module::raw;

pub struct Reply(pub *mut raw::RedisModuleCtx);

impl Reply {
    pub fn array(&self, n: usize) {
        raw::reply_with_array(self.0, c_long::try_from(n).unwrap_or(0));
    }
    /// A map of `n` pairs: a RESP3 map to a RESP3 client, a flat array of
    /// `2n` elements (like HGETALL) to a RESP2 one (the server decides).
    pub fn map(&self, n: usize) {
        raw::reply_with_map(self.0, c_long::try_from(n).unwrap_or(0));
    }
    pub fn bulk(&self, b: &[u8]) {
        raw::reply_with_string_buffer(self.0, b.as_ptr().cast(), b.len());
    }
    pub fn int(&self, v: i64) {
        raw::reply_with_long_long(self.0, v);
    }
    pub fn uint(&self, v: u64) {
        self.int(i64::try_from(v).unwrap_or(i64::MAX));
    }
    pub fn null(&self) {
        raw::reply_with_null(self.0);
    }
    pub fn ok(&self) {
        raw::reply_with_simple_string(self.0, c"OK".as_ptr());
    }
    pub fn opt_uint(&self, v: Option<u64>) {
        match v {
            Some(v) => self.uint(v),
            None => self.null(),
        }
    }
}

/// A record's field/value pairs: a map to a RESP3 client, a flat array
/// (like HGETALL) to a RESP2 one.
pub struct Pairs<'a> {
    r: &'a Reply,
}

impl<'a> Pairs<'a> {
    pub fn start(r: &'a Reply, n: usize) -> Pairs<'a> {
        r.map(n);
        Pairs { r }
    }
    pub fn bulk(&self, k: &str, v: &[u8]) -> &Self {
        self.r.bulk(k.as_bytes());
        self.r.bulk(v);
        self
    }
    pub fn uint(&self, k: &str, v: u64) -> &Self {
        self.r.bulk(k.as_bytes());
        self.r.uint(v);
        self
    }
    pub fn opt_uint(&self, k: &str, v: Option<u64>) -> &Self {
        self.r.bulk(k.as_bytes());
        self.r.opt_uint(v);
        self
    }
    pub fn key(&self, k: &str) -> &Reply {
        self.r.bulk(k.as_bytes());
        self.r
    }
}
