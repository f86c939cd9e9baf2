//! SPDX adapter: SPDX 2.2 / 2.3 documents (JSON or tag-value) and SPDX 3.0 JSON-LD become one
//! `sbom.spdx` record with the document's identity, creation info, a bounded package list
//! (name, version, purl, checksums, concluded / declared licences) and counts.
//!
//! Refused: other versions (`IngestError::Version`, including a 2.2 label on a document using
//! 2.3-only fields), invalid JSON, and the RDF/XML, XML and YAML serializations.
//!
//! Subjects: `component:<purl>` and `artifact:sha256:<hex>` of the packages the document
//! describes, `commit`/`build` from the context, else `report:<documentNamespace>`.

use serde_json::{Map, Value, json};

use crate::{Context, Draft, Format, IngestError, Parsed, Skipped};

const F: Format = Format::Spdx;
/// Packages listed in the payload; the rest are counted and reported as skipped.
pub const MAX_PACKAGES: usize = 5_000;
const SPDX_23_ONLY: [&str; 4] = [
    "primaryPackagePurpose",
    "releaseDate",
    "builtDate",
    "validUntilDate",
];

pub fn parse(bytes: &[u8], ctx: &Context) -> Result<Parsed, IngestError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let text = String::from_utf8_lossy(bytes);
    let trimmed = text.trim_start();
    let mut out = Parsed::default();
    let record = if trimmed.starts_with('<') {
        if trimmed.contains("rdf:RDF") || trimmed.contains("spdx.org/rdf/terms") {
            return Err(IngestError::schema(
                F,
                "SPDX RDF/XML is not supported; use JSON or tag-value",
            ));
        }
        return Err(IngestError::schema(
            F,
            "SPDX XML is not supported; use JSON or tag-value",
        ));
    } else if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| IngestError::json(F, &e))?;
        if v.get("@graph").is_some() || v.get("@context").is_some() {
            v3_record(&v, ctx, &mut out.skipped)?
        } else {
            v2_record(&v, "json", ctx, &mut out.skipped)?
        }
    } else if trimmed.lines().any(|l| l.starts_with("SPDXVersion:")) {
        let v = tag_value(&text);
        v2_record(&v, "tag-value", ctx, &mut out.skipped)?
    } else if trimmed.starts_with("---") || trimmed.lines().any(|l| l.starts_with("spdxVersion:")) {
        return Err(IngestError::schema(
            F,
            "SPDX YAML is not supported; use JSON or tag-value",
        ));
    } else {
        return Err(match serde_json::from_slice::<Value>(bytes) {
            Err(e) => IngestError::json(F, &e),
            Ok(_) => IngestError::schema(F, "not an SPDX document"),
        });
    };
    out.records.push(record);
    Ok(out)
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn finish(
    mut draft: Draft,
    described: &[(Option<String>, Option<String>)],
    fallback: Option<&str>,
    ctx: &Context,
    payload: Value,
    created: Option<&str>,
) -> Result<trailmark_model::NewRecord, IngestError> {
    let mut any = false;
    for (purl, sha) in described {
        if let Some(s) = sha {
            draft = draft.subject("artifact", format!("sha256:{}", s.to_ascii_lowercase()));
            any = true;
        }
        if let Some(p) = purl {
            draft = draft.subject("component", p);
            any = true;
        }
    }
    draft = draft
        .subject_opt("commit", ctx.commit.as_deref())
        .subject_opt("build", ctx.build.as_deref());
    if !any && ctx.commit.is_none() && ctx.build.is_none() {
        let report = fallback
            .map(str::to_owned)
            .or_else(|| ctx.filename.clone())
            .unwrap_or_else(|| "spdx".into());
        draft = draft.subject("report", report);
    }
    let created = created.filter(|t| t.parse::<jiff::Timestamp>().is_ok());
    draft
        .occurred_at(created)
        .payload(payload)
        .build()
        .map_err(|m| IngestError::schema(F, m))
}

