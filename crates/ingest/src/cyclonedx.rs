//! CycloneDX adapter: SBOMs 1.0–1.7 in JSON or XML become one `sbom.cyclonedx` record.
//!
//! Strict where the document's identity is wrong (`bomFormat` other than `CycloneDX`, an
//! unknown spec version or XML namespace, a malformed `serialNumber`): the input is refused.
//! Tolerant where one part is wrong (a hash of the wrong length, an unknown component type, a
//! licence text in an unknown encoding, a dependency without `ref`): that part is left out and
//! reported as skipped. The XML form is read with a streaming reader into the JSON shape, so
//! both forms give the same payload. Protobuf text format is refused with a clear message.
//!
//! Subjects: `artifact:sha256:<hex>` and `component:<purl>` of the metadata component when
//! known, `commit`/`build` from the context, else `report:<serialNumber or file name>`.

use quick_xml::events::Event;
use serde_json::{Map, Value, json};

use crate::{Context, Draft, Format, IngestError, Parsed, Skipped};

const F: Format = Format::Cyclonedx;
/// Components listed in the payload; the rest are counted and reported as skipped.
pub const MAX_COMPONENTS: usize = 5_000;
const VERSIONS: [&str; 8] = ["1.0", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1.7"];
const TYPES: [&str; 13] = [
    "application",
    "framework",
    "library",
    "container",
    "platform",
    "operating-system",
    "device",
    "device-driver",
    "firmware",
    "file",
    "machine-learning-model",
    "data",
    "cryptographic-asset",
];

pub fn parse(bytes: &[u8], ctx: &Context) -> Result<Parsed, IngestError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let head =
        String::from_utf8_lossy(bytes.get(..bytes.len().min(4096)).unwrap_or(bytes)).into_owned();
    let trimmed = head.trim_start();
    let (bom, encoding) = if trimmed.starts_with('<') {
        let text = std::str::from_utf8(bytes).map_err(|e| IngestError::Xml {
            format: F,
            message: format!("not UTF-8: {e}"),
        })?;
        (xml_to_json(&xml_tree(text, F)?)?, "xml")
    } else if trimmed.starts_with('{') || trimmed.starts_with('[') {
        (
            serde_json::from_slice::<Value>(bytes).map_err(|e| IngestError::json(F, &e))?,
            "json",
        )
    } else if looks_like_textproto(trimmed) {
        return Err(IngestError::schema(
            F,
            "protobuf text format is not supported; export JSON or XML",
        ));
    } else {
        return Err(match serde_json::from_slice::<Value>(bytes) {
            Err(e) => IngestError::json(F, &e),
            Ok(_) => IngestError::schema(
                F,
                "not a CycloneDX BOM (expected a JSON object or <bom> XML)",
            ),
        });
    };
    let mut out = Parsed::default();
    let record = bom_record(&bom, encoding, ctx, &mut out.skipped)?;
    out.records.push(record);
    Ok(out)
}

fn looks_like_textproto(head: &str) -> bool {
    head.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .take(3)
        .any(|l| {
            l.starts_with("spec_version:")
                || l.starts_with("serial_number:")
                || l.starts_with("metadata {")
                || l.starts_with("metadata: {")
        })
        || head.starts_with("# proto-file:")
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn is_uuid_urn(s: &str) -> bool {
    let Some(u) = s.strip_prefix("urn:uuid:") else {
        return false;
    };
    let groups: Vec<&str> = u.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn hash_len(alg: &str) -> Option<&'static [usize]> {
    Some(match alg {
        "MD5" => &[32],
        "SHA-1" => &[40],
        "SHA-256" | "SHA3-256" | "BLAKE2b-256" => &[64],
        "SHA-384" | "SHA3-384" | "BLAKE2b-384" => &[96],
        "SHA-512" | "SHA3-512" | "BLAKE2b-512" => &[128],
        "BLAKE3" => &[64, 128],
        "Streebog-256" => &[64],
        "Streebog-512" => &[128],
        _ => return None,
    })
}

struct Walk<'s> {
    components: Vec<Value>,
    total: usize,
    skipped: &'s mut Vec<Skipped>,
}

fn component_label(c: &Value, path: &str) -> String {
    match (str_of(c, "name"), str_of(c, "version")) {
        (Some(n), Some(v)) => format!("component {n}@{v}"),
        (Some(n), None) => format!("component {n}"),
        _ => format!("component {path}"),
    }
}

