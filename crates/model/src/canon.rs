//! RFC 8785 (JCS) canonical bytes of any `Serialize` value, written straight from its serde
//! calls: no `serde_json::Value` tree in between.
//!
//! [`canonical_json`] is defined as `canonical_bytes(&serde_json::to_value(v))`, and is that
//! byte for byte (the tests hold them equal on generated values and on real documents). The
//! direct writer covers float-free data, which is all Trailmark signs or digests; anything it
//! does not cover the same way as `to_value` (a float, a duplicate key, a non-string map key,
//! a `RawValue`) makes it give up, and the definition is used instead. It exists because a
//! 10,000-record dossier's view took 19 ms to digest through a `Value`, most of it building and
//! freeing the tree.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt::Display;

use serde::ser::{self, Serialize};

use crate::json::{canonical_bytes, write_string};

/// RFC 8785 canonical bytes of `v` as JSON: `canonical_bytes(&serde_json::to_value(v))`, with
/// `null` for a value `to_value` refuses.
pub fn canonical_json<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    direct(v).unwrap_or_else(|| {
        canonical_bytes(&serde_json::to_value(v).unwrap_or(serde_json::Value::Null))
    })
}

/// The direct writer alone: `None` where it gives up.
fn direct<T: Serialize + ?Sized>(v: &T) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(1024);
    v.serialize(Writer { out: &mut out }).ok()?;
    Some(out)
}

/// Something the direct writer does not render the way `to_value` + `canonical_bytes` would
/// (or at all): the caller falls back to that definition.
#[derive(Debug)]
struct GiveUp;

impl Display for GiveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not handled by the direct canonical writer")
    }
}

impl std::error::Error for GiveUp {}

impl ser::Error for GiveUp {
    fn custom<T: Display>(_: T) -> Self {
        GiveUp
    }
}

/// JCS key order: UTF-16 code units. Byte order is the same for ASCII (every field name).
fn key_order(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.cmp(b)
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

struct Writer<'o> {
    out: &'o mut Vec<u8>,
}

fn int(out: &mut Vec<u8>, v: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// An object being written: its members go straight into the output; if their keys did not
/// arrive in JCS order they are put in order when it ends.
struct Object<'o> {
    out: &'o mut Vec<u8>,
    /// Where the first member starts (just after `{`).
    start: usize,
    /// Each member's key and the byte range of `"key":value` in `out`.
    members: Vec<(KeyText, usize, usize)>,
    sorted: bool,
    /// A map's key, between `serialize_key` and `serialize_value`.
    pending: Option<KeyText>,
}

/// A field name (static) or a map key (written out by [`KeyWriter`]).
type KeyText = Cow<'static, str>;

impl<'o> Object<'o> {
    fn new(out: &'o mut Vec<u8>) -> Object<'o> {
        out.push(b'{');
        let start = out.len();
        Object {
            out,
            start,
            members: Vec::new(),
            sorted: true,
            pending: None,
        }
    }

    fn member<T: Serialize + ?Sized>(&mut self, key: KeyText, v: &T) -> Result<(), GiveUp> {
        if let Some((last, _, _)) = self.members.last() {
            match key_order(last.as_ref(), key.as_ref()) {
                Ordering::Less => {}
                Ordering::Equal => return Err(GiveUp),
                Ordering::Greater => self.sorted = false,
            }
            self.out.push(b',');
        }
        let from = self.out.len();
        write_string(key.as_ref(), self.out);
        self.out.push(b':');
        v.serialize(Writer {
            out: &mut *self.out,
        })?;
        self.members.push((key, from, self.out.len()));
        Ok(())
    }

    /// Puts the members in order if they are not, closes the object and hands the output back.
    fn finish(mut self) -> Result<&'o mut Vec<u8>, GiveUp> {
        if !self.sorted {
            self.members
                .sort_by(|a, b| key_order(a.0.as_ref(), b.0.as_ref()));
            if self
                .members
                .windows(2)
                .any(|w| w[0].0.as_ref() == w[1].0.as_ref())
            {
                // `to_value` keeps the last of duplicate keys; not worth copying that here.
                return Err(GiveUp);
            }
            let written = self.out.split_off(self.start);
            for (n, (_, from, to)) in self.members.iter().enumerate() {
                if n > 0 {
                    self.out.push(b',');
                }
                self.out
                    .extend_from_slice(&written[from - self.start..to - self.start]);
            }
        }
        self.out.push(b'}');
        Ok(self.out)
    }

    fn end(self) -> Result<(), GiveUp> {
        self.finish().map(drop)
    }
}

struct Array<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
}

impl Array<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), GiveUp> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        v.serialize(Writer {
            out: &mut *self.out,
        })
    }
}

