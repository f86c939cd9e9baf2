//! JSON rules for signed data: RFC 8785 canonical form, and no numbers that JCS could render
//! differently across implementations.

use crate::error::FieldError;

/// Largest integer every JCS implementation renders exactly (IEEE 754 double precision).
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The value at a JSON pointer (RFC 6901), as [`serde_json::Value::pointer`] finds it, without
/// allocating: `pointer` builds a `String` per segment to unescape it, and readers look up a
/// handful of fields in every record they read. Segments with `~` escapes take `pointer`'s path.
pub fn at<'v>(value: &'v serde_json::Value, ptr: &str) -> Option<&'v serde_json::Value> {
    if ptr.contains('~') {
        return value.pointer(ptr);
    }
    if ptr.is_empty() {
        return Some(value);
    }
    let rest = ptr.strip_prefix('/')?;
    let mut v = value;
    for seg in rest.split('/') {
        v = match v {
            serde_json::Value::Object(m) => m.get(seg)?,
            serde_json::Value::Array(a) => a.get(array_index(seg)?)?,
            _ => return None,
        };
    }
    Some(v)
}

/// An array index segment as RFC 6901 spells it: decimal, no sign, no leading zero.
fn array_index(seg: &str) -> Option<usize> {
    if seg.is_empty() || (seg.len() > 1 && seg.starts_with('0')) || seg.starts_with('+') {
        return None;
    }
    seg.parse().ok()
}

/// RFC 8785 (JCS) canonical bytes of a JSON value.
///
/// Evidence never contains floats (input parsing refuses them), and for float-free JSON JCS is
/// small: keys sorted by UTF-16 code units, ECMAScript string escaping, integers in decimal.
/// This writer does exactly that without the general canonicalizer's intermediate maps and
/// float formatting, which were a third of an append's CPU. A value that does hold a float
/// (never produced by this crate) goes through `serde_json_canonicalizer`, and the tests check
/// this writer against that crate on generated values.
pub fn canonical_bytes(value: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    if write_canonical(value, &mut out).is_err() {
        // Serializing an in-memory value cannot fail; the fallback keeps this panic-free.
        return serde_json_canonicalizer::to_vec(value).unwrap_or_default();
    }
    out
}

struct HasFloat;

fn write_canonical(value: &serde_json::Value, out: &mut Vec<u8>) -> Result<(), HasFloat> {
    use serde_json::Value;
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes());
            } else if let Some(i) = n.as_i64() {
                out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
            } else {
                return Err(HasFloat);
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            // JCS orders keys by their UTF-16 code units, which differs from byte order only
            // for characters above U+FFFF against U+E000..U+FFFF (UTF-8 lead bytes 0xEE and
            // up). A map iterates in byte order (serde_json without `preserve_order` is a
            // `BTreeMap`), so keys without such characters, i.e. every field name in practice,
            // are written as they come. That they do come in order is checked, not assumed: a
            // dependency turning on `preserve_order` must not change a signed byte.
            let mut previous: Option<&str> = None;
            let in_order = map.keys().all(|k| {
                let ok = !k.bytes().any(|b| b >= 0xEE) && previous.is_none_or(|p| p < k.as_str());
                previous = Some(k);
                ok
            });
            if in_order {
                for (i, (k, v)) in map.iter().enumerate() {
                    member(i, k, v, out)?;
                }
            } else {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
                for (i, (k, v)) in entries.into_iter().enumerate() {
                    member(i, k, v, out)?;
                }
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// The `n`th member of an object, `"key":value`, after a comma unless it is the first.
fn member(
    n: usize,
    key: &str,
    value: &serde_json::Value,
    out: &mut Vec<u8>,
) -> Result<(), HasFloat> {
    if n > 0 {
        out.push(b',');
    }
    write_string(key, out);
    out.push(b':');
    write_canonical(value, out)
}

/// Appends `s` as an RFC 8785 (JCS) string: for writers that produce canonical JSON directly.
pub fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0x08 => Some(b"\\b"),
            0x0c => Some(b"\\f"),
            0x00..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match escape {
            Some(e) => out.extend_from_slice(e),
            None => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn numbers_ok(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u <= MAX_SAFE_INTEGER,
            (None, Some(i)) => i.unsigned_abs() <= MAX_SAFE_INTEGER,
            (None, None) => false,
        },
        serde_json::Value::Array(items) => items.iter().all(numbers_ok),
        serde_json::Value::Object(map) => map.values().all(numbers_ok),
        _ => true,
    }
}

/// Refuses floats and unsafe integers anywhere in `value`, naming the JSON pointer of the first.
/// The common case (no bad number) is one allocation-free pass; the pointer is only built when
/// there is something to report.
pub fn check_numbers(value: &serde_json::Value, pointer: &mut String) -> Result<(), FieldError> {
    if numbers_ok(value) {
        return Ok(());
    }
    locate_bad_number(value, pointer)
}

fn locate_bad_number(value: &serde_json::Value, pointer: &mut String) -> Result<(), FieldError> {
    match value {
        serde_json::Value::Number(n) => {
            let safe = match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => u <= MAX_SAFE_INTEGER,
                (None, Some(i)) => i.unsigned_abs() <= MAX_SAFE_INTEGER,
                (None, None) => {
                    return Err(FieldError::Float {
                        pointer: display_pointer(pointer),
                    });
                }
            };
            if safe {
                Ok(())
            } else {
                Err(FieldError::IntegerRange {
                    pointer: display_pointer(pointer),
                })
            }
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&i.to_string());
                locate_bad_number(item, pointer)?;
                pointer.truncate(len);
            }
            Ok(())
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&k.replace('~', "~0").replace('/', "~1"));
                locate_bad_number(v, pointer)?;
                pointer.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn display_pointer(p: &str) -> String {
    if p.is_empty() {
        "/".to_owned()
    } else {
        p.to_owned()
    }
}
