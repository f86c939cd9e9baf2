//! Custom gate rules in Rego (regorus), evaluated over the gate's input document. A module
//! declares `package trailmark.gate` and adds messages to the `deny` set; each message is a
//! reason the gate denies. Built without regorus' clock, network and randomness features, so a
//! rule cannot depend on anything but its input.

use serde_json::Value;

use crate::policy::{REGO_QUERY, RegoModule};

const PACKAGE: &str = "trailmark.gate";

fn engine(modules: &[RegoModule]) -> Result<regorus::Engine, String> {
    let mut engine = regorus::Engine::new();
    for m in modules {
        let package = engine
            .add_policy(m.name.clone(), m.source.clone())
            .map_err(|e| first_line(&e.to_string()))?;
        let package = package.to_string();
        if package.trim_start_matches("data.") != PACKAGE {
            return Err(format!(
                "declares package {package:?}; gate rules must be `package {PACKAGE}`"
            ));
        }
    }
    Ok(engine)
}

fn first_line(s: &str) -> String {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .take(4)
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Parses one module (policy load time), so a broken rule is refused before it is recorded.
pub fn compile(m: &RegoModule) -> Result<(), String> {
    engine(std::slice::from_ref(m)).map(|_| ())
}

/// The `deny` messages of every module, sorted; `Err` when evaluation failed.
pub fn deny(modules: &[RegoModule], input: &Value) -> Result<Vec<String>, String> {
    let mut engine = engine(modules)?;
    let input =
        regorus::Value::from_json_str(&input.to_string()).map_err(|e| format!("input: {e}"))?;
    engine.set_input(input);
    let out = engine
        .eval_rule(REGO_QUERY.to_owned())
        .map_err(|e| first_line(&e.to_string()))?;
    if out == regorus::Value::Undefined {
        return Ok(Vec::new());
    }
    let json = out.to_json_str().map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_str(&json).map_err(|e| e.to_string())?;
    let mut msgs = match v {
        Value::Array(items) => items
            .into_iter()
            .map(|m| match m {
                Value::String(s) => s,
                other => other.to_string(),
            })
            .collect::<Vec<_>>(),
        other => {
            return Err(format!(
                "{REGO_QUERY} must be a set of messages, got {other}"
            ));
        }
    };
    msgs.sort();
    msgs.dedup();
    Ok(msgs)
}
