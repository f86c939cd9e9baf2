//! Format detection from content (and the file name as a hint).

use crate::{Context, Format};

pub fn detect(bytes: &[u8], ctx: &Context) -> Option<Format> {
    let text = std::str::from_utf8(bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes)).ok()?;
    let trimmed = text.trim_start();
    let name = ctx.filename.as_deref().unwrap_or("").to_ascii_lowercase();
    if trimmed.starts_with('<') {
        if trimmed.contains("<testsuite") {
            return Some(Format::Junit);
        }
        if trimmed.contains("cyclonedx.org/schema/bom") || trimmed.contains("<bom") {
            return Some(Format::Cyclonedx);
        }
        if name.ends_with(".xml") && (name.contains("junit") || name.contains("test")) {
            return Some(Format::Junit);
        }
        return None;
    }
    if trimmed.starts_with("SPDXVersion:") || name.ends_with(".spdx") {
        return Some(Format::Spdx);
    }
    let first = trimmed.lines().next().unwrap_or("");
    // JSON Lines of DSSE envelopes / bundles.
    let value: serde_json::Value = serde_json::from_str(trimmed)
        .or_else(|_| serde_json::from_str(first))
        .ok()?;
    let obj = value.as_object()?;
    let has = |k: &str| obj.contains_key(k);
    if has("$schema") && obj["$schema"].as_str().is_some_and(|s| s.contains("sarif"))
        || (has("runs") && has("version"))
    {
        return Some(Format::Sarif);
    }
    if obj.get("bomFormat").and_then(|v| v.as_str()) == Some("CycloneDX")
        || (has("specVersion") && has("components"))
    {
        return Some(Format::Cyclonedx);
    }
    if has("spdxVersion") || has("@context") && trimmed.contains("spdx") {
        return Some(Format::Spdx);
    }
    if has("payloadType")
        || has("dsseEnvelope")
        || has("provenance_summary")
        || (has("attestations") && trimmed.contains("dsseEnvelope"))
        || (has("mediaType") && trimmed.contains("sigstore"))
        || has("_type") && trimmed.contains("in-toto")
    {
        return Some(Format::Intoto);
    }
    if has("specversion")
        && obj
            .get("type")
            .and_then(|v| v.as_str())
            .is_some_and(|t| t.starts_with("dev.cdevents."))
    {
        return Some(Format::Cdevents);
    }
    if has("context")
        && obj["context"]
            .get("type")
            .and_then(|v| v.as_str())
            .is_some_and(|t| t.starts_with("dev.cdevents."))
    {
        return Some(Format::Cdevents);
    }
    if has("webhookEvent")
        || has("issue_event_type_name")
        || (has("issue") && obj["issue"].get("key").is_some())
    {
        return Some(Format::Jira);
    }
    if has("object_kind") || has("event_name") && has("project") {
        return Some(Format::Gitlab);
    }
    if has("build") && obj["build"].get("phase").is_some() || has("display_name") && has("build") {
        return Some(Format::Jenkins);
    }
    if has("repository") && (has("sender") || has("action") || has("pusher") || has("installation"))
    {
        return Some(Format::Github);
    }
    None
}
