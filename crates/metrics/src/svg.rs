//! Deterministic, accessible SVG charts.
//!
//! The same input always gives the same bytes: coordinates are integers in tenths of a pixel
//! printed by integer formatting (no float is ever printed), there are no ids (several charts
//! can sit in one page) and nothing depends on time or randomness. Each chart has
//! `role="img"`, an `aria-label`, a `<title>` and a `<desc>` listing every value, text labels on
//! the axes and a tooltip `<title>` per mark. Every piece of text is XML-escaped. A chart with
//! no value shows its title and why there is nothing to draw.
//!
//! Styling uses presentation attributes with `tm-*` classes, so a page's CSS can restyle it.

use std::fmt::Write as _;

use serde::Serialize;

use crate::output::Metrics;
use crate::stats::{Ratio, Seconds};

/// How values are read and printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Whole numbers: `12`.
    Count,
    /// Durations in seconds: `2h 5m`.
    Seconds,
    /// Tenths of a percent: `250` is `25.0%`.
    PerMille,
}

impl Unit {
    pub fn format(self, v: u64) -> String {
        match self {
            Unit::Count => v.to_string(),
            Unit::Seconds => Seconds(i64::try_from(v).unwrap_or(i64::MAX)).human(),
            Unit::PerMille => format!("{}.{}%", v / 10, v % 10),
        }
    }
}

/// One chart of a [`Metrics`] value, ready to inline in a page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Chart {
    /// Stable name: `deployment_frequency`, `lead_time`, ...
    pub key: &'static str,
    pub title: String,
    pub svg: String,
}

const W: u64 = 6400; // tenths of a pixel
const H: u64 = 2600;
const LEFT: u64 = 720;
const RIGHT: u64 = 160;
const TOP: u64 = 440;
const BOTTOM: u64 = 520;
const PLOT_W: u64 = W - LEFT - RIGHT;
const PLOT_H: u64 = H - TOP - BOTTOM;
/// At most this many x-axis labels are printed; the others stay in tooltips and `<desc>`.
const MAX_X_LABELS: usize = 12;
/// Values are printed above bars when there are at most this many.
const MAX_VALUE_LABELS: usize = 16;
const AXIS_LABEL_CHARS: usize = 16;

/// A bar per item; `None` draws nothing (no data for that label), which is not a zero.
pub fn bar_chart<L: AsRef<str>>(title: &str, unit: Unit, data: &[(L, Option<u64>)]) -> String {
    render(Kind::Bar, title, unit, data, None)
}

/// A line through the items' values; `None` breaks the line.
pub fn line_chart<L: AsRef<str>>(title: &str, unit: Unit, data: &[(L, Option<u64>)]) -> String {
    render(Kind::Line, title, unit, data, None)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bar,
    Line,
}

/// Tenths of a pixel as SVG text: `1234` → `123.4`.
fn px(v: u64) -> String {
    if v.is_multiple_of(10) {
        (v / 10).to_string()
    } else {
        format!("{}.{}", v / 10, v % 10)
    }
}

/// Escapes text for XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0 at all.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= AXIS_LABEL_CHARS {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(AXIS_LABEL_CHARS - 1).collect();
    t.push('…');
    t
}

/// The smallest "round" step at or above `x`: 1, 2, 2.5, 5 × 10^k for counts and per-mille,
/// clock-friendly steps for durations.
fn nice_step(x: u64, unit: Unit) -> u64 {
    let x = x.max(1);
    if unit == Unit::Seconds {
        const STEPS: &[u64] = &[
            1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200,
            86_400, 172_800, 432_000, 604_800, 1_209_600, 2_592_000, 7_776_000, 15_552_000,
            31_536_000,
        ];
        if let Some(s) = STEPS.iter().find(|s| **s >= x) {
            return *s;
        }
        return x.div_ceil(31_536_000).saturating_mul(31_536_000);
    }
    let mut decade: u64 = 1;
    loop {
        let mut candidates = vec![decade, decade.saturating_mul(2)];
        if decade >= 10 {
            candidates.push((decade / 10).saturating_mul(25));
        }
        candidates.push(decade.saturating_mul(5));
        candidates.sort_unstable();
        if let Some(c) = candidates.into_iter().find(|c| *c >= x) {
            return c;
        }
        match decade.checked_mul(10) {
            Some(d) => decade = d,
            None => return u64::MAX / 4,
        }
    }
}

