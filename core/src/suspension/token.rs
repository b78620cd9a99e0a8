//! Waitpoint tokens: `<kid>:<64 hex>`, an HMAC-SHA-256 under the node's
//! key `kid` over the execution, the waitpoint, its key and its creation
//! time, so a token opens exactly one waitpoint of one execution. The key
//! ring holds the current key and the keys it replaced, each valid until
//! its grace ends; no reply ever carries a secret.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::base::codec::{DecodeError, Reader, Writer};
use crate::base::ids::{ExecId, Uuid};

/// The longest key id, and the bytes it may use.
pub const KID_MAX_BYTES: usize = 64;
/// Secrets are 16 to 256 bytes (32 to 512 hex digits).
pub const SECRET_MIN_BYTES: usize = 16;
pub const SECRET_MAX_BYTES: usize = 256;
/// Keys a ring holds (the current one and those in grace): verification
/// tries one key, but rotation and listing walk them all.
pub const KEYS_MAX: usize = 32;
/// The longest grace a rotation may give (the reference's 2^53 - 1 ms,
/// far past any real need).
pub const GRACE_MAX_MS: u64 = (1 << 53) - 1;
/// The MAC's length in hex digits.
pub const MAC_HEX: usize = 64;

/// Why a token was refused (the reference's error names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenError {
    Missing,
    Invalid,
    Expired,
    NotInitialized,
}

/// Why a rotation was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyError {
    InvalidKid,
    InvalidSecretHex,
    InvalidGrace,
    /// The kid is in use with another secret.
    Conflict(Box<str>),
    /// The ring holds `KEYS_MAX` keys still in grace.
    Full,
}

/// What a rotation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rotated {
    /// `kid` is current, with the same secret already: nothing changed.
    Noop,
    /// `kid` is current; `previous` (if any) stays valid for the grace;
    /// `removed` keys whose grace had ended were dropped.
    Rotated {
        previous: Option<Box<str>>,
        removed: usize,
    },
}

#[derive(Clone)]
pub struct Key {
    pub kid: Box<str>,
    secret: Box<[u8]>,
    /// The MAC with the key absorbed (its padded blocks hashed once, not
    /// per token).
    keyed: Option<HmacSha256>,
    /// When tokens of this key stop being accepted; `None` for the
    /// current key.
    pub expires_at: Option<u64>,
}

impl PartialEq for Key {
    fn eq(&self, o: &Key) -> bool {
        (&self.kid, &self.secret, self.expires_at) == (&o.kid, &o.secret, o.expires_at)
    }
}

impl Eq for Key {}

impl Key {
    fn new(kid: Box<str>, secret: Box<[u8]>, expires_at: Option<u64>) -> Key {
        let keyed = HmacSha256::new_from_slice(&secret).ok();
        Key {
            kid,
            secret,
            keyed,
            expires_at,
        }
    }

    fn mac(&self, msg: &[u8]) -> String {
        match &self.keyed {
            Some(m) => finish(m.clone(), msg),
            None => mac_hex(&self.secret, msg),
        }
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret, even in a test failure.
        write!(f, "Key({}, {:?})", self.kid, self.expires_at)
    }
}

/// The node's waitpoint keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keyring {
    keys: Vec<Key>,
}