fn v2_record(
    doc: &Value,
    serialization: &str,
    ctx: &Context,
    skipped: &mut Vec<Skipped>,
) -> Result<trailmark_model::NewRecord, IngestError> {
    if !doc.is_object() {
        return Err(IngestError::schema(
            F,
            "an SPDX document must be a JSON object",
        ));
    }
    let version = match doc.get("spdxVersion") {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(other) => {
            return Err(IngestError::Version {
                format: F,
                version: other.to_string(),
            });
        }
        None => return Err(IngestError::schema(F, "spdxVersion is missing")),
    };
    if version != "SPDX-2.2" && version != "SPDX-2.3" {
        return Err(IngestError::Version { format: F, version });
    }
    let packages = arr(doc, "packages");
    if version == "SPDX-2.2" {
        let mut newer: Vec<&str> = SPDX_23_ONLY
            .iter()
            .copied()
            .filter(|k| packages.iter().any(|p| p.get(*k).is_some()))
            .collect();
        newer.dedup();
        if !newer.is_empty() {
            return Err(IngestError::Version {
                format: F,
                version: format!(
                    "{version:?} declared on a document using SPDX-2.3 fields ({})",
                    newer.join(", ")
                ),
            });
        }
    }
    let ci = doc.get("creationInfo").cloned().unwrap_or(Value::Null);
    let creators: Vec<Value> = match ci.get("creators") {
        Some(Value::Array(a)) => a.iter().filter(|c| c.is_string()).cloned().collect(),
        None | Some(Value::Null) => Vec::new(),
        Some(other) => {
            skipped.push(Skipped {
                what: "creationInfo.creators".into(),
                reason: format!(
                    "must be an array of strings, found {}",
                    trailmark_model::input::kind_of(other)
                ),
            });
            Vec::new()
        }
    };
    let described_ids: Vec<String> = described_ids(doc);
    let mut listed = Vec::new();
    let mut described = Vec::new();
    for (i, p) in packages.iter().enumerate() {
        let purl = arr(p, "externalRefs")
            .iter()
            .find(|r| {
                str_of(r, "referenceType").is_some_and(|t| t == "purl" || t.ends_with("#purl"))
            })
            .and_then(|r| str_of(r, "referenceLocator"))
            .map(str::to_owned);
        let checksums: Vec<Value> = arr(p, "checksums")
            .iter()
            .filter_map(|c| {
                let alg = str_of(c, "algorithm")?;
                let value = str_of(c, "checksumValue")?;
                Some(json!({"algorithm": alg, "value": value}))
            })
            .collect();
        let sha = checksums
            .iter()
            .find(|c| c["algorithm"] == "SHA256")
            .and_then(|c| c["value"].as_str())
            .filter(|v| is_sha256(v))
            .map(str::to_owned);
        if let Some(id) = str_of(p, "SPDXID")
            && described_ids.iter().any(|d| d == id)
        {
            described.push((purl.clone(), sha));
        }
        if i < MAX_PACKAGES {
            listed.push(json!({
                "spdx_id": str_of(p, "SPDXID"),
                "name": str_of(p, "name"),
                "version": str_of(p, "versionInfo"),
                "purl": purl,
                "checksums": checksums,
                "license_concluded": str_of(p, "licenseConcluded"),
                "license_declared": str_of(p, "licenseDeclared"),
                "supplier": str_of(p, "supplier"),
            }));
        }
    }
    if packages.len() > MAX_PACKAGES {
        skipped.push(Skipped {
            what: format!("packages {}..{}", MAX_PACKAGES + 1, packages.len()),
            reason: format!(
                "only the first {MAX_PACKAGES} packages are listed in the record (all are counted)"
            ),
        });
    }
    let created = str_of(&ci, "created").map(str::to_owned);
    let namespace = str_of(doc, "documentNamespace");
    let payload = json!({
        "serialization": serialization,
        "spdx_version": version,
        "name": str_of(doc, "name"),
        "document_namespace": namespace,
        "data_license": str_of(doc, "dataLicense"),
        "creation_info": {
            "created": created,
            "creators": creators,
            "license_list_version": str_of(&ci, "licenseListVersion"),
        },
        "described": described_ids,
        "packages": listed,
        "counts": {
            "packages": packages.len(),
            "files": arr(doc, "files").len(),
            "snippets": arr(doc, "snippets").len(),
            "relationships": arr(doc, "relationships").len(),
        },
    });
    finish(
        Draft::new("sbom.spdx"),
        &described,
        namespace,
        ctx,
        payload,
        created.as_deref(),
    )
}

