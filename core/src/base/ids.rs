//! Execution ids, partition tags and the id minter.
//!
//! An execution id is `{fp:N}:<uuid>`: the hash tag pins every key of one
//! execution (and of its partition index) to one cluster slot.

/// CRC16-XMODEM, the checksum Valkey Cluster uses for key slots and the
/// reference uses to place a solo execution's lane on a partition.
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The cluster slot of partition `p`'s keys: their hash tag is `{fp:p}`,
/// so the slot is the CRC16 of `fp:p`, as the server computes it.
pub fn partition_slot(p: u16) -> u16 {
    crc16(format!("fp:{p}").as_bytes()) & 0x3fff
}

/// The partition a solo (flow-less) execution on `lane` lives in.
pub fn lane_partition(lane: &[u8], partitions: u16) -> u16 {
    crc16(lane) % partitions.max(1)
}

/// Eight lowercase hex digits, packed in a u64 with the first digit in the
/// top byte, as a 32-bit value, and a flag that is nonzero if any byte is
/// not `0-9a-f`. Works on all eight bytes at once and without branches (a
/// uuid checks all four of its words, then tests the flags once): with
/// every byte below 0x80, adding `0x80 - c` to each sets its top bit
/// exactly when the byte is at least `c`, and no carry crosses into the
/// next byte. A byte of 0x80 or more is flagged, so what such carries do
/// to the rest does not matter.
#[inline(always)]
fn hex8(x: u64) -> (u64, u32) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let at_least = |c: u8| x.wrapping_add(ONES * u64::from(0x80 - c)) & HIGH;
    let digit = at_least(b'0') & !at_least(b'9' + 1);
    let letter = at_least(b'a') & !at_least(b'f' + 1);
    let bad = (x & HIGH) | ((digit | letter) ^ HIGH);
    // '0'-'9' are 0x30-0x39 and 'a'-'f' 0x61-0x66: the low nibble, plus 9
    // for letters (bit 6 set).
    let mut v = (x & (ONES * 0x0f)) + ((x >> 6) & ONES) * 9;
    v = (v | (v >> 4)) & 0x00ff_00ff_00ff_00ff;
    v = (v | (v >> 8)) & 0x0000_ffff_0000_ffff;
    v = (v | (v >> 16)) & 0x0000_0000_ffff_ffff;
    (bad, v as u32)
}

/// Every byte's two lowercase hex digits: formatting a uuid is then one
/// lookup and one two-byte store per byte. (Indexing in a const block is
/// checked when the crate compiles, not at run time.)
#[allow(clippy::indexing_slicing)]
const HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [DIGITS[i >> 4], DIGITS[i & 15]];
        i += 1;
    }
    t
};

/// Where each of a uuid's sixteen bytes goes in its text form.
const TEXT_AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/// A 128-bit identifier printed as a lowercase hyphenated UUID. Aligned to
/// 8 bytes, not a `u128`'s 16, so records and map entries holding one pack
/// without padding (a hash slot of uuid and pointer is 24 bytes, not 32).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(C, packed(8))]
pub struct Uuid(pub u128);

impl Uuid {
    pub const TEXT_LEN: usize = 36;

    /// Parses the canonical (lowercase, hyphenated) form only, so one id has
    /// exactly one key name. Hot path (every fenced call parses three):
    /// eight digits at a time.
    pub fn parse(s: &[u8]) -> Option<Uuid> {
        let s: &[u8; Uuid::TEXT_LEN] = s.try_into().ok()?;
        let at = |i: usize| -> u64 {
            let mut b = [0u8; 4];
            if let Some(src) = s.get(i..i + 4) {
                b.copy_from_slice(src);
            }
            u64::from(u32::from_be_bytes(b))
        };
        let (f0, a) = hex8(at(0) << 32 | at(4));
        let (f1, b) = hex8(at(9) << 32 | at(14));
        let (f2, c) = hex8(at(19) << 32 | at(24));
        let (f3, d) = hex8(at(28) << 32 | at(32));
        let dashes = [s[8], s[13], s[18], s[23]] == [b'-'; 4];
        if f0 | f1 | f2 | f3 != 0 || !dashes {
            return None;
        }
        Some(Uuid(
            (u128::from(a) << 96) | (u128::from(b) << 64) | (u128::from(c) << 32) | u128::from(d),
        ))
    }