/// A component's hashes, with invalid ones reported as skipped.
fn hashes(c: &Value, label: &str, skipped: &mut Vec<Skipped>) -> Vec<Value> {
    let mut out = Vec::new();
    for h in c
        .get("hashes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let alg = str_of(h, "alg").unwrap_or("");
        let content = str_of(h, "content").unwrap_or("");
        let reason = match hash_len(alg) {
            None => Some(format!("unknown algorithm {alg:?}")),
            Some(lens) if !lens.contains(&content.len()) => Some(format!(
                "{alg} with bad length ({} characters, expected {} hex digits)",
                content.len(),
                lens.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" or ")
            )),
            Some(_) if !content.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some(format!("{alg} value is not hex"))
            }
            Some(_) => None,
        };
        match reason {
            Some(reason) => skipped.push(Skipped {
                what: format!("{label} hash"),
                reason,
            }),
            None => out.push(json!({"alg": alg, "content": content.to_ascii_lowercase()})),
        }
    }
    out
}

fn licenses(c: &Value, label: &str, skipped: &mut Vec<Skipped>) -> Value {
    let (mut ids, mut names, mut exprs) = (Vec::new(), Vec::new(), Vec::new());
    for l in c
        .get("licenses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(e) = str_of(l, "expression") {
            exprs.push(e.to_owned());
        }
        if let Some(lic) = l.get("license") {
            if let Some(id) = str_of(lic, "id") {
                ids.push(id.to_owned());
            } else if let Some(n) = str_of(lic, "name") {
                names.push(n.to_owned());
            }
            if let Some(enc) = lic.get("text").and_then(|t| str_of(t, "encoding"))
                && enc != "base64"
            {
                skipped.push(Skipped {
                    what: format!("{label} license text"),
                    reason: format!(
                        "encoding {enc:?} is not base64 (the only encoding CycloneDX allows)"
                    ),
                });
            }
        }
    }
    if ids.is_empty() && names.is_empty() && exprs.is_empty() {
        return Value::Null;
    }
    json!({"ids": ids, "names": names, "expressions": exprs})
}

fn walk(list: &Value, path: &str, w: &mut Walk<'_>) {
    for (i, c) in list.as_array().into_iter().flatten().enumerate() {
        let p = if path.is_empty() {
            format!("{i}")
        } else {
            format!("{path}.{i}")
        };
        w.total += 1;
        if w.components.len() < MAX_COMPONENTS {
            let label = component_label(c, &p);
            let ty = str_of(c, "type");
            let ty = match ty {
                Some(t) if TYPES.contains(&t) => Some(t),
                Some(t) => {
                    w.skipped.push(Skipped {
                        what: format!("{label} type"),
                        reason: format!("unknown component type {t:?}"),
                    });
                    None
                }
                None => None,
            };
            let hs = hashes(c, &label, w.skipped);
            let lic = licenses(c, &label, w.skipped);
            let mut m = Map::new();
            m.insert("name".into(), json!(str_of(c, "name")));
            if let Some(g) = str_of(c, "group") {
                m.insert("group".into(), json!(g));
            }
            m.insert("version".into(), json!(str_of(c, "version")));
            m.insert("type".into(), json!(ty));
            m.insert("purl".into(), json!(str_of(c, "purl")));
            if !hs.is_empty() {
                m.insert("hashes".into(), Value::Array(hs));
            }
            if !lic.is_null() {
                m.insert("licenses".into(), lic);
            }
            w.components.push(Value::Object(m));
        }
        if let Some(sub) = c.get("components") {
            walk(sub, &p, w);
        }
    }
}

