//! JSON rules for signed data: RFC 8785 canonical form, and no numbers that JCS could render
//! differently across implementations.

use crate::error::FieldError;

/// Largest integer every JCS implementation renders exactly (IEEE 754 double precision).
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// RFC 8785 (JCS) canonical bytes of a JSON value.
pub fn canonical_bytes<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Serializing an in-memory serde_json value (or a plain struct of strings and integers)
    // cannot fail; the fallback keeps this infallible without a panic path.
    serde_json_canonicalizer::to_vec(value).unwrap_or_default()
}

/// Refuses floats and unsafe integers anywhere in `value`, naming the JSON pointer of the first.
pub fn check_numbers(value: &serde_json::Value, pointer: &mut String) -> Result<(), FieldError> {
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
                check_numbers(item, pointer)?;
                pointer.truncate(len);
            }
            Ok(())
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&k.replace('~', "~0").replace('/', "~1"));
                check_numbers(v, pointer)?;
                pointer.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn display_pointer(p: &str) -> String {
    if p.is_empty() { "/".to_owned() } else { p.to_owned() }
}
