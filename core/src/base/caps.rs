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
        if let Some(c) = Self::canonical(csv) {
            return Ok(c);
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

    /// `csv` as it is when it is already canonical (tokens valid, sorted,
    /// unique): one pass instead of a sort, for the worker that sends the
    /// same set on every claim.
    fn canonical(csv: &[u8]) -> Option<CapSet> {
        let mut prev: Option<&[u8]> = None;
        let mut n = 0;
        for t in csv.split(|&b| b == b',') {
            n += 1;
            if t.is_empty() || n > CAPS_MAX_TOKENS || t.iter().any(|&b| b <= 0x20 || b == 0x7f) {
                return None;
            }
            if prev.is_some_and(|p| p >= t) {
                return None;
            }
            prev = Some(t);
        }
        let s = std::str::from_utf8(csv).ok()?;
        Some(CapSet(s.into()))
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

    /// How many tokens the set has.
    pub fn len(&self) -> usize {
        self.tokens().count()
    }

    pub fn from_canonical(s: String) -> Result<CapSet, CapsError> {
        let parsed = Self::parse_required(s.as_bytes())?;
        if parsed.0.as_ref() != s {
            return Err(CapsError::EmptyToken);
        }
        Ok(parsed)
    }
}

/// A capability set split into its tokens once, to check many
/// requirements against it (a worker's offer against every set of a lane)
/// in O(tokens needed × log tokens offered) each.
#[derive(Clone, Debug)]
pub struct Offer {
    caps: CapSet,
    /// Byte ranges of the tokens in `caps`, in (sorted) token order.
    spans: Box<[(u16, u16)]>,
}

impl Offer {
    pub fn new(caps: &CapSet) -> Offer {
        let mut spans = Vec::new();
        let mut start = 0usize;
        for t in caps.0.split(',') {
            let end = start + t.len();
            if !t.is_empty() {
                // Sets are at most CAPS_MAX_BYTES (4096) long.
                spans.push((start as u16, end as u16));
            }
            start = end + 1;
        }
        Offer {
            caps: caps.clone(),
            spans: spans.into_boxed_slice(),
        }
    }

    pub fn caps(&self) -> &CapSet {
        &self.caps
    }

    fn token(&self, span: (u16, u16)) -> &str {
        self.caps
            .0
            .get(usize::from(span.0)..usize::from(span.1))
            .unwrap_or_default()
    }

    /// True when every token `need` requires is offered.
    pub fn covers(&self, need: &CapSet) -> bool {
        need.tokens().all(|t| {
            self.spans
                .binary_search_by(|&sp| self.token(sp).cmp(t))
                .is_ok()
        })
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
    fn canonical_input_is_taken_as_is_and_agrees_with_a_sort() {
        for csv in [
            "a",
            "a,b",
            "b,a",
            "a,a",
            "a,,b",
            "x1,x10,x2",
            "x2,x10",
            ",a",
            "a b",
        ] {
            let sorted = CapSet::parse_worker(csv.as_bytes());
            let mut toks: Vec<&str> = csv.split(',').filter(|t| !t.is_empty()).collect();
            toks.sort_unstable();
            toks.dedup();
            if let Ok(c) = &sorted {
                assert_eq!(c.as_str(), toks.join(","), "{csv}");
            }
            assert_eq!(
                CapSet::parse_required(csv.as_bytes()).is_ok(),
                !csv.contains(' ') && !csv.split(',').any(str::is_empty),
                "{csv}"
            );
        }
    }

    #[test]
    fn an_offer_covers_what_subset_says() {
        let sets = ["", "a", "b", "a,b", "a,c", "b,c,d", "x10", "x2,x10"];
        for w in sets {
            let worker = CapSet::parse_worker(w.as_bytes()).unwrap();
            let offer = Offer::new(&worker);
            for n in sets {
                let need = CapSet::parse_required(n.as_bytes()).unwrap_or_default();
                assert_eq!(
                    offer.covers(&need),
                    need.is_subset_of(&worker),
                    "{n} in {w}"
                );
            }
        }
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