fn bom_record(
    bom: &Value,
    encoding: &str,
    ctx: &Context,
    skipped: &mut Vec<Skipped>,
) -> Result<trailmark_model::NewRecord, IngestError> {
    if !bom.is_object() {
        return Err(IngestError::schema(
            F,
            "a CycloneDX BOM must be a JSON object",
        ));
    }
    match bom.get("bomFormat") {
        None => {
            return Err(IngestError::schema(
                F,
                "bomFormat is missing (must be \"CycloneDX\")",
            ));
        }
        Some(Value::String(s)) if s == "CycloneDX" => {}
        Some(other) => {
            return Err(IngestError::schema(
                F,
                format!("bomFormat is {other}, not \"CycloneDX\""),
            ));
        }
    }
    let spec = match bom.get("specVersion") {
        Some(Value::String(s)) if VERSIONS.contains(&s.as_str()) => s.clone(),
        Some(Value::String(s)) => {
            return Err(IngestError::Version {
                format: F,
                version: s.clone(),
            });
        }
        Some(other) => {
            return Err(IngestError::Version {
                format: F,
                version: other.to_string(),
            });
        }
        None => return Err(IngestError::schema(F, "specVersion is missing")),
    };
    let serial = str_of(bom, "serialNumber");
    if let Some(s) = serial
        && !is_uuid_urn(s)
    {
        return Err(IngestError::schema(
            F,
            format!(
                "serialNumber {s:?} is not a urn:uuid (RFC 4122): the BOM has no valid identity"
            ),
        ));
    }

    let meta = bom.get("metadata").cloned().unwrap_or(Value::Null);
    let mc = meta.get("component").cloned().unwrap_or(Value::Null);
    let mut draft = Draft::new("sbom.cyclonedx");
    let mut meta_out = Value::Null;
    if mc.is_object() {
        let label = format!("metadata {}", component_label(&mc, "metadata.component"));
        let hs = hashes(&mc, &label, skipped);
        if let Some(h) = hs
            .iter()
            .find(|h| h["alg"] == "SHA-256")
            .and_then(|h| h["content"].as_str())
        {
            draft = draft.subject("artifact", format!("sha256:{h}"));
        }
        draft = draft.subject_opt("component", str_of(&mc, "purl"));
        meta_out = json!({
            "name": str_of(&mc, "name"),
            "version": str_of(&mc, "version"),
            "type": str_of(&mc, "type"),
            "purl": str_of(&mc, "purl"),
            "hashes": hs,
        });
    }
    draft = draft
        .subject_opt("commit", ctx.commit.as_deref())
        .subject_opt("build", ctx.build.as_deref());
    let has_subject = mc.is_object()
        && (str_of(&mc, "purl").is_some()
            || meta_out["hashes"]
                .as_array()
                .is_some_and(|h| h.iter().any(|h| h["alg"] == "SHA-256")))
        || ctx.commit.is_some()
        || ctx.build.is_some();
    if !has_subject {
        let report = serial
            .map(str::to_owned)
            .or_else(|| ctx.filename.clone())
            .unwrap_or_else(|| "cyclonedx".into());
        draft = draft.subject("report", report);
    }

    let mut w = Walk {
        components: Vec::new(),
        total: 0,
        skipped,
    };
    if let Some(list) = bom.get("components") {
        walk(list, "", &mut w);
    }
    let (components, total) = (w.components, w.total);
    if total > components.len() {
        skipped.push(Skipped {
            what: format!("components {}..{}", components.len() + 1, total),
            reason: format!("only the first {MAX_COMPONENTS} components are listed in the record (all are counted)"),
        });
    }
    let mut deps = 0usize;
    for (i, d) in bom
        .get("dependencies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if str_of(d, "ref").is_none() {
            skipped.push(Skipped {
                what: format!("dependency {i}"),
                reason: "missing or empty ref".into(),
            });
        } else {
            deps += 1;
        }
    }
    let count = |k: &str| bom.get(k).and_then(Value::as_array).map_or(0, Vec::len);
    let tools: Vec<String> = tool_names(&meta);
    let timestamp = str_of(&meta, "timestamp").map(str::to_owned);
    let payload = json!({
        "encoding": encoding,
        "spec_version": spec,
        "serial_number": serial,
        "version": bom.get("version").cloned().unwrap_or(Value::Null),
        "timestamp": timestamp,
        "metadata_component": meta_out,
        "tools": tools,
        "components": components,
        "counts": {
            "components": total,
            "dependencies": deps,
            "services": count("services"),
            "vulnerabilities": count("vulnerabilities"),
        },
    });
    let occurred = timestamp.filter(|t| t.parse::<jiff::Timestamp>().is_ok());
    draft
        .occurred_at(occurred)
        .payload(payload)
        .build()
        .map_err(|m| IngestError::schema(F, m))
}

fn tool_names(meta: &Value) -> Vec<String> {
    let tools = meta.get("tools");
    let list: Vec<&Value> = match tools {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(Value::Object(o)) => o
            .get("components")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .chain(
                o.get("services")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten(),
            )
            .collect(),
        _ => Vec::new(),
    };
    list.iter()
        .filter_map(|t| {
            let name = str_of(t, "name")?;
            Some(match str_of(t, "version") {
                Some(v) => format!("{name} {v}"),
                None => name.to_owned(),
            })
        })
        .collect()
}

