//! How a holder classifies a failure (FF.FAIL's `CATEGORY` and
//! `NON_RETRYABLE`): the category is kept with the execution's failure
//! reason, and a non-retryable failure ends the execution failed whatever
//! retries its policy has left.
//!
//! The categories that never retry are the reference's non-retryable
//! failure classes (`permanent`, `timeout`, `cancelled`; its `transient`
//! and `infra_crash` retry). Any other category is the application's own
//! and follows the retry policy unless `NON_RETRYABLE` says otherwise.

/// The categories that skip the retry policy, matched ignoring ASCII case.
pub const NON_RETRYABLE_CATEGORIES: &[&str] = &["permanent", "timeout", "cancelled"];

/// A classified failure, as its execution keeps it until the next
/// transition that sets or clears the reason.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Failure {
    /// The category as the holder named it (empty: none).
    pub category: Box<[u8]>,
    /// The failure skips the retry policy.
    pub non_retryable: bool,
}

impl Failure {
    /// The failure `CATEGORY` and `NON_RETRYABLE` describe: none when
    /// neither was given (an unclassified failure follows the policy and
    /// leaves nothing to keep).
    pub fn classify(category: Option<&[u8]>, non_retryable: bool) -> Option<Failure> {
        if category.is_none() && !non_retryable {
            return None;
        }
        let category: Box<[u8]> = category.unwrap_or_default().into();
        let non_retryable = non_retryable || is_non_retryable(&category);
        Some(Failure {
            category,
            non_retryable,
        })
    }

    pub fn heap_bytes(&self) -> usize {
        self.category.len()
    }
}

/// Whether a category is one of the non-retryable ones.
pub fn is_non_retryable(category: &[u8]) -> bool {
    NON_RETRYABLE_CATEGORIES
        .iter()
        .any(|c| c.as_bytes().eq_ignore_ascii_case(category))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(Failure::classify(None, false), None);
        for (cat, nr, want) in [
            (Some(&b"permanent"[..]), false, true),
            (Some(b"PERMANENT"), false, true),
            (Some(b"timeout"), false, true),
            (Some(b"cancelled"), false, true),
            (Some(b"transient"), false, false),
            (Some(b"infra_crash"), false, false),
            (Some(b"validation"), false, false),
            (Some(b"validation"), true, true),
            (Some(b"permanently"), false, false),
            (None, true, true),
        ] {
            let f = Failure::classify(cat, nr).unwrap();
            assert_eq!(f.non_retryable, want, "{cat:?} {nr}");
            assert_eq!(&*f.category, cat.unwrap_or_default());
        }
    }
}
