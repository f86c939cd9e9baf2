#![allow(clippy::unwrap_used)]

use serde_json::json;
use trailmark_model::{
    Digest, FieldError, Item, LogIndex, ModelError, Payload, Timestamp, decode_leaf,
    decode_leaf_mentions, encode_leaf, parse_record, parse_records,
};

fn ts(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap()
}

fn field_err(text: &str) -> FieldError {
    match parse_record(text) {
        Err(ModelError::Field(e)) => e,
        other => panic!("expected a field error for {text}, got {other:?}"),
    }
}

#[test]
fn minimal_record_parses_with_defaults() {
    let r = parse_record(r#"{"kind":"custom.note","subjects":[{"type":"ticket","id":"PROJ-1"}]}"#)
        .unwrap();
    assert_eq!(r.kind.as_str(), "custom.note");
    assert_eq!(r.subjects.len(), 1);
    assert_eq!(r.subjects[0].to_string(), "ticket:PROJ-1");
    assert_eq!(r.payload, json!({}));
    assert!(r.links.is_empty() && r.actor.is_none() && r.idempotency_key.is_none());
}

/// The signed bytes of a record are pinned here. If this test fails, a change altered what
/// Trailmark signs: that breaks every existing log and must never happen silently.
#[test]
fn canonical_leaf_bytes_snapshot() {
    let r = parse_record(
        r#"{
          "subjects": [{"type": "commit", "id": "ABCDEF0123456789ABCDEF0123456789ABCDEF01"}, {"type": "ticket", "id": "PROJ-1"}],
          "kind": "custom.note",
          "payload": {"z": 1, "a": ["é", "\u2028", -5, true, null], "b": {"y": "\n", "x": "\u0001"}},
          "occurred_at": "2026-11-23T20:00:00.5+01:00",
          "actor": "alice@example.com",
          "source": "cli",
          "links": [{"rel": "implements", "to": {"type": "ticket", "id": "PROJ-1"}}],
          "idempotency_key": "k-1"
        }"#,
    )
    .unwrap();
    let (rec, blob) = r.sequence(LogIndex(42), ts("2026-11-23T19:00:01.000123Z"));
    assert!(blob.is_none());
    let bytes = encode_leaf(&rec);
    let expected = concat!(
        r#"{"actor":"alice@example.com","idempotency_key":"k-1","index":42,"kind":"custom.note","#,
        r#""links":[{"rel":"implements","to":{"id":"PROJ-1","type":"ticket"}}],"#,
        r#""occurred_at":"2026-11-23T19:00:00.5Z","#,
        r#""payload":{"a":["é",""#,
        "\u{2028}",
        r#"",-5,true,null],"b":{"x":"\u0001","y":"\n"},"z":1},"#,
        r#""recorded_at":"2026-11-23T19:00:01.000123Z","source":"cli","#,
        r#""subjects":[{"id":"abcdef0123456789abcdef0123456789abcdef01","type":"commit"},{"id":"PROJ-1","type":"ticket"}],"#,
        r#""v":1}"#
    );
    assert_eq!(String::from_utf8(bytes.clone()).unwrap(), expected);
    // And decoding gives back the same record.
    assert_eq!(decode_leaf(&bytes).unwrap(), rec);
}