/// A key id: 1 to 64 of `A-Z a-z 0-9 _ - .` (no `:`, which ends it).
pub fn valid_kid(kid: &[u8]) -> bool {
    !kid.is_empty()
        && kid.len() <= KID_MAX_BYTES
        && kid
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Decodes hex digits (either case) into bytes.
pub fn decode_hex(hex: &[u8]) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    hex.chunks_exact(2)
        .map(|p| match p {
            [h, l] => Some(digit(*h)? << 4 | digit(*l)?),
            _ => None,
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for d in [b >> 4, b & 0x0f] {
            s.push(char::from(
                DIGITS.get(usize::from(d)).copied().unwrap_or(b'0'),
            ));
        }
    }
    s
}

/// The bytes a token signs: a tag, the execution (partition and uuid),
/// the waitpoint and its creation time, fixed-width: 46 bytes, so the MAC
/// hashes one block.
pub fn message(exec: &ExecId, waitpoint: Uuid, created_at: u64) -> [u8; MESSAGE_LEN] {
    let mut m = [0u8; MESSAGE_LEN];
    let parts: [&[u8]; 5] = [
        b"ffwp",
        &exec.partition.to_le_bytes(),
        &exec.uuid.0.to_le_bytes(),
        &waitpoint.0.to_le_bytes(),
        &created_at.to_le_bytes(),
    ];
    let mut at = 0;
    for p in parts {
        if let Some(dst) = m.get_mut(at..at + p.len()) {
            dst.copy_from_slice(p);
        }
        at += p.len();
    }
    m
}

pub const MESSAGE_LEN: usize = 46;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA-256 of `msg` under `secret`, in lowercase hex.
pub fn mac_hex(secret: &[u8], msg: &[u8]) -> String {
    match HmacSha256::new_from_slice(secret) {
        Ok(m) => finish(m, msg),
        // HMAC takes a key of any length; kept total all the same.
        Err(_) => String::new(),
    }
}

/// Finishes a keyed MAC (its key already absorbed) over `msg`.
fn finish(mut m: HmacSha256, msg: &[u8]) -> String {
    m.update(msg);
    hex(&m.finalize().into_bytes())
}

/// Equal in time that depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Keyring {
    pub fn current(&self) -> Option<&Key> {
        self.keys.iter().find(|k| k.expires_at.is_none())
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// A token for `msg` under the current key, if there is one.
    pub fn mint(&self, msg: &[u8]) -> Option<String> {
        let k = self.current()?;
        Some(format!("{}:{}", k.kid, k.mac(msg)))
    }

    /// Checks `token` against `msg` in the reference's order: present,
    /// well formed, a ring at all, a known key still in grace, the MAC
    /// (compared in constant time).
    /// Checks `token` for a waitpoint that may not exist (`msg` is `None`):
    /// a missing waitpoint fails like a bad token, so the reply is no
    /// oracle for waitpoint ids.
    pub fn verify_for(&self, token: &[u8], msg: Option<&[u8]>, now: u64) -> Result<(), TokenError> {
        match msg {
            Some(m) => self.verify(token, m, now),
            None if token.is_empty() => Err(TokenError::Missing),
            None => Err(TokenError::Invalid),
        }
    }

    pub fn verify(&self, token: &[u8], msg: &[u8], now: u64) -> Result<(), TokenError> {
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        let colon = token.iter().position(|&b| b == b':');
        let (kid, mac) = match colon {
            Some(i) if i > 0 => (
                token.get(..i).unwrap_or_default(),
                token.get(i + 1..).unwrap_or_default(),
            ),
            _ => return Err(TokenError::Invalid),
        };
        if mac.len() != MAC_HEX {
            return Err(TokenError::Invalid);
        }
        if self.current().is_none() {
            return Err(TokenError::NotInitialized);
        }
        let key = self
            .keys
            .iter()
            .find(|k| k.kid.as_bytes() == kid)
            .ok_or(TokenError::Invalid)?;
        if key.expires_at.is_some_and(|e| e < now) {
            return Err(TokenError::Expired);
        }
        let expected = key.mac(msg);
        if !constant_time_eq(expected.as_bytes(), mac) {
            return Err(TokenError::Invalid);
        }
        Ok(())
    }

    /// Makes `kid` (with `secret_hex`) the current key; the key it replaces
    /// stays valid until `now + grace_ms`. Keys whose grace has ended are
    /// dropped first. A kid seen before may come back only with its own
    /// secret, and becomes current again with no expiry.
    pub fn rotate(
        &mut self,
        kid: &[u8],
        secret_hex: &[u8],
        grace_ms: u64,
        now: u64,
    ) -> Result<Rotated, KeyError> {
        if !valid_kid(kid) {
            return Err(KeyError::InvalidKid);
        }
        let secret = decode_hex(secret_hex)
            .filter(|s| (SECRET_MIN_BYTES..=SECRET_MAX_BYTES).contains(&s.len()))
            .ok_or(KeyError::InvalidSecretHex)?;
        if grace_ms > GRACE_MAX_MS {
            return Err(KeyError::InvalidGrace);
        }
        let kid_str: Box<str> = String::from_utf8_lossy(kid).into();
        if let Some(k) = self.keys.iter().find(|k| k.kid == kid_str) {
            if *k.secret != *secret {
                return Err(KeyError::Conflict(kid_str));
            }
            if k.expires_at.is_none() {
                return Ok(Rotated::Noop);
            }
        }
        let live = |k: &Key| k.expires_at.is_none_or(|e| e >= now);
        let kept = self
            .keys
            .iter()
            .filter(|k| live(k) && k.kid != kid_str)
            .count();
        if kept >= KEYS_MAX {
            return Err(KeyError::Full);
        }
        let before = self.keys.len();
        self.keys.retain(|k| live(k) || k.kid == kid_str);
        let removed = before - self.keys.len();
        self.keys.retain(|k| k.kid != kid_str);
        let mut previous = None;
        for k in &mut self.keys {
            if k.expires_at.is_none() {
                k.expires_at = Some(now.saturating_add(grace_ms));
                previous = Some(k.kid.clone());
            }
        }
        self.keys
            .push(Key::new(kid_str, secret.into_boxed_slice(), None));
        Ok(Rotated::Rotated { previous, removed })
    }

    /// The current kid and the kids still in grace with their expiry (no
    /// secrets).
    pub fn list(&self, now: u64) -> (Option<&str>, Vec<(&str, u64)>) {
        let grace = self
            .keys
            .iter()
            .filter_map(|k| Some((&*k.kid, k.expires_at.filter(|&e| e >= now)?)))
            .collect();
        (self.current().map(|k| &*k.kid), grace)
    }

    pub fn encode(&self, w: &mut Writer) {
        w.u32(self.keys.len() as u32);
        for k in &self.keys {
            w.bytes(k.kid.as_bytes());
            w.bytes(&k.secret);
            w.opt_u64(k.expires_at);
        }
    }

    pub fn decode(r: &mut Reader) -> Result<Keyring, DecodeError> {
        let n = r.count(10)?;
        if n > KEYS_MAX + 1 {
            return Err(DecodeError("too many waitpoint keys"));
        }
        let mut keys: Vec<Key> = Vec::with_capacity(n);
        for _ in 0..n {
            let kid = r.bytes()?;
            let secret = r.bytes()?;
            let expires_at = r.opt_u64()?;
            if !valid_kid(&kid)
                || !(SECRET_MIN_BYTES..=SECRET_MAX_BYTES).contains(&secret.len())
                || keys.iter().any(|k| k.kid.as_bytes() == kid)
            {
                return Err(DecodeError("bad waitpoint key"));
            }
            keys.push(Key::new(
                String::from_utf8_lossy(&kid).into(),
                secret.into_boxed_slice(),
                expires_at,
            ));
        }
        if keys.iter().filter(|k| k.expires_at.is_none()).count() > 1 {
            return Err(DecodeError("two current waitpoint keys"));
        }
        Ok(Keyring { keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S1: &[u8] = b"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const S2: &[u8] = b"1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn mac_matches_rfc4231_vector() {
        // RFC 4231 test case 2: key "Jefe".
        assert_eq!(
            mac_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn token_vector() {
        let mut ring = Keyring::default();
        ring.rotate(b"k1", S1, 0, 0).unwrap();
        let e = ExecId {
            partition: 1,
            uuid: Uuid(0x0102),
        };
        let msg = message(&e, Uuid(7), 1000);
        let mut want = b"ffwp\x01\x00\x02\x01".to_vec();
        want.extend([0; 14]);
        want.push(7);
        want.extend([0; 15]);
        want.extend(1000u64.to_le_bytes());
        assert_eq!(msg.to_vec(), want);
        // Computed independently (Python's hmac), so the format cannot
        // drift unnoticed.
        let t = ring.mint(&msg).unwrap();
        assert_eq!(
            t,
            "k1:6439498c5327c41b96d3811b6066bdadfe238ddc233296725c844245266ae113"
        );
        assert_eq!(t.len(), 3 + MAC_HEX);
        assert_eq!(ring.verify(t.as_bytes(), &msg, 5), Ok(()));
        for other in [
            message(&e, Uuid(8), 1000),
            message(&e, Uuid(7), 1001),
            message(&ExecId { partition: 2, ..e }, Uuid(7), 1000),
        ] {
            assert_eq!(
                ring.verify(t.as_bytes(), &other, 5),
                Err(TokenError::Invalid)
            );
        }
    }

    #[test]
    fn refusals_in_order() {
        let empty = Keyring::default();
        let msg = b"m";
        let fake = format!("k1:{}", "0".repeat(64));
        assert_eq!(empty.verify(b"", msg, 0), Err(TokenError::Missing));
        assert_eq!(empty.verify_for(b"", None, 0), Err(TokenError::Missing));
        assert_eq!(
            empty.verify_for(b"k1:00", None, 0),
            Err(TokenError::Invalid)
        );
        assert_eq!(empty.verify(b"k1", msg, 0), Err(TokenError::Invalid));
        assert_eq!(empty.verify(b":abc", msg, 0), Err(TokenError::Invalid));
        assert_eq!(
            empty.verify(fake.as_bytes(), msg, 0),
            Err(TokenError::NotInitialized)
        );
        let mut ring = Keyring::default();
        ring.rotate(b"k1", S1, 0, 0).unwrap();
        assert_eq!(
            ring.verify(fake.as_bytes(), msg, 0),
            Err(TokenError::Invalid)
        );
        let unknown = format!("k9:{}", "0".repeat(64));
        assert_eq!(
            ring.verify(unknown.as_bytes(), msg, 0),
            Err(TokenError::Invalid)
        );
        let t = ring.mint(msg).unwrap();
        let upper = t.to_uppercase().replace("K1", "k1");
        assert_eq!(
            ring.verify(upper.as_bytes(), msg, 0),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn rotation_with_grace() {
        let mut ring = Keyring::default();
        assert_eq!(
            ring.rotate(b"k1", S1, 0, 0),
            Ok(Rotated::Rotated {
                previous: None,
                removed: 0
            })
        );
        assert_eq!(ring.rotate(b"k1", S1, 0, 0), Ok(Rotated::Noop));
        assert_eq!(
            ring.rotate(b"k1", S2, 0, 0),
            Err(KeyError::Conflict("k1".into()))
        );
        let t1 = ring.mint(b"m").unwrap();
        assert_eq!(
            ring.rotate(b"k2", S2, 100, 1000),
            Ok(Rotated::Rotated {
                previous: Some("k1".into()),
                removed: 0
            })
        );
        assert!(ring.mint(b"m").unwrap().starts_with("k2:"));
        assert_eq!(ring.verify(t1.as_bytes(), b"m", 1100), Ok(()));
        assert_eq!(
            ring.verify(t1.as_bytes(), b"m", 1101),
            Err(TokenError::Expired)
        );
        assert_eq!(ring.list(1050), (Some("k2"), vec![("k1", 1100)]));
        assert_eq!(ring.list(1200), (Some("k2"), vec![]));
        // A third key drops the first, whose grace is over.
        assert_eq!(
            ring.rotate(b"k3", S1, 10, 2000),
            Ok(Rotated::Rotated {
                previous: Some("k2".into()),
                removed: 1
            })
        );
        assert_eq!(
            ring.verify(t1.as_bytes(), b"m", 2000),
            Err(TokenError::Invalid)
        );
        // Back to k2 (its own secret): current again, with no expiry.
        ring.rotate(b"k2", S2, 10, 2001).unwrap();
        assert_eq!(ring.list(5000), (Some("k2"), vec![]));
        for (kid, secret, grace) in [
            (&b"a:b"[..], S1, 0),
            (b"", S1, 0),
            (b"ok", b"abc", 0),
            (b"ok", b"zz11", 0),
            (b"ok", b"00", 0),
            (b"ok", S1, GRACE_MAX_MS + 1),
        ] {
            assert!(ring.rotate(kid, secret, grace, 0).is_err());
        }
    }

    #[test]
    fn ring_round_trips() {
        let mut ring = Keyring::default();
        ring.rotate(b"k1", S1, 0, 0).unwrap();
        ring.rotate(b"k2", S2, 50, 10).unwrap();
        let mut w = Writer::default();
        ring.encode(&mut w);
        let bytes = w.buf;
        let mut r = Reader::new(&bytes);
        assert_eq!(Keyring::decode(&mut r).unwrap(), ring);
        assert!(!format!("{ring:?}").contains("1111"));
    }
}