/// A generic XML element, namespace prefixes stripped.
#[derive(Debug, Default)]
pub(crate) struct El {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<El>,
}

impl El {
    pub fn attr(&self, k: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
    pub fn child(&self, name: &str) -> Option<&El> {
        self.children.iter().find(|c| c.name == name)
    }
    pub fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a El> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
    pub fn text_of(&self, name: &str) -> Option<String> {
        self.child(name)
            .map(|c| c.text.trim().to_owned())
            .filter(|t| !t.is_empty())
    }
}

fn local(name: &[u8]) -> String {
    let s = String::from_utf8_lossy(name);
    match s.rsplit_once(':') {
        Some((_, l)) => l.to_owned(),
        None => s.into_owned(),
    }
}

fn start_el(e: &quick_xml::events::BytesStart<'_>, format: Format) -> Result<El, IngestError> {
    let mut el = El {
        name: local(e.name().as_ref()),
        ..El::default()
    };
    for a in e.attributes() {
        let a = a.map_err(|err| IngestError::Xml {
            format,
            message: err.to_string(),
        })?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let key = if key.starts_with("xmlns") {
            key
        } else {
            local(a.key.as_ref())
        };
        let value = a.unescape_value().map_err(|err| IngestError::Xml {
            format,
            message: err.to_string(),
        })?;
        el.attrs.push((key, value.into_owned()));
    }
    Ok(el)
}

/// Reads a whole XML document into an element tree (depth-limited), refusing malformed XML.
pub(crate) fn xml_tree(text: &str, format: Format) -> Result<El, IngestError> {
    const MAX_DEPTH: usize = 256;
    let xml_err = |message: String| IngestError::Xml { format, message };
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<El> = Vec::new();
    let mut root: Option<El> = None;
    loop {
        let pos = reader.buffer_position();
        let ev = reader
            .read_event()
            .map_err(|e| xml_err(format!("at byte {pos}: {e}")))?;
        match ev {
            Event::Start(e) => {
                if root.is_some() {
                    return Err(xml_err("content after the root element".into()));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(xml_err(format!("elements nested deeper than {MAX_DEPTH}")));
                }
                stack.push(start_el(&e, format)?);
            }
            Event::Empty(e) => {
                let el = start_el(&e, format)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None if root.is_none() => root = Some(el),
                    None => return Err(xml_err("content after the root element".into())),
                }
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| xml_err("unexpected end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    let s = t.decode().map_err(|e| xml_err(e.to_string()))?;
                    top.text.push_str(&s);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = stack.last_mut() {
                    if let Ok(Some(c)) = r.resolve_char_ref() {
                        top.text.push(c);
                    } else {
                        let name = r.decode().map_err(|e| xml_err(e.to_string()))?;
                        let c = match name.as_ref() {
                            "amp" => "&",
                            "lt" => "<",
                            "gt" => ">",
                            "quot" => "\"",
                            "apos" => "'",
                            other => return Err(xml_err(format!("unknown entity &{other};"))),
                        };
                        top.text.push_str(c);
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(xml_err(format!(
            "unexpected end of document inside <{}>",
            open.name
        )));
    }
    root.ok_or_else(|| xml_err("no root element".into()))
}

/// The XML form of a BOM, in the JSON form's shape.
fn xml_to_json(root: &El) -> Result<Value, IngestError> {
    if root.name != "bom" {
        return Err(IngestError::schema(
            F,
            format!("root element is <{}>, not <bom>", root.name),
        ));
    }
    let ns = root.attr("xmlns").unwrap_or("");
    let spec = ns
        .strip_prefix("http://cyclonedx.org/schema/bom/")
        .filter(|v| VERSIONS.contains(v))
        .ok_or_else(|| {
            IngestError::schema(F, format!("namespace {ns:?} is not a CycloneDX 1.0-1.7 namespace (http://cyclonedx.org/schema/bom/1.N)"))
        })?;
    let mut bom = Map::new();
    bom.insert("bomFormat".into(), json!("CycloneDX"));
    bom.insert("specVersion".into(), json!(spec));
    if let Some(s) = root.attr("serialNumber") {
        bom.insert("serialNumber".into(), json!(s));
    }
    if let Some(v) = root.attr("version") {
        bom.insert(
            "version".into(),
            v.parse::<u64>().map_or_else(|_| json!(v), |n| json!(n)),
        );
    }
    if let Some(m) = root.child("metadata") {
        let mut meta = Map::new();
        if let Some(t) = m.text_of("timestamp") {
            meta.insert("timestamp".into(), json!(t));
        }
        if let Some(c) = m.child("component") {
            meta.insert("component".into(), xml_component(c));
        }
        if let Some(tools) = m.child("tools") {
            let mut list: Vec<Value> = tools.children("tool").map(xml_component).collect();
            if let Some(cs) = tools.child("components") {
                list.extend(cs.children("component").map(xml_component));
            }
            meta.insert("tools".into(), Value::Array(list));
        }
        bom.insert("metadata".into(), Value::Object(meta));
    }
    if let Some(cs) = root.child("components") {
        bom.insert(
            "components".into(),
            Value::Array(cs.children("component").map(xml_component).collect()),
        );
    }
    if let Some(ds) = root.child("dependencies") {
        let list = ds
            .children("dependency")
            .map(|d| json!({"ref": d.attr("ref")}))
            .collect();
        bom.insert("dependencies".into(), Value::Array(list));
    }
    for (list, item) in [
        ("services", "service"),
        ("vulnerabilities", "vulnerability"),
    ] {
        if let Some(s) = root.child(list) {
            bom.insert(
                list.into(),
                Value::Array(s.children(item).map(|_| Value::Null).collect()),
            );
        }
    }
    Ok(Value::Object(bom))
}

fn xml_component(c: &El) -> Value {
    let mut m = Map::new();
    if let Some(t) = c.attr("type") {
        m.insert("type".into(), json!(t));
    }
    for k in ["name", "version", "group", "purl"] {
        if let Some(v) = c.text_of(k) {
            m.insert(k.into(), json!(v));
        }
    }
    if let Some(hs) = c.child("hashes") {
        let list = hs
            .children("hash")
            .map(|h| json!({"alg": h.attr("alg"), "content": h.text.trim()}))
            .collect();
        m.insert("hashes".into(), Value::Array(list));
    }
    if let Some(ls) = c.child("licenses") {
        let mut list = Vec::new();
        for l in &ls.children {
            match l.name.as_str() {
                "license" => {
                    let mut lic = Map::new();
                    if let Some(id) = l.text_of("id") {
                        lic.insert("id".into(), json!(id));
                    }
                    if let Some(n) = l.text_of("name") {
                        lic.insert("name".into(), json!(n));
                    }
                    if let Some(t) = l.child("text") {
                        lic.insert("text".into(), json!({"encoding": t.attr("encoding")}));
                    }
                    list.push(json!({"license": lic}));
                }
                "expression" => list.push(json!({"expression": l.text.trim()})),
                _ => {}
            }
        }
        m.insert("licenses".into(), Value::Array(list));
    }
    if let Some(sub) = c.child("components") {
        m.insert(
            "components".into(),
            Value::Array(sub.children("component").map(xml_component).collect()),
        );
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hostile_inputs_do_not_panic() {
        for input in [
            &b"{}"[..],
            b"[]",
            b"<bom",
            b"<bom xmlns='http://cyclonedx.org/schema/bom/1.5'><components><component>",
            b"<x/>",
            b"{\"bomFormat\":\"CycloneDX\",\"specVersion\":\"9\"}",
            b"{\"bomFormat\":\"CycloneDX\",\"specVersion\":1.5}",
            b"\xff",
        ] {
            assert!(parse(input, &Context::default()).is_err());
        }
        let ok = br#"{"bomFormat":"CycloneDX","specVersion":"1.5","components":[{"name":1,"hashes":[{"alg":3}],"licenses":[{}],"components":{}}],"dependencies":[1]}"#;
        let p = parse(ok, &Context::default()).unwrap();
        assert_eq!(p.records.len(), 1);
    }

    #[test]
    fn components_beyond_the_limit_are_counted_and_skipped() {
        let comps: Vec<Value> = (0..MAX_COMPONENTS + 3)
            .map(|i| json!({"type": "library", "name": format!("c{i}")}))
            .collect();
        let bom = json!({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": comps});
        let p = parse(&serde_json::to_vec(&bom).unwrap(), &Context::default()).unwrap();
        let v = trailmark_model::input::to_value(&p.records[0]);
        assert_eq!(
            v.pointer("/payload/counts/components").unwrap(),
            MAX_COMPONENTS + 3
        );
        assert_eq!(
            v.pointer("/payload/components")
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            MAX_COMPONENTS
        );
        assert_eq!(p.skipped.len(), 1);
    }
}