/// `serialize_<int>` methods that write the integer in decimal.
macro_rules! write_ints { ($($f:ident $t:ty),*) => {$(
    fn $f(self, v: $t) -> Result<(), GiveUp> {
        int(self.out, v);
        Ok(())
    }
)*} }

/// `serialize_<scalar>` methods that give up (the caller falls back to the definition).
macro_rules! give_up { ($ok:ty; $($f:ident $t:ty),*) => {$(
    fn $f(self, _: $t) -> Result<$ok, GiveUp> {
        Err(GiveUp)
    }
)*} }

impl<'o> ser::Serializer for Writer<'o> {
    type Ok = ();
    type Error = GiveUp;
    type SerializeSeq = Array<'o>;
    type SerializeTuple = Array<'o>;
    type SerializeTupleStruct = Array<'o>;
    type SerializeTupleVariant = TupleVariant<'o>;
    type SerializeMap = Object<'o>;
    type SerializeStruct = Object<'o>;
    type SerializeStructVariant = StructVariant<'o>;

    fn serialize_bool(self, v: bool) -> Result<(), GiveUp> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    write_ints!(serialize_i8 i8, serialize_i16 i16, serialize_i32 i32, serialize_i64 i64,
        serialize_u8 u8, serialize_u16 u16, serialize_u32 u32, serialize_u64 u64);
    // 128-bit integers, floats: whatever `to_value` and `canonical_bytes` make of them.
    give_up!((); serialize_i128 i128, serialize_u128 u128, serialize_f32 f32, serialize_f64 f64);
    fn serialize_char(self, v: char) -> Result<(), GiveUp> {
        write_string(v.encode_utf8(&mut [0u8; 4]), self.out);
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), GiveUp> {
        write_string(v, self.out);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), GiveUp> {
        // serde_json: an array of numbers.
        let mut a = Array {
            out: self.out,
            first: true,
        };
        a.out.push(b'[');
        for b in v {
            ser::SerializeSeq::serialize_element(&mut a, b)?;
        }
        ser::SerializeSeq::end(a)
    }
    fn serialize_none(self) -> Result<(), GiveUp> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), GiveUp> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), GiveUp> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), GiveUp> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), GiveUp> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), GiveUp> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<(), GiveUp> {
        let mut o = Object::new(self.out);
        o.member(Cow::Borrowed(variant), v)?;
        o.end()
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Array<'o>, GiveUp> {
        self.out.push(b'[');
        Ok(Array {
            out: self.out,
            first: true,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Array<'o>, GiveUp> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Array<'o>, GiveUp> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<TupleVariant<'o>, GiveUp> {
        // `{"variant":[` ... `]}`: one member, so no ordering to do.
        self.out.push(b'{');
        write_string(variant, self.out);
        self.out.extend_from_slice(b":[");
        Ok(TupleVariant(Array {
            out: self.out,
            first: true,
        }))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Object<'o>, GiveUp> {
        Ok(Object::new(self.out))
    }
    fn serialize_struct(self, name: &'static str, _: usize) -> Result<Object<'o>, GiveUp> {
        // serde_json's RawValue (and arbitrary-precision numbers) travel as a struct with a
        // private name; `to_value` parses them, which this writer does not do.
        if name.starts_with("$serde_json::private::") {
            return Err(GiveUp);
        }
        Ok(Object::new(self.out))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<StructVariant<'o>, GiveUp> {
        self.out.push(b'{');
        write_string(variant, self.out);
        self.out.push(b':');
        Ok(StructVariant(Object::new(self.out)))
    }
}

impl ser::SerializeSeq for Array<'_> {
    type Ok = ();
    type Error = GiveUp;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), GiveUp> {
        self.element(v)
    }
    fn end(self) -> Result<(), GiveUp> {
        self.out.push(b']');
        Ok(())
    }
}

impl ser::SerializeTuple for Array<'_> {
    type Ok = ();
    type Error = GiveUp;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), GiveUp> {
        self.element(v)
    }
    fn end(self) -> Result<(), GiveUp> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for Array<'_> {
    type Ok = ();
    type Error = GiveUp;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), GiveUp> {
        self.element(v)
    }
    fn end(self) -> Result<(), GiveUp> {
        ser::SerializeSeq::end(self)
    }
}

struct TupleVariant<'o>(Array<'o>);

impl ser::SerializeTupleVariant for TupleVariant<'_> {
    type Ok = ();
    type Error = GiveUp;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), GiveUp> {
        self.0.element(v)
    }
    fn end(self) -> Result<(), GiveUp> {
        self.0.out.extend_from_slice(b"]}");
        Ok(())
    }
}

struct StructVariant<'o>(Object<'o>);