    /// The hyphenated text form, on the stack. Hot path (every claim
    /// reply has three ids): one table lookup per byte.
    pub fn text(&self) -> [u8; Uuid::TEXT_LEN] {
        let mut out = [0u8; Uuid::TEXT_LEN];
        self.write(&mut out);
        out
    }

    /// Writes the text form into `out`.
    #[inline(always)]
    fn write(&self, out: &mut [u8; Uuid::TEXT_LEN]) {
        let bytes = { self.0 }.to_be_bytes();
        for (&b, &at) in bytes.iter().zip(TEXT_AT.iter()) {
            // A byte always indexes the 256 pairs: the check folds away.
            if let (Some(dst), Some(pair)) =
                (out.get_mut(at..at + 2), HEX_PAIRS.get(usize::from(b)))
            {
                dst.copy_from_slice(pair);
            }
        }
        for at in [8, 13, 18, 23] {
            if let Some(d) = out.get_mut(at) {
                *d = b'-';
            }
        }
    }

    pub fn write_to(&self, out: &mut String) {
        out.push_str(std::str::from_utf8(&self.text()).unwrap_or_default());
    }
}

impl std::fmt::Display for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::with_capacity(Self::TEXT_LEN);
        self.write_to(&mut s);
        f.write_str(&s)
    }
}

/// An execution's identity: its partition and its uuid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExecId {
    pub partition: u16,
    pub uuid: Uuid,
}

/// What a client may name as the target of a submit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubmitTarget {
    /// `*`: the module picks the lane's solo partition and mints the uuid.
    Auto,
    /// `{fp:N}`: the module mints the uuid in partition N.
    Partition(u16),
    /// `{fp:N}:<uuid>`: caller-minted.
    Exact(ExecId),
}

/// Parses `{fp:N}` at the start of `s`; returns N and the rest.
fn parse_tag(s: &[u8]) -> Option<(u16, &[u8])> {
    let rest = s.strip_prefix(b"{fp:")?;
    let close = rest.iter().position(|&c| c == b'}')?;
    let digits = rest.get(..close)?;
    if digits.is_empty() || digits.len() > 5 || (digits.len() > 1 && digits.first() == Some(&b'0'))
    {
        return None;
    }
    let mut n: u32 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(d - b'0');
    }
    let n = u16::try_from(n).ok()?;
    Some((n, rest.get(close + 1..)?))
}

impl ExecId {
    /// Parses `{fp:N}:<uuid>`, checking N against the partition count.
    pub fn parse(s: &[u8], partitions: u16) -> Option<ExecId> {
        let (partition, rest) = parse_tag(s)?;
        if partition >= partitions {
            return None;
        }
        let uuid = Uuid::parse(rest.strip_prefix(b":")?)?;
        Some(ExecId { partition, uuid })
    }

    /// The id's text. Hot path: no formatter, no allocation.
    pub fn text(&self) -> IdText {
        let mut t = IdText {
            buf: [0; IdText::MAX],
            len: 0,
        };
        t.buf[..4].copy_from_slice(b"{fp:");
        // The partition's digits, most significant first, no leading zeros.
        let n = u32::from(self.partition);
        let width = match n {
            0..=9 => 1,
            10..=99 => 2,
            100..=999 => 3,
            1000..=9999 => 4,
            _ => 5,
        };
        let mut rest = n;
        for i in (4..4 + width).rev() {
            if let Some(d) = t.buf.get_mut(i) {
                *d = b'0' + (rest % 10) as u8;
            }
            rest /= 10;
        }
        let at = 4 + width;
        if let Some(tail) = t.buf.get_mut(at..at + 2 + Uuid::TEXT_LEN) {
            let (close, uuid) = tail.split_at_mut(2);
            close.copy_from_slice(b"}:");
            if let Ok(uuid) = <&mut [u8; Uuid::TEXT_LEN]>::try_from(uuid) {
                self.uuid.write(uuid);
            }
            t.len = at + 2 + Uuid::TEXT_LEN;
        }
        t
    }