#[test]
fn decode_refuses_non_canonical_or_foreign_bytes() {
    let r = parse_record(r#"{"kind":"custom.note","subjects":[{"type":"ticket","id":"P-1"}]}"#)
        .unwrap();
    let (rec, _) = r.sequence(LogIndex(0), ts("2026-01-01T00:00:00Z"));
    let bytes = encode_leaf(&rec);
    let text = String::from_utf8(bytes).unwrap();
    // Same meaning, different spelling (extra space): refused.
    let spaced = text.replacen(':', ": ", 1);
    assert!(matches!(
        decode_leaf(spaced.as_bytes()),
        Err(ModelError::Leaf(_))
    ));
    assert!(decode_leaf(b"not json").is_err());
    assert!(decode_leaf(text.replace("\"v\":1", "\"v\":2").as_bytes()).is_err());
    // An unknown field, even in canonical position, is not a v1 leaf.
    assert!(decode_leaf(text.replace("\"v\":1}", "\"v\":1,\"x\":1}").as_bytes()).is_err());
    // A leaf whose commit id is upper-case is refused, not silently normalized.
    let c = parse_record(r#"{"kind":"custom.note","subjects":[{"type":"commit","id":"abcdef0123456789abcdef0123456789abcdef01"}]}"#).unwrap();
    let (c, _) = c.sequence(LogIndex(0), ts("2026-01-01T00:00:00Z"));
    let upper = String::from_utf8(encode_leaf(&c))
        .unwrap()
        .replace("abcdef0123", "ABCDEF0123");
    assert!(decode_leaf(upper.as_bytes()).is_err());
}

/// What a leaf mentions can be read alone, with the same rules for what it reads: a foreign
/// version, bytes that are not JSON and subjects or rels that are not valid are refused. A leaf
/// that is only spelled differently gives its record's mentions; `decode_leaf` refuses it when
/// the record is served.
#[test]
fn mentions_are_read_with_the_rules_of_decoding() {
    let r = parse_record(r#"{"kind":"custom.note","subjects":[{"type":"ticket","id":"P-1"}],"links":[{"rel":"tests","to":{"type":"commit","id":"abcdef0123456789abcdef0123456789abcdef01"}}],"payload":{"a":[1,{"b":2}]}}"#)
        .unwrap();
    let (rec, _) = r.sequence(LogIndex(7), ts("2026-01-01T00:00:00Z"));
    let text = String::from_utf8(encode_leaf(&rec)).unwrap();
    let m = decode_leaf_mentions(text.as_bytes()).unwrap();
    assert_eq!(
        (m.index, &m.subjects, &m.links),
        (rec.index, &rec.subjects, &rec.links)
    );
    // Spelled differently: a space, an upper-case commit id (normalized as subjects are).
    for other in [
        text.replacen(':', ": ", 1),
        text.replace("abcdef0123", "ABCDEF0123"),
    ] {
        assert!(decode_leaf(other.as_bytes()).is_err());
        assert_eq!(decode_leaf_mentions(other.as_bytes()).unwrap(), m);
    }
    for bad in [
        text.replace("\"v\":1", "\"v\":2"),
        "not json".to_owned(),
        text.replace("P-1", ""),
        text.replace("abcdef0123", "abcdef012"),
        text.replace("\"tests\"", "\"Not A Rel\""),
        text.replace("\"index\":7", "\"index\":-7"),
    ] {
        assert!(
            matches!(
                decode_leaf_mentions(bad.as_bytes()),
                Err(ModelError::Leaf(_))
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        decode_leaf_mentions(b"{\"v\":1,\"index\":0,\"subjects\":[],\"x\":\"\xff\"}"),
        Err(ModelError::Leaf(m)) if m.contains("UTF-8")
    ));
}

#[test]
fn large_payload_moves_to_a_blob() {
    let big = "x".repeat(20_000);
    let r = parse_record(&json!({"kind":"custom.note","subjects":[{"type":"ticket","id":"P-1"}],"payload":{"log":big}}).to_string()).unwrap();
    let payload = r.payload.clone();
    let (rec, blob) = r.sequence(LogIndex(1), ts("2026-01-01T00:00:00Z"));
    let blob = blob.expect("a 20 KB payload is stored as a blob");
    assert_eq!(blob.digest(), Digest::of(blob.bytes()));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(blob.bytes()).unwrap(),
        payload
    );
    match rec.payload {
        Payload::Blob { digest, size } => {
            assert_eq!(digest, blob.digest());
            assert_eq!(size, blob.bytes().len() as u64);
        }
        Payload::Inline(_) => panic!("payload should be a blob"),
    }
    let leaf = encode_leaf(&rec);
    assert!(leaf.len() < 1000, "leaf carries only the digest");
    assert!(
        String::from_utf8(leaf.clone())
            .unwrap()
            .contains(&blob.digest().to_string())
    );
    assert_eq!(decode_leaf(&leaf).unwrap(), rec);
}

#[test]
fn bad_records_are_refused_with_the_reason() {
    assert_eq!(
        field_err(r#"{"subjects":[{"type":"ticket","id":"P-1"}]}"#),
        FieldError::Missing("kind")
    );
    assert_eq!(
        field_err(r#"{"kind":"custom.note"}"#),
        FieldError::Missing("subjects")
    );
    assert_eq!(
        field_err(r#"{"kind":"custom.note","subjects":[]}"#),
        FieldError::NoSubjects
    );
    assert!(matches!(
        field_err(r#"{"kind":"Custom","subjects":[{"type":"ticket","id":"P"}]}"#),
        FieldError::Kind { .. }
    ));
    assert!(matches!(
        field_err(r#"{"kind":"note","subjects":[{"type":"ticket","id":"P"}]}"#),
        FieldError::Kind { .. }
    ));
    assert_eq!(
        field_err(r#"{"kind":"custom.note","subjects":[{"type":"ticket","id":"P"}],"kidn":1}"#),
        FieldError::Unknown("kidn".into())
    );
    assert!(matches!(
        field_err(r#"{"kind":"custom.note","subjects":[{"type":"commit","id":"abc"}]}"#),
        FieldError::SubjectId { .. }
    ));
    assert!(matches!(
        field_err(r#"{"kind":"custom.note","subjects":[{"type":"ticket","id":""}]}"#),
        FieldError::SubjectId { .. }
    ));
    assert!(matches!(
        field_err(
            r#"{"kind":"custom.note","subjects":[{"type":"ticket","id":"P"}],"occurred_at":"2026-01-01 10:00"}"#
        ),
        FieldError::Timestamp { .. }
    ));
    assert!(matches!(
        field_err(
            r#"{"kind":"custom.note","subjects":[{"type":"ticket","id":"P"}],"occurred_at":"2026-01-01T10:00:00"}"#
        ),
        FieldError::Timestamp { .. }
    ));
    assert_eq!(
        field_err(
            r#"{"kind":"custom.note","subjects":[{"type":"ticket","id":"P"}],"payload":{"a":[1,2.5]}}"#
        ),
        FieldError::Float {
            pointer: "/payload/a/1".into()
        }
    );
    assert_eq!(
        field_err(
            r#"{"kind":"custom.note","subjects":[{"type":"ticket","id":"P"}],"payload":{"n":9007199254740992}}"#
        ),
        FieldError::IntegerRange {
            pointer: "/payload/n".into()
        }
    );
    assert_eq!(
        field_err("[1]"),
        FieldError::NotAnObject { found: "an array" }
    );
    assert!(matches!(parse_record("{"), Err(ModelError::Json(_))));
    // Messages name the problem.
    let msg = parse_record(r#"{"kind":"custom.note","subjects":[]}"#)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("at least one subject"), "{msg}");
}

#[test]
fn multi_record_inputs_are_all_or_nothing() {
    let good = r#"{"kind":"custom.note","subjects":[{"type":"ticket","id":"P-1"}]}"#;
    let lines = format!("{good}\n\n{good}\n");
    assert_eq!(parse_records(&lines).unwrap().len(), 2);
    let arr = format!("[{good},{good},{good}]");
    assert_eq!(parse_records(&arr).unwrap().len(), 3);
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(good).unwrap())
            .unwrap();
    assert_eq!(parse_records(&pretty).unwrap().len(), 1);

    let bad = format!("{good}\n{good}\n{{\"kind\":\"custom.note\"}}\n");
    let err = parse_records(&bad).unwrap_err();
    assert_eq!(err.item, Item::Line(3));
    assert!(
        err.to_string()
            .starts_with("line 3: missing required field `subjects`"),
        "{err}"
    );
    let err = parse_records(&format!("{good}\nnot json\n")).unwrap_err();
    assert_eq!(err.item, Item::Line(2));
    assert!(parse_records("  \n").is_err());
    let err = parse_records(&format!("[{good}, 3]")).unwrap_err();
    assert_eq!(err.item, Item::Element(2));
}

#[test]
fn digest_text_form_round_trips() {
    let d = Digest::of(b"hello");
    assert_eq!(
        d.to_string(),
        "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
    assert!("sha256:XYZ".parse::<Digest>().is_err());
    assert!("md5:00".parse::<Digest>().is_err());
}

mod jcs {
    use proptest::prelude::*;
    use serde_json::Value;

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-(1i64 << 53) + 1..(1i64 << 53)).prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            "[\\x00-\\x1f\"\\\\\u{7f}\u{2028}\u{e000}\u{10000}a-z]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                // Keys of every kind, and many plain ASCII ones (the canonical writer takes
                // those in the map's own order, and sorts only the others).
                prop::collection::btree_map(
                    prop_oneof![
                        any::<String>(),
                        "[a-z_]{0,6}",
                        "[\x00-\x7f\u{e9}\u{d7ff}\u{e000}\u{ffff}\u{10000}]{0,4}"
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[derive(Debug, Clone, serde::Serialize)]
    enum Shape {
        Unit,
        Newtype(String),
        Tuple(u8, Option<i32>),
        Struct { zeta: bool, alpha: Vec<u16> },
    }

    /// Two keys whose UTF-16 order is not their UTF-8 byte order.
    #[derive(Debug, Clone, serde::Serialize)]
    struct Inner {
        #[serde(rename = "z\u{e000}")]
        private_use: u32,
        #[serde(rename = "z\u{10000}")]
        astral: i64,
    }

    /// Fields declared against JCS order on purpose.
    #[derive(Debug, Clone, serde::Serialize)]
    struct Typed {
        zulu: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        maybe: Option<String>,
        absent: Option<u64>,
        shape: Shape,
        by_number: std::collections::BTreeMap<u64, Inner>,
        #[serde(rename = "Alpha")]
        upper: char,
        nested: std::collections::BTreeMap<String, Vec<Shape>>,
        raw: Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        ratio: Option<f64>,
        #[serde(flatten)]
        extra: std::collections::BTreeMap<String, u8>,
    }

    fn shape() -> impl Strategy<Value = Shape> {
        prop_oneof![
            Just(Shape::Unit),
            any::<String>().prop_map(Shape::Newtype),
            (any::<u8>(), any::<Option<i32>>()).prop_map(|(a, b)| Shape::Tuple(a, b)),
            (any::<bool>(), prop::collection::vec(any::<u16>(), 0..3))
                .prop_map(|(zeta, alpha)| Shape::Struct { zeta, alpha }),
        ]
    }

    fn typed() -> impl Strategy<Value = Typed> {
        (
            (
                any::<String>(),
                any::<Option<String>>(),
                any::<Option<u64>>(),
                shape(),
            ),
            prop::collection::btree_map(any::<u64>(), (any::<u32>(), any::<i64>()), 0..3),
            any::<char>(),
            prop::collection::btree_map(
                any::<String>(),
                prop::collection::vec(shape(), 0..3),
                0..3,
            ),
            json(),
            proptest::option::weighted(0.2, -1e6f64..1e6),
            // Sometimes a key that is also a field: `to_value` keeps one of the two.
            prop::collection::btree_map(
                prop_oneof![Just("zulu".to_owned()), "[a-z]{1,3}"],
                any::<u8>(),
                0..3,
            ),
        )
            .prop_map(
                |((zulu, maybe, absent, shape), by, upper, nested, raw, ratio, extra)| Typed {
                    zulu,
                    maybe,
                    absent,
                    shape,
                    by_number: by
                        .into_iter()
                        .map(|(k, (private_use, astral))| {
                            (
                                k,
                                Inner {
                                    private_use,
                                    astral,
                                },
                            )
                        })
                        .collect(),
                    upper,
                    nested,
                    raw,
                    ratio,
                    extra,
                },
            )
    }

    fn text() -> impl Strategy<Value = String> {
        "[ -~\\x00-\\x1f\"\\\\\u{e9}\u{2028}\u{10000}]{1,12}"
            .prop_filter("trimmed, no controls", |s| {
                s.trim() == s && !s.chars().any(char::is_control)
            })
    }

    proptest! {
        /// The direct leaf writer produces exactly the canonical form of the serde wire struct.
        #[test]
        fn direct_leaf_writer_matches_the_serde_wire_form(
            payload in json(),
            actor in proptest::option::of(text()),
            key in proptest::option::of(text()),
            source in proptest::option::of(text()),
            ids in prop::collection::vec(text(), 1..4),
            link_ids in prop::collection::vec(text(), 0..3),
            index in 0u64..(1 << 53),
            micros in 0i64..4_000_000_000_000_000,
            big in any::<bool>(),
        ) {
            let payload = if big { serde_json::json!({"blob": "x".repeat(20_000), "p": payload}) } else { payload };
            let mut doc = serde_json::json!({
                "kind": "custom.note",
                "subjects": ids.iter().map(|i| serde_json::json!({"type": "ticket", "id": i})).collect::<Vec<_>>(),
                "links": link_ids.iter().map(|i| serde_json::json!({"rel": "implements", "to": {"type": "ticket", "id": i}})).collect::<Vec<_>>(),
                "payload": payload,
                "occurred_at": "2026-11-23T20:00:00.5+01:00",
            });
            for (k, v) in [("actor", &actor), ("idempotency_key", &key), ("source", &source)] {
                if let Some(v) = v {
                    doc[k] = serde_json::Value::String(v.clone());
                }
            }
            let Ok(r) = trailmark_model::input::from_value(&doc) else { return Ok(()) };
            let t = trailmark_model::Timestamp(jiff::Timestamp::from_microsecond(micros).unwrap());
            let sealed = r.seal(trailmark_model::LogIndex(index), t);
            prop_assert_eq!(&sealed.leaf, &trailmark_model::encode_leaf_reference(&sealed.record));
            prop_assert_eq!(&sealed.leaf, &trailmark_model::encode_leaf(&sealed.record));
            prop_assert_eq!(trailmark_model::decode_leaf(&sealed.leaf).unwrap(), sealed.record.clone());
            // What the leaf mentions, read alone, is exactly what the record says.
            let m = trailmark_model::decode_leaf_mentions(&sealed.leaf).unwrap();
            prop_assert_eq!(m.index, sealed.record.index);
            prop_assert_eq!(m.subjects, sealed.record.subjects);
            prop_assert_eq!(m.links, sealed.record.links);
        }

        /// Our float-free JCS writer agrees byte for byte with the general canonicalizer.
        #[test]
        fn canonical_bytes_match_the_reference_crate(v in json()) {
            prop_assert_eq!(
                trailmark_model::canonical_bytes(&v),
                serde_json_canonicalizer::to_vec(&v).unwrap()
            );
        }

        /// The direct serde writer is `canonical_bytes(to_value(..))` on any JSON value: keys
        /// of every kind (including those whose UTF-16 order is not their byte order).
        #[test]
        fn canonical_json_of_a_value_is_its_canonical_bytes(v in json()) {
            prop_assert_eq!(trailmark_model::canonical_json(&v), trailmark_model::canonical_bytes(&v));
        }

        /// ... and on typed data: fields declared out of order, skipped and absent options,
        /// every enum shape, integer map keys, nested maps and, where the writer gives up (a
        /// float, a key present twice through `flatten`), the same bytes by the definition.
        #[test]
        fn canonical_json_of_typed_data_is_the_canonical_bytes_of_its_value(
            items in prop::collection::vec(typed(), 0..4),
        ) {
            let via_value = trailmark_model::canonical_bytes(&serde_json::to_value(&items).unwrap());
            prop_assert_eq!(trailmark_model::canonical_json(&items), via_value);
        }

        /// The allocation-free pointer walk finds what serde_json's `pointer` finds, for
        /// pointers into the value (every path that exists) and for arbitrary pointer text.
        #[test]
        fn json_at_agrees_with_serde_json_pointer(v in json(), junk in "(/[a-z0-9~+]{0,3}){0,4}") {
            let mut paths = vec![String::new()];
            let mut stack = vec![(String::new(), &v)];
            while let Some((p, x)) = stack.pop() {
                match x {
                    Value::Object(m) => for (k, c) in m {
                        let seg = k.replace('~', "~0").replace('/', "~1");
                        stack.push((format!("{p}/{seg}"), c));
                    },
                    Value::Array(a) => for (i, c) in a.iter().enumerate() {
                        stack.push((format!("{p}/{i}"), c));
                    },
                    _ => {}
                }
                paths.push(p);
            }
            paths.push(junk);
            for p in &paths {
                prop_assert_eq!(trailmark_model::json_at(&v, p), v.pointer(p), "pointer {:?}", p);
            }
        }
    }

    #[test]
    fn rfc8785_key_order_is_by_utf16_code_units() {
        // U+10000 (surrogates D800 DC00) sorts before U+E000 in UTF-16, after it in UTF-8.
        let v: Value = serde_json::from_str(r#"{"\ue000":1,"\ud800\udc00":2,"a":3,"":4}"#).unwrap();
        let out = String::from_utf8(trailmark_model::canonical_bytes(&v)).unwrap();
        assert_eq!(out, "{\"\":4,\"a\":3,\"\u{10000}\":2,\"\u{e000}\":1}");
    }
}
