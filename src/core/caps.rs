//! Capability sets: what an execution requires and what a worker offers.
//!
//! Both travel as comma-separated lists with the reference's bounds
//! (4096 bytes, 256 tokens). A required token may not contain control bytes,
//! space or DEL; it fails closed because an empty requirement matches any
//! worker.

pub const CAPS_MAX_BYTES: usize = 4096;
pub const CAPS_MAX_TOKENS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapsError {
    TooManyBytes,
    TooManyTokens,
    EmptyToken,
    ControlOrWhitespace,
}

impl CapsError {
    pub fn detail(&self) -> &'static str {
        match self {
            CapsError::TooManyBytes => "too_many_bytes",
            CapsError::TooManyTokens => "too_many_tokens",
            CapsError::EmptyToken => "empty_token",
            CapsError::ControlOrWhitespace => "control_or_whitespace",
        }
    }
}

/// A sorted, de-duplicated capability set, kept as its canonical CSV.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CapSet(Box<str>);

impl CapSet {
    pub fn empty() -> CapSet {
        CapSet(Box::from(""))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.0.split(',').filter(|t| !t.is_empty())
    }

    /// Parses a required-capabilities CSV. Strict: every token must be
    /// non-empty and printable without spaces.
    pub fn parse_required(csv: &[u8]) -> Result<CapSet, CapsError> {
        Self::parse(csv, true)
    }

    /// Parses a worker's capabilities CSV. Stray separators are skipped as
    /// the reference does; the byte rules still hold.
    pub fn parse_worker(csv: &[u8]) -> Result<CapSet, CapsError> {
        Self::parse(csv, false)
    }

    fn parse(csv: &[u8], strict: bool) -> Result<CapSet, CapsError> {
        if csv.len() > CAPS_MAX_BYTES {
            return Err(CapsError::TooManyBytes);
        }
        if csv.is_empty() {
            return Ok(CapSet::empty());
        }
        let mut tokens: Vec<&[u8]> = Vec::new();
        for t in csv.split(|&b| b == b',') {
            if t.is_empty() {
                if strict {
                    return Err(CapsError::EmptyToken);
                }
                continue;
            }
            if t.iter().any(|&b| b <= 0x20 || b == 0x7f) {
                return Err(CapsError::ControlOrWhitespace);
            }
            tokens.push(t);
            if tokens.len() > CAPS_MAX_TOKENS {
                return Err(CapsError::TooManyTokens);
            }
        }
        tokens.sort_unstable();
        tokens.dedup();
        let joined = tokens.join(&b","[..]);
        // Bytes above 0x7f are accepted as the reference does; keep them
        // only if they form valid UTF-8 so the set can be shown as text.
        match String::from_utf8(joined) {
            Ok(s) => Ok(CapSet(s.into_boxed_str())),
            Err(_) => Err(CapsError::ControlOrWhitespace),
        }
    }

    /// True when every token of `self` is in `offered`. Both are sorted.
    pub fn is_subset_of(&self, offered: &CapSet) -> bool {
        if self.is_empty() {
            return true;
        }
        let mut have = offered.tokens().peekable();
        'need: for need in self.tokens() {
            while let Some(h) = have.peek() {
                match (*h).cmp(need) {
                    std::cmp::Ordering::Less => {
                        have.next();
                    }
                    std::cmp::Ordering::Equal => {
                        have.next();
                        continue 'need;
                    }
                    std::cmp::Ordering::Greater => return false,
                }
            }
            return false;
        }
        true
    }

    pub fn from_canonical(s: String) -> Result<CapSet, CapsError> {
        let parsed = Self::parse_required(s.as_bytes())?;
        if parsed.0.as_ref() != s {
            return Err(CapsError::EmptyToken);
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sorted_and_deduped() {
        let c = CapSet::parse_required(b"gpu,cuda,gpu").unwrap();
        assert_eq!(c.as_str(), "cuda,gpu");
        assert_eq!(CapSet::parse_worker(b",a,,b,").unwrap().as_str(), "a,b");
        assert_eq!(CapSet::parse_required(b"a,,b"), Err(CapsError::EmptyToken));
        assert_eq!(
            CapSet::parse_required(b"a b"),
            Err(CapsError::ControlOrWhitespace)
        );
        assert_eq!(
            CapSet::parse_required(b"a\0"),
            Err(CapsError::ControlOrWhitespace)
        );
        assert_eq!(
            CapSet::parse_required("东京-gpu".as_bytes())
                .unwrap()
                .as_str(),
            "东京-gpu"
        );
        let many: Vec<String> = (0..257).map(|i| format!("c{i}")).collect();
        assert_eq!(
            CapSet::parse_required(many.join(",").as_bytes()),
            Err(CapsError::TooManyTokens)
        );
        assert_eq!(
            CapSet::parse_required(&vec![b'a'; 4097]),
            Err(CapsError::TooManyBytes)
        );
        assert!(CapSet::parse_required(&vec![b'a'; 4096]).is_ok());
    }

    #[test]
    fn subset() {
        let w = CapSet::parse_worker(b"a,c,e").unwrap();
        assert!(CapSet::empty().is_subset_of(&w));
        assert!(CapSet::parse_required(b"a,e").unwrap().is_subset_of(&w));
        assert!(!CapSet::parse_required(b"a,b").unwrap().is_subset_of(&w));
        assert!(!CapSet::parse_required(b"f").unwrap().is_subset_of(&w));
        assert!(!CapSet::parse_required(b"a")
            .unwrap()
            .is_subset_of(&CapSet::empty()));
    }
}