    /// The id's text as a `String` (reads and listings).
    pub fn key(&self) -> String {
        String::from_utf8_lossy(self.text().as_bytes()).into_owned()
    }
}

/// An execution id's text on the stack: `{fp:N}:<uuid>` is at most 47 bytes.
#[derive(Clone, Copy)]
pub struct IdText {
    buf: [u8; IdText::MAX],
    len: usize,
}

impl IdText {
    const MAX: usize = 11 + Uuid::TEXT_LEN;

    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

impl SubmitTarget {
    pub fn parse(s: &[u8], partitions: u16) -> Option<SubmitTarget> {
        if s == b"*" {
            return Some(SubmitTarget::Auto);
        }
        let (partition, rest) = parse_tag(s)?;
        if partition >= partitions {
            return None;
        }
        if rest.is_empty() {
            return Some(SubmitTarget::Partition(partition));
        }
        ExecId::parse(s, partitions).map(SubmitTarget::Exact)
    }
}

/// The key of a partition's index: `ff:idx:{fp:N}`.
pub fn index_key(partition: u16) -> String {
    format!("ff:idx:{{fp:{partition}}}")
}

/// The name a claim checks the caller's ACL key permissions on for a
/// partition: `{fp:N}:`, the prefix of every execution id in it (the
/// argument keyed commands declare), so one pattern (`~{fp:1}*`) governs
/// claims and keyed commands alike. The closing brace keeps `{fp:1}*`
/// from matching partition 10.
pub fn acl_name(partition: u16) -> String {
    format!("{{fp:{partition}}}:")
}

/// The key of an idempotency record, in the execution's partition.
pub fn idempotency_key(partition: u16, namespace: &[u8], key: &[u8]) -> Vec<u8> {
    let mut k = format!("ff:idem:{{fp:{partition}}}:").into_bytes();
    k.extend_from_slice(&(namespace.len() as u64).to_string().into_bytes());
    k.push(b':');
    k.extend_from_slice(namespace);
    k.push(b':');
    k.extend_from_slice(key);
    k
}

/// Mints uuids from a SplitMix64 stream. Only the primary mints; replicas
/// receive the minted values pinned in the replicated command.
pub struct Minter {
    state: u64,
}

impl Minter {
    pub fn new(seed: u64) -> Minter {
        Minter { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A version-4 UUID.
    pub fn uuid(&mut self) -> Uuid {
        let hi = u128::from(self.next_u64());
        let lo = u128::from(self.next_u64());
        let mut v = (hi << 64) | lo;
        v &= !(0xF_u128 << 76);
        v |= 0x4_u128 << 76;
        v &= !(0x3_u128 << 62);
        v |= 0x2_u128 << 62;
        Uuid(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_cluster_reference_value() {
        // The value Valkey's cluster spec gives for "123456789".
        assert_eq!(crc16(b"123456789"), 0x31C3);
    }

    #[test]
    fn uuid_round_trips() {
        let mut m = Minter::new(7);
        for _ in 0..100 {
            let u = m.uuid();
            let s = u.to_string();
            assert_eq!(s.len(), 36);
            assert_eq!(&s[14..15], "4");
            assert_eq!(Uuid::parse(s.as_bytes()), Some(u));
            // Any one digit made invalid (upper case, non-hex, a byte
            // with the high bit) is refused.
            for (at, c) in s.bytes().enumerate() {
                if c == b'-' {
                    continue;
                }
                for bad in [b'G', b'A', b'g', b' ', 0x80 | c, b'-'] {
                    let mut t = s.clone().into_bytes();
                    t[at] = bad;
                    assert_eq!(Uuid::parse(&t), None, "{at} {bad}");
                }
            }
        }
        assert_eq!(Uuid::parse(&[b'0'; 36]), None, "no hyphens");
    }

    /// The obvious per-digit parser, to check the fast one against.
    fn parse_slowly(s: &[u8]) -> Option<Uuid> {
        if s.len() != 36 {
            return None;
        }
        let mut v: u128 = 0;
        for (i, &c) in s.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return None;
                }
                continue;
            }
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                _ => return None,
            };
            v = (v << 4) | u128::from(d);
        }
        Some(Uuid(v))
    }