fn scale(v: u64, top: u64) -> u64 {
    if top == 0 {
        return 0;
    }
    let h = u128::from(v.min(top)) * u128::from(PLOT_H) / u128::from(top);
    u64::try_from(h).unwrap_or(PLOT_H)
}

fn render<L: AsRef<str>>(
    kind: Kind,
    title: &str,
    unit: Unit,
    data: &[(L, Option<u64>)],
    empty_reason: Option<&str>,
) -> String {
    let t = escape(title);
    let mut desc = String::new();
    for (i, (label, v)) in data.iter().enumerate() {
        if i > 0 {
            desc.push_str("; ");
        }
        let _ = write!(
            desc,
            "{}: {}",
            label.as_ref(),
            v.map_or_else(|| "no data".to_owned(), |v| unit.format(v))
        );
    }
    let has_data = data.iter().any(|(_, v)| v.is_some());
    let empty_text = empty_reason.unwrap_or("No data for this period");
    if !has_data {
        desc = empty_text.to_owned();
    }
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" \
         role=\"img\" aria-label=\"{t}\" font-family=\"system-ui, sans-serif\" font-size=\"11\" class=\"tm-chart\">\n\
         <title>{t}</title>\n<desc>{d}</desc>\n\
         <text x=\"8\" y=\"20\" font-size=\"14\" font-weight=\"bold\" fill=\"#111827\" class=\"tm-title\">{t}</text>\n",
        w = px(W),
        h = px(H),
        d = escape(&desc),
    );
    if !has_data {
        let _ = write!(
            s,
            "<rect x=\"{x}\" y=\"{y}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#e5e7eb\" class=\"tm-frame\"/>\n\
             <text x=\"{cx}\" y=\"{cy}\" text-anchor=\"middle\" font-size=\"13\" fill=\"#6b7280\" class=\"tm-empty\">{e}</text>\n</svg>\n",
            x = px(LEFT),
            y = px(TOP),
            pw = px(PLOT_W),
            ph = px(PLOT_H),
            cx = px(LEFT + PLOT_W / 2),
            cy = px(TOP + PLOT_H / 2),
            e = escape(empty_text),
        );
        return s;
    }
    let max = data.iter().filter_map(|(_, v)| *v).max().unwrap_or(0);
    let step = nice_step(max.div_ceil(4), unit);
    let top = step.saturating_mul(4);
    let base = TOP + PLOT_H;

    // Grid lines and y-axis labels.
    s.push_str("<g class=\"tm-grid\" stroke=\"#e5e7eb\">\n");
    for i in 0..=4u64 {
        let y = base - PLOT_H * i / 4;
        let _ = writeln!(
            s,
            "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\"/>",
            px(LEFT),
            px(LEFT + PLOT_W),
            y = px(y),
        );
    }
    s.push_str("</g>\n<g class=\"tm-axis\" fill=\"#4b5563\" text-anchor=\"end\">\n");
    for i in 0..=4u64 {
        let y = base - PLOT_H * i / 4;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\">{}</text>",
            px(LEFT - 60),
            px(y + 35),
            escape(&unit.format(step.saturating_mul(i)))
        );
    }
    s.push_str("</g>\n");

    let n = data.len() as u64;
    let slot = PLOT_W / n.max(1);
    let center = |i: u64| LEFT + i * PLOT_W / n.max(1) + slot / 2;
    match kind {
        Kind::Bar => {
            let bw = (slot * 7 / 10).max(1);
            s.push_str("<g class=\"tm-bars\" fill=\"#2563eb\">\n");
            for (i, (label, v)) in data.iter().enumerate() {
                let Some(v) = *v else { continue };
                let h = scale(v, top);
                let _ = writeln!(
                    s,
                    "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>{}: {}</title></rect>",
                    px(center(i as u64) - bw / 2),
                    px(base - h),
                    px(bw),
                    px(h),
                    escape(label.as_ref()),
                    escape(&unit.format(v)),
                );
            }
            s.push_str("</g>\n");
        }
        Kind::Line => {
            s.push_str(
                "<g class=\"tm-lines\" fill=\"none\" stroke=\"#2563eb\" stroke-width=\"2\">\n",
            );
            let mut run: Vec<String> = Vec::new();
            let flush = |run: &mut Vec<String>, s: &mut String| {
                if run.len() > 1 {
                    let _ = writeln!(s, "<polyline points=\"{}\"/>", run.join(" "));
                }
                run.clear();
            };
            for (i, (_, v)) in data.iter().enumerate() {
                match v {
                    Some(v) => run.push(format!(
                        "{},{}",
                        px(center(i as u64)),
                        px(base - scale(*v, top))
                    )),
                    None => flush(&mut run, &mut s),
                }
            }
            flush(&mut run, &mut s);
            s.push_str("</g>\n<g class=\"tm-points\" fill=\"#2563eb\">\n");
            for (i, (label, v)) in data.iter().enumerate() {
                let Some(v) = *v else { continue };
                let _ = writeln!(
                    s,
                    "<circle cx=\"{}\" cy=\"{}\" r=\"3\"><title>{}: {}</title></circle>",
                    px(center(i as u64)),
                    px(base - scale(v, top)),
                    escape(label.as_ref()),
                    escape(&unit.format(v)),
                );
            }
            s.push_str("</g>\n");
        }
    }

    if data.len() <= MAX_VALUE_LABELS {
        s.push_str("<g class=\"tm-values\" fill=\"#111827\" text-anchor=\"middle\">\n");
        for (i, (_, v)) in data.iter().enumerate() {
            let Some(v) = *v else { continue };
            let y = (base - scale(v, top)).saturating_sub(40);
            let _ = writeln!(
                s,
                "<text x=\"{}\" y=\"{}\">{}</text>",
                px(center(i as u64)),
                px(y),
                escape(&unit.format(v))
            );
        }
        s.push_str("</g>\n");
    }
    let every = data.len().div_ceil(MAX_X_LABELS).max(1);
    s.push_str("<g class=\"tm-labels\" fill=\"#4b5563\" text-anchor=\"middle\">\n");
    for (i, (label, _)) in data.iter().enumerate().step_by(every) {
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\">{}</text>",
            px(center(i as u64)),
            px(base + 200),
            escape(&shorten(label.as_ref()))
        );
    }
    s.push_str("</g>\n</svg>\n");
    s
}

