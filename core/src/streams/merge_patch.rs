//! The rolling summary's JSON Merge Patch (RFC 7396), scoped as the
//! reference scopes it: the patch must be an object, objects nest at most
//! `PATCH_DEPTH_MAX` deep, `null` deletes a member, arrays and scalars
//! replace what was there, and the string `"__ff_null__"` stores a JSON
//! null (which a merge patch cannot otherwise express).

use serde_json::{Map, Value};

/// How deep a patch's objects may nest (the reference's bound).
pub const PATCH_DEPTH_MAX: usize = 16;
/// A leaf equal to this string is stored as JSON null.
pub const NULL_SENTINEL: &str = "__ff_null__";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchError {
    NotJson,
    NotObject,
    TooDeep,
    /// The stored document no longer parses (never written by this code).
    CorruptDocument,
}

impl PatchError {
    pub fn message(self) -> &'static str {
        match self {
            PatchError::NotJson => "patch payload is not valid JSON",
            PatchError::NotObject => "patch must be a JSON object",
            PatchError::TooDeep => "patch_depth_exceeded: objects nest more than 16 deep",
            PatchError::CorruptDocument => "the stored summary document does not parse",
        }
    }
}

/// Parses a patch: an object whose objects nest at most `PATCH_DEPTH_MAX`.
pub fn parse_patch(payload: &[u8]) -> Result<Map<String, Value>, PatchError> {
    let v: Value = serde_json::from_slice(payload).map_err(|_| PatchError::NotJson)?;
    let Value::Object(m) = v else {
        return Err(PatchError::NotObject);
    };
    if object_depth(&m) > PATCH_DEPTH_MAX {
        return Err(PatchError::TooDeep);
    }
    Ok(m)
}

/// Nesting depth of objects under `m` (an object with no object members
/// has depth 0, as the reference counts recursion).
fn object_depth(m: &Map<String, Value>) -> usize {
    m.values()
        .filter_map(|v| match v {
            Value::Object(o) => Some(object_depth(o).saturating_add(1)),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

/// Applies `patch` to `target` (RFC 7396 MergePatch, object-rooted).
pub fn apply(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (k, v) in patch {
        match v {
            Value::Null => {
                target.remove(&k);
            }
            Value::Object(p) => {
                let slot = target.entry(k).or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(t) = slot {
                    apply(t, p);
                }
            }
            leaf => {
                target.insert(k, desentinel(leaf));
            }
        }
    }
}

/// A replacing value with every sentinel string turned into null.
fn desentinel(v: Value) -> Value {
    match v {
        Value::String(s) if s == NULL_SENTINEL => Value::Null,
        Value::Array(a) => Value::Array(a.into_iter().map(desentinel).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, desentinel(v))).collect()),
        other => other,
    }
}

/// Applies a patch to a stored document (`""` is the empty object) and
/// returns the new document's text; the stored one is untouched, so a
/// refused patch changes nothing.
pub fn merge(doc: &str, patch: &[u8]) -> Result<String, PatchError> {
    let patch = parse_patch(patch)?;
    let mut target = if doc.is_empty() {
        Map::new()
    } else {
        match serde_json::from_str::<Value>(doc) {
            Ok(Value::Object(m)) => m,
            _ => return Err(PatchError::CorruptDocument),
        }
    };
    apply(&mut target, patch);
    serde_json::to_string(&Value::Object(target)).map_err(|_| PatchError::CorruptDocument)
}