    #[test]
    fn uuid_text_is_the_plain_format() {
        let mut m = Minter::new(5);
        for u in [
            Uuid(0),
            Uuid(u128::MAX),
            Uuid(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210),
        ]
        .into_iter()
        .chain((0..1000).map(|_| m.uuid()))
        {
            let hex = format!("{:032x}", { u.0 });
            let plain = format!(
                "{}-{}-{}-{}-{}",
                &hex[..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..]
            );
            assert_eq!(std::str::from_utf8(&u.text()).unwrap(), plain);
        }
    }

    #[test]
    fn uuid_parse_matches_the_plain_parser_for_every_byte() {
        let base = *b"0123abcd-ef45-6789-a0b1-c2d3e4f5a6b7";
        assert_eq!(Uuid::parse(&base), parse_slowly(&base));
        assert!(parse_slowly(&base).is_some());
        for at in 0..36 {
            for byte in 0..=255u8 {
                let mut t = base;
                t[at] = byte;
                assert_eq!(Uuid::parse(&t), parse_slowly(&t), "byte {byte} at {at}");
            }
        }
        let mut m = Minter::new(3);
        for _ in 0..1000 {
            let u = m.uuid();
            assert_eq!(Uuid::parse(&u.text()), Some(u));
        }
        assert_eq!(Uuid::parse(&base[..35]), None);
    }

    #[test]
    fn exec_id_parses_and_rejects() {
        let id = b"{fp:12}:0195f3a2-7c4e-4d1a-9b2c-3d4e5f607182";
        let e = ExecId::parse(id, 256).unwrap();
        assert_eq!(e.partition, 12);
        assert_eq!(e.key().as_bytes(), id);
        for p in [0u16, 7, 9, 10, 99, 100, 255, 999, 1000, 9999, 10000, 65535] {
            let e = ExecId {
                partition: p,
                uuid: Uuid(5),
            };
            assert_eq!(e.key(), format!("{{fp:{p}}}:{}", e.uuid));
        }
        assert!(ExecId::parse(id, 12).is_none());
        for bad in [
            &b"{fp:012}:0195f3a2-7c4e-4d1a-9b2c-3d4e5f607182"[..],
            b"{fp:}:0195f3a2-7c4e-4d1a-9b2c-3d4e5f607182",
            b"{fp:1}0195f3a2-7c4e-4d1a-9b2c-3d4e5f607182",
            b"{fp:1}:0195f3a2-7c4e-4d1a-9b2c-3d4e5f60718",
            b"{fp:1}:0195f3a2x7c4e-4d1a-9b2c-3d4e5f607182",
            b"{fp:1}:0195F3A2-7c4e-4d1a-9b2c-3d4e5f607182",
            b"{fp:99999999}:0195f3a2-7c4e-4d1a-9b2c-3d4e5f607182",
            b"",
            b"{fp:1",
        ] {
            assert!(
                ExecId::parse(bad, 256).is_none(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn submit_targets() {
        assert_eq!(SubmitTarget::parse(b"*", 256), Some(SubmitTarget::Auto));
        assert_eq!(
            SubmitTarget::parse(b"{fp:3}", 256),
            Some(SubmitTarget::Partition(3))
        );
        assert_eq!(SubmitTarget::parse(b"{fp:300}", 256), None);
        assert!(matches!(
            SubmitTarget::parse(b"{fp:3}:0195f3a2-7c4e-4d1a-9b2c-3d4e5f607182", 256),
            Some(SubmitTarget::Exact(_))
        ));
        assert_eq!(SubmitTarget::parse(b"{fp:3}:", 256), None);
    }
}