fn labels(m: &Metrics) -> impl Iterator<Item = &str> {
    m.buckets.iter().map(|b| b.label.as_str())
}

fn per_mille(r: Option<&Ratio>) -> Option<u64> {
    r.map(Ratio::per_mille)
}

fn secs(s: Option<Seconds>) -> Option<u64> {
    s.and_then(|s| u64::try_from(s.0).ok())
}

/// Approvers drawn in the bottleneck chart; the rest are summed into one bar.
const MAX_APPROVERS: usize = 15;

/// `day`, `week`, `14 days`: the bucket as a title says it.
fn bucket_words(bucket: &str) -> String {
    match bucket {
        "day" => "day".to_owned(),
        "iso-week" => "week".to_owned(),
        other => match other.strip_suffix('d') {
            Some(n) => format!("{n} days"),
            None => other.to_owned(),
        },
    }
}

/// Every chart of the metrics page, in display order.
pub fn charts(m: &Metrics) -> Vec<Chart> {
    let per = bucket_words(&m.bucket);
    let env = if m.environments.is_empty() {
        "all environments".to_owned()
    } else {
        m.environments.join(", ")
    };
    let mut out = Vec::new();
    let mut add = |key: &'static str,
                   title: String,
                   kind: Kind,
                   unit: Unit,
                   data: Vec<(String, Option<u64>)>,
                   unavailable: Option<&String>| {
        let svg = render(kind, &title, unit, &data, unavailable.map(String::as_str));
        out.push(Chart { key, title, svg });
    };
    let zip = |vals: Vec<Option<u64>>| -> Vec<(String, Option<u64>)> {
        labels(m).map(str::to_owned).zip(vals).collect()
    };

    let df = &m.deployment_frequency;
    add(
        "deployment_frequency",
        format!("Deployments per {per} ({env})"),
        Kind::Bar,
        Unit::Count,
        zip(df.per_bucket.iter().map(|n| Some(*n)).collect()),
        df.unavailable.as_ref(),
    );
    let lt = &m.lead_time;
    add(
        "lead_time",
        format!("Lead time for changes, median ({env})"),
        Kind::Line,
        Unit::Seconds,
        zip(lt.per_bucket.iter().map(|b| secs(b.median)).collect()),
        lt.unavailable.as_ref(),
    );
    let cfr = &m.change_failure_rate;
    add(
        "change_failure_rate",
        format!("Change failure rate ({env})"),
        Kind::Bar,
        Unit::PerMille,
        zip(cfr
            .per_bucket
            .iter()
            .map(|b| per_mille(b.rate.as_ref()))
            .collect()),
        cfr.unavailable.as_ref(),
    );
    let ttr = &m.time_to_restore;
    add(
        "time_to_restore",
        format!("Time to restore service, median ({env})"),
        Kind::Line,
        Unit::Seconds,
        zip(ttr.per_bucket.iter().map(|b| secs(b.median)).collect()),
        ttr.unavailable.as_ref(),
    );
    let ap = &m.approvals;
    add(
        "time_to_decision",
        "Approval time to decision, median".to_owned(),
        Kind::Line,
        Unit::Seconds,
        zip(ap.per_bucket.iter().map(|b| secs(b.median)).collect()),
        ap.time_to_decision_unavailable.as_ref(),
    );
    let mut shares: Vec<(String, Option<u64>)> = ap
        .approvers
        .iter()
        .take(MAX_APPROVERS)
        .map(|a| (a.approver.clone(), per_mille(a.share.as_ref())))
        .collect();
    if ap.approvers.len() > MAX_APPROVERS {
        let rest: u64 = ap
            .approvers
            .iter()
            .skip(MAX_APPROVERS)
            .map(|a| a.decisions)
            .sum();
        let others = ap.approvers.len() - MAX_APPROVERS;
        shares.push((
            format!("{others} others"),
            per_mille(Ratio::new(rest, ap.decisions).as_ref()),
        ));
    }
    add(
        "approvers",
        "Share of approval decisions by approver".to_owned(),
        Kind::Bar,
        Unit::PerMille,
        shares,
        ap.unavailable.as_ref(),
    );
    let cr = &m.change_requests;
    add(
        "change_requests",
        format!("Tickets and pull requests opened per {per}"),
        Kind::Bar,
        Unit::Count,
        zip(cr
            .per_bucket
            .iter()
            .map(|b| Some(b.tickets + b.pull_requests))
            .collect()),
        cr.unavailable.as_ref(),
    );
    let ai = &m.ai_intervention;
    add(
        "ai_intervention",
        "AI-generated changes overridden by human review".to_owned(),
        Kind::Bar,
        Unit::PerMille,
        zip(ai
            .per_bucket
            .iter()
            .map(|b| per_mille(b.rate.as_ref()))
            .collect()),
        ai.unavailable.as_ref(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(0, Unit::Count), 1);
        assert_eq!(nice_step(3, Unit::Count), 5);
        assert_eq!(nice_step(6, Unit::Count), 10);
        assert_eq!(nice_step(21, Unit::Count), 25);
        assert_eq!(nice_step(250, Unit::PerMille), 250);
        assert_eq!(nice_step(251, Unit::PerMille), 500);
        assert_eq!(nice_step(4000, Unit::Seconds), 7200);
        assert_eq!(nice_step(u64::MAX, Unit::Count), u64::MAX);
        assert_eq!(px(1234), "123.4");
        assert_eq!(px(1230), "123");
        assert_eq!(Unit::PerMille.format(333), "33.3%");
    }
}