impl ser::SerializeStructVariant for StructVariant<'_> {
    type Ok = ();
    type Error = GiveUp;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), GiveUp> {
        self.0.member(Cow::Borrowed(key), v)
    }
    fn end(self) -> Result<(), GiveUp> {
        // Close the inner object, then the `{"variant":` wrapper.
        self.0.finish()?.push(b'}');
        Ok(())
    }
}

impl ser::SerializeStruct for Object<'_> {
    type Ok = ();
    type Error = GiveUp;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), GiveUp> {
        self.member(Cow::Borrowed(key), v)
    }
    fn end(self) -> Result<(), GiveUp> {
        Object::end(self)
    }
}

impl ser::SerializeMap for Object<'_> {
    type Ok = ();
    type Error = GiveUp;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), GiveUp> {
        self.pending = Some(Cow::Owned(key.serialize(KeyWriter)?));
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), GiveUp> {
        let key = self.pending.take().ok_or(GiveUp)?;
        self.member(key, v)
    }
    fn end(self) -> Result<(), GiveUp> {
        Object::end(self)
    }
}

/// A map key as `to_value` accepts it: a string, or a char, integer or unit variant written as
/// one. Anything else gives up.
struct KeyWriter;

macro_rules! key_ints { ($($f:ident $t:ty),*) => {$(
    fn $f(self, v: $t) -> Result<String, GiveUp> {
        Ok(v.to_string())
    }
)*} }

impl ser::Serializer for KeyWriter {
    type Ok = String;
    type Error = GiveUp;
    type SerializeSeq = ser::Impossible<String, GiveUp>;
    type SerializeTuple = ser::Impossible<String, GiveUp>;
    type SerializeTupleStruct = ser::Impossible<String, GiveUp>;
    type SerializeTupleVariant = ser::Impossible<String, GiveUp>;
    type SerializeMap = ser::Impossible<String, GiveUp>;
    type SerializeStruct = ser::Impossible<String, GiveUp>;
    type SerializeStructVariant = ser::Impossible<String, GiveUp>;

    fn serialize_str(self, v: &str) -> Result<String, GiveUp> {
        Ok(v.to_owned())
    }
    fn serialize_char(self, v: char) -> Result<String, GiveUp> {
        Ok(v.to_string())
    }
    key_ints!(serialize_i8 i8, serialize_i16 i16, serialize_i32 i32, serialize_i64 i64,
        serialize_u8 u8, serialize_u16 u16, serialize_u32 u32, serialize_u64 u64);
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<String, GiveUp> {
        Ok(variant.to_owned())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<String, GiveUp> {
        v.serialize(self)
    }
    give_up!(String; serialize_bool bool, serialize_i128 i128, serialize_u128 u128,
        serialize_f32 f32, serialize_f64 f64, serialize_bytes &[u8]);
    fn serialize_none(self) -> Result<String, GiveUp> {
        Err(GiveUp)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<String, GiveUp> {
        Err(GiveUp)
    }
    fn serialize_unit(self) -> Result<String, GiveUp> {
        Err(GiveUp)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<String, GiveUp> {
        Err(GiveUp)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String, GiveUp> {
        Err(GiveUp)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, GiveUp> {
        Err(GiveUp)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, GiveUp> {
        Err(GiveUp)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, GiveUp> {
        Err(GiveUp)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, GiveUp> {
        Err(GiveUp)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, GiveUp> {
        Err(GiveUp)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, GiveUp> {
        Err(GiveUp)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, GiveUp> {
        Err(GiveUp)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;

    use super::{canonical_json, direct};

    #[derive(Serialize)]
    struct Doc {
        zulu: &'static str,
        alpha: Option<u64>,
        by_index: BTreeMap<u64, Vec<i32>>,
    }

    /// The tests in `tests/model.rs` compare `canonical_json` with its definition; this one
    /// makes sure the direct writer is what answers for the float-free data it is for, so those
    /// tests exercise it rather than the fallback.
    #[test]
    fn the_direct_writer_answers_for_float_free_data_and_gives_up_on_floats() {
        let doc = Doc {
            zulu: "z",
            alpha: None,
            by_index: BTreeMap::from([(10, vec![-1]), (9, vec![])]),
        };
        assert_eq!(
            direct(&doc).as_deref(),
            Some(br#"{"alpha":null,"by_index":{"10":[-1],"9":[]},"zulu":"z"}"#.as_slice())
        );
        assert_eq!(direct(&1.5f64), None);
        assert_eq!(canonical_json(&1.5f64), b"1.5");
        assert_eq!(
            direct(&serde_json::json!({"b": [1, {"d": 2, "c": 3}]})).as_deref(),
            Some(br#"{"b":[1,{"c":3,"d":2}]}"#.as_slice())
        );
    }
}
