//! Delivery metrics: DORA (deployment frequency, lead time, change failure rate, time to
//! restore), time to decision and approval bottlenecks, change requests per period and the AI
//! intervention rate, each with a deterministic SVG chart (`trailmark-metrics`), computed over
//! the records the viewer may read.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde::Deserialize;
use trailmark_access::Permission;
use trailmark_metrics::Metrics;
use trailmark_metrics::svg::Chart;
use trailmark_server::AppState;

use trailmark_server::api::metrics::{MetricsParams, Window, compute};

use super::{log_read, query, render, work};
use crate::error::UiError;
use crate::viewer::{Nav, Viewer};

#[derive(Debug, Default, Deserialize)]
pub struct MetricsQuery {
    #[serde(default)]
    pub env: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub bucket: String,
}

#[derive(Template)]
#[template(path = "metrics.html")]
struct MetricsPage {
    nav: Nav,
    q: MetricsQuery,
    m: Metrics,
    charts: Vec<Chart>,
    records: usize,
    /// The earliest record time read.
    since: String,
}

impl MetricsPage {
    fn human(&self, s: &Option<trailmark_metrics::Seconds>) -> String {
        s.map_or_else(|| "–".to_owned(), |s| s.human())
    }
    fn pct(&self, r: &Option<trailmark_metrics::Ratio>) -> String {
        r.as_ref().map_or_else(
            || "–".to_owned(),
            |r| format!("{} % ({} of {})", r.percent, r.numerator, r.denominator),
        )
    }
}

pub async fn page(
    State(state): State<AppState>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    let readable = viewer.scopes(Permission::ReadEvidence)?;
    let mut q: MetricsQuery = query(raw)?;
    // The API's parsing and defaults, so the page and `GET /api/v1/metrics` agree.
    let params = MetricsParams {
        env: Some(q.env.clone()),
        from: Some(q.from.clone()),
        to: Some(q.to.clone()),
        bucket: Some(q.bucket.clone()),
    };
    let w = Window::parse(&params, jiff::Timestamp::now()).map_err(UiError::BadRequest)?;
    q.env.clone_from(&w.env);
    q.bucket.clone_from(&w.bucket);
    log_read(&state, &viewer, "metrics", w.detail()).await?;
    let since = w.read_since();
    let (m, records) = work(&state, move |st| Ok(compute(st, &readable, &w)?)).await?;
    let charts = trailmark_metrics::svg::charts(&m);
    render(&MetricsPage {
        nav: viewer.nav("metrics"),
        q,
        m,
        charts,
        records,
        since: since.strftime("%Y-%m-%d").to_string(),
    })
}