/// `documentDescribes`, plus `SPDXRef-DOCUMENT DESCRIBES x` relationships.
fn described_ids(doc: &Value) -> Vec<String> {
    let mut ids: Vec<String> = arr(doc, "documentDescribes")
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let doc_id = str_of(doc, "SPDXID").unwrap_or("SPDXRef-DOCUMENT");
    for r in arr(doc, "relationships") {
        if str_of(r, "relationshipType") == Some("DESCRIBES")
            && str_of(r, "spdxElementId") == Some(doc_id)
            && let Some(t) = str_of(r, "relatedSpdxElement")
        {
            ids.push(t.to_owned());
        }
    }
    let mut seen = Vec::new();
    ids.retain(|i| {
        let new = !seen.contains(i);
        if new {
            seen.push(i.clone());
        }
        new
    });
    ids
}

/// SPDX 2.x tag-value, read into the JSON form's shape.
fn tag_value(text: &str) -> Value {
    #[derive(PartialEq)]
    enum In {
        Doc,
        Package,
        Other,
    }
    let mut doc = Map::new();
    let mut ci = Map::new();
    let mut creators = Vec::new();
    let mut packages: Vec<Map<String, Value>> = Vec::new();
    let (mut files, mut snippets) = (0usize, 0usize);
    let mut relationships = Vec::new();
    let mut state = In::Doc;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim_end();
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((tag, value)) = line.split_once(':') else {
            continue;
        };
        let tag = tag.trim();
        let mut value = value.trim().to_owned();
        if let Some(rest) = value.strip_prefix("<text>") {
            let mut buf = rest.to_owned();
            while !buf.contains("</text>") {
                match lines.next() {
                    Some(l) => {
                        buf.push('\n');
                        buf.push_str(l);
                    }
                    None => break,
                }
            }
            value = buf.split("</text>").next().unwrap_or("").to_owned();
        }
        match tag {
            "SPDXVersion" => {
                doc.insert("spdxVersion".into(), json!(value));
            }
            "DataLicense" => {
                doc.insert("dataLicense".into(), json!(value));
            }
            "DocumentNamespace" => {
                doc.insert("documentNamespace".into(), json!(value));
            }
            "DocumentName" => {
                doc.insert("name".into(), json!(value));
            }
            "Creator" => creators.push(json!(value)),
            "Created" => {
                ci.insert("created".into(), json!(value));
            }
            "LicenseListVersion" => {
                ci.insert("licenseListVersion".into(), json!(value));
            }
            "PackageName" => {
                state = In::Package;
                let mut p = Map::new();
                p.insert("name".into(), json!(value));
                packages.push(p);
            }
            "FileName" => {
                state = In::Other;
                files += 1;
            }
            "SnippetSPDXID" => {
                state = In::Other;
                snippets += 1;
            }
            "LicenseID" => state = In::Other,
            "Relationship" => {
                let parts: Vec<&str> = value.split_whitespace().collect();
                if let [a, rel, b, ..] = parts.as_slice() {
                    relationships.push(json!({"spdxElementId": a, "relationshipType": rel, "relatedSpdxElement": b}));
                }
            }
            "SPDXID" => match state {
                In::Doc => {
                    doc.insert("SPDXID".into(), json!(value));
                }
                In::Package => {
                    if let Some(p) = packages.last_mut() {
                        p.entry("SPDXID").or_insert(json!(value));
                    }
                }
                In::Other => {}
            },
            _ if state == In::Package => {
                let Some(p) = packages.last_mut() else {
                    continue;
                };
                match tag {
                    "PackageVersion" => {
                        p.insert("versionInfo".into(), json!(value));
                    }
                    "PackageSupplier" => {
                        p.insert("supplier".into(), json!(value));
                    }
                    "PackageLicenseConcluded" => {
                        p.insert("licenseConcluded".into(), json!(value));
                    }
                    "PackageLicenseDeclared" => {
                        p.insert("licenseDeclared".into(), json!(value));
                    }
                    "PackageChecksum" => {
                        if let Some((alg, v)) = value.split_once(':') {
                            let list = p.entry("checksums").or_insert(json!([]));
                            if let Some(a) = list.as_array_mut() {
                                a.push(json!({"algorithm": alg.trim(), "checksumValue": v.trim()}));
                            }
                        }
                    }
                    "ExternalRef" => {
                        let parts: Vec<&str> = value.split_whitespace().collect();
                        if let [cat, ty, loc, ..] = parts.as_slice() {
                            let list = p.entry("externalRefs").or_insert(json!([]));
                            if let Some(a) = list.as_array_mut() {
                                a.push(json!({"referenceCategory": cat, "referenceType": ty, "referenceLocator": loc}));
                            }
                        }
                    }
                    "PrimaryPackagePurpose" => {
                        p.insert("primaryPackagePurpose".into(), json!(value));
                    }
                    "ReleaseDate" => {
                        p.insert("releaseDate".into(), json!(value));
                    }
                    "BuiltDate" => {
                        p.insert("builtDate".into(), json!(value));
                    }
                    "ValidUntilDate" => {
                        p.insert("validUntilDate".into(), json!(value));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    ci.insert("creators".into(), Value::Array(creators));
    doc.insert("creationInfo".into(), Value::Object(ci));
    doc.insert(
        "packages".into(),
        Value::Array(packages.into_iter().map(Value::Object).collect()),
    );
    doc.insert("files".into(), Value::Array(vec![Value::Null; files]));
    doc.insert("snippets".into(), Value::Array(vec![Value::Null; snippets]));
    doc.insert("relationships".into(), Value::Array(relationships));
    Value::Object(doc)
}

/// SPDX 3.0 JSON-LD: elements in `@graph`.
fn v3_record(
    doc: &Value,
    ctx: &Context,
    skipped: &mut Vec<Skipped>,
) -> Result<trailmark_model::NewRecord, IngestError> {
    let context = match doc.get("@context") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let graph = doc
        .get("@graph")
        .and_then(Value::as_array)
        .ok_or_else(|| IngestError::schema(F, "SPDX 3 JSON-LD without an @graph array"))?;
    let ty = |e: &Value| {
        str_of(e, "type")
            .or_else(|| str_of(e, "@type"))
            .unwrap_or("")
            .to_owned()
    };
    let ci = graph
        .iter()
        .find(|e| ty(e) == "CreationInfo")
        .cloned()
        .unwrap_or(Value::Null);
    let spec = str_of(&ci, "specVersion").map(str::to_owned).or_else(|| {
        context
            .split('/')
            .find(|s| s.starts_with("3."))
            .map(str::to_owned)
    });
    let spec = spec.ok_or_else(|| {
        IngestError::schema(F, "SPDX 3 document without CreationInfo.specVersion")
    })?;
    if !spec.starts_with("3.0") {
        return Err(IngestError::Version {
            format: F,
            version: spec,
        });
    }
    let sdoc = graph
        .iter()
        .find(|e| ty(e) == "SpdxDocument")
        .cloned()
        .unwrap_or(Value::Null);
    let roots: Vec<String> = arr(&sdoc, "rootElement")
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    // Roots that are SBOMs describe their own root elements.
    let mut described: Vec<String> = Vec::new();
    for r in &roots {
        match graph
            .iter()
            .find(|e| str_of(e, "spdxId") == Some(r.as_str()))
        {
            Some(e) if ty(e) == "software_Sbom" || ty(e) == "Bom" => {
                described.extend(
                    arr(e, "rootElement")
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned),
                );
            }
            _ => described.push(r.clone()),
        }
    }
    let license_of = |pkg: &str, rel: &str| -> Option<String> {
        let target = graph.iter().find(|e| {
            ty(e) == "Relationship"
                && str_of(e, "from") == Some(pkg)
                && str_of(e, "relationshipType") == Some(rel)
        })?;
        let to = arr(target, "to").first().and_then(Value::as_str)?;
        let lic = graph.iter().find(|e| str_of(e, "spdxId") == Some(to));
        Some(
            lic.and_then(|l| str_of(l, "simplelicensing_licenseExpression"))
                .unwrap_or(to)
                .to_owned(),
        )
    };
    let pkgs: Vec<&Value> = graph
        .iter()
        .filter(|e| ty(e) == "software_Package")
        .collect();
    let mut listed = Vec::new();
    let mut desc_subjects = Vec::new();
    for (i, p) in pkgs.iter().enumerate() {
        let id = str_of(p, "spdxId").unwrap_or("");
        let purl = str_of(p, "software_packageUrl").map(str::to_owned);
        let checksums: Vec<Value> = arr(p, "verifiedUsing")
            .iter()
            .filter_map(|h| {
                Some(
                    json!({"algorithm": str_of(h, "algorithm")?, "value": str_of(h, "hashValue")?}),
                )
            })
            .collect();
        let sha = checksums
            .iter()
            .find(|c| c["algorithm"] == "sha256")
            .and_then(|c| c["value"].as_str())
            .filter(|v| is_sha256(v))
            .map(str::to_owned);
        if described.iter().any(|d| d == id) {
            desc_subjects.push((purl.clone(), sha));
        }
        if i < MAX_PACKAGES {
            listed.push(json!({
                "spdx_id": id,
                "name": str_of(p, "name"),
                "version": str_of(p, "software_packageVersion"),
                "purl": purl,
                "checksums": checksums,
                "license_concluded": license_of(id, "hasConcludedLicense"),
                "license_declared": license_of(id, "hasDeclaredLicense"),
                "supplier": str_of(p, "suppliedBy"),
            }));
        }
    }
    if pkgs.len() > MAX_PACKAGES {
        skipped.push(Skipped {
            what: format!("packages {}..{}", MAX_PACKAGES + 1, pkgs.len()),
            reason: format!(
                "only the first {MAX_PACKAGES} packages are listed in the record (all are counted)"
            ),
        });
    }
    let count = |t: &str| graph.iter().filter(|e| ty(e) == t).count();
    let rels = graph
        .iter()
        .filter(|e| ty(e).ends_with("Relationship"))
        .count();
    let created = str_of(&ci, "created").map(str::to_owned);
    let namespace = str_of(&sdoc, "spdxId");
    let payload = json!({
        "serialization": "json-ld",
        "spdx_version": format!("SPDX-{spec}"),
        "name": str_of(&sdoc, "name"),
        "document_namespace": namespace,
        "data_license": str_of(&sdoc, "dataLicense"),
        "creation_info": {
            "created": created,
            "creators": ci.get("createdBy").cloned().unwrap_or(json!([])),
            "license_list_version": Value::Null,
        },
        "described": described,
        "packages": listed,
        "counts": {
            "packages": pkgs.len(),
            "files": count("software_File"),
            "snippets": count("software_Snippet"),
            "relationships": rels,
            "elements": graph.len(),
        },
    });
    finish(
        Draft::new("sbom.spdx"),
        &desc_subjects,
        namespace,
        ctx,
        payload,
        created.as_deref(),
    )
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
            b"{\"@graph\": 1}",
            b"{\"@graph\": []}",
            b"{\"spdxVersion\": 2}",
            b"<x/>",
            b"---\na: 1",
        ] {
            assert!(parse(input, &Context::default()).is_err());
        }
        let tv = b"SPDXVersion: SPDX-2.3\nPackageChecksum: nocolon\nExternalRef: a\nSPDXID: x\nPackageName: p\nPackageChecksum: SHA256: zz\nCreatorComment: <text>never closed";
        assert_eq!(parse(tv, &Context::default()).unwrap().records.len(), 1);
    }
}
