//! The release's trace graph as a deterministic SVG: seven columns (ticket → commit → review →
//! build → test → approval → deploy), one box per item, an edge for each link the dossier view
//! established. Same view, same bytes: no randomness, integer coordinates, stable order.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use trailmark_dossier::View;

pub const STAGES: [&str; 7] = [
    "Ticket", "Commit", "Review", "Build", "Tests", "Approval", "Deploy",
];

const COL_W: usize = 170;
const BOX_W: usize = 150;
const BOX_H: usize = 26;
const ROW_H: usize = 34;
const TOP: usize = 44;

/// Escapes text for SVG/XML character data and attribute values.
pub use trailmark_metrics::svg::escape as xml_escape;

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Nodes per column, and edges as (column, row) pairs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Graph {
    pub columns: [Vec<String>; 7],
    pub edges: Vec<((usize, usize), (usize, usize))>,
}

impl Graph {
    fn node(&mut self, col: usize, label: &str) -> (usize, usize) {
        if let Some(i) = self.columns[col].iter().position(|l| l == label) {
            return (col, i);
        }
        self.columns[col].push(label.to_owned());
        (col, self.columns[col].len() - 1)
    }

    fn edge(&mut self, a: (usize, usize), b: (usize, usize)) {
        if !self.edges.contains(&(a, b)) {
            self.edges.push((a, b));
        }
    }
}

/// The graph of a dossier view.
pub fn graph(view: &View) -> Graph {
    let mut g = Graph::default();
    let approvals: Vec<String> = view
        .story
        .approvals
        .iter()
        .filter(|a| a.current)
        .map(|a| format!("{} {}", a.decision, a.person))
        .collect();
    let deploys: Vec<String> = view
        .deployments
        .iter()
        .map(|d| format!("{} #{} {}", d.environment, d.record, d.status))
        .collect();
    let approval_nodes: Vec<(usize, usize)> = approvals.iter().map(|a| g.node(5, a)).collect();
    let deploy_nodes: Vec<(usize, usize)> = deploys.iter().map(|d| g.node(6, d)).collect();
    for row in &view.matrix {
        let t = g.node(0, &row.ticket);
        for c in &row.commits {
            let short: String = c.sha.chars().take(12).collect();
            let cn = g.node(1, &short);
            g.edge(t, cn);
            let mut last = vec![cn];
            let reviews: Vec<_> = c.reviews.iter().map(|r| g.node(2, r)).collect();
            for r in &reviews {
                g.edge(cn, *r);
            }
            let builds: Vec<_> = c.builds.iter().map(|b| g.node(3, b)).collect();
            for b in &builds {
                for from in if reviews.is_empty() { &last } else { &reviews } {
                    g.edge(*from, *b);
                }
            }
            if !reviews.is_empty() {
                last = reviews;
            }
            if !builds.is_empty() {
                last = builds;
            }
            if c.tests.reports > 0 {
                let label = match c.tests.pass_rate_permille {
                    Some(p) => format!("{} tests, {}.{}% pass", c.tests.tests, p / 10, p % 10),
                    None => format!("{} reports", c.tests.reports),
                };
                let tn = g.node(4, &format!("{short}: {label}"));
                for from in &last {
                    g.edge(*from, tn);
                }
                last = vec![tn];
            }
            for a in &approval_nodes {
                for from in &last {
                    g.edge(*from, *a);
                }
            }
        }
    }
    for a in &approval_nodes {
        for d in &deploy_nodes {
            g.edge(*a, *d);
        }
    }
    g
}

/// Renders the graph; an accessible image with a text alternative.
pub fn svg(view: &View) -> String {
    let g = graph(view);
    let rows = g.columns.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let width = COL_W * STAGES.len() + 10;
    let height = TOP + rows * ROW_H + 10;
    let pos = |(c, r): (usize, usize)| (10 + c * COL_W, TOP + r * ROW_H);
    let mut s = String::new();
    let counts: BTreeMap<&str, usize> = STAGES
        .iter()
        .zip(g.columns.iter())
        .map(|(n, c)| (*n, c.len()))
        .collect();
    let desc = STAGES
        .iter()
        .map(|n| format!("{} {n}", counts.get(n).copied().unwrap_or(0)))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-labelledby="trace-title trace-desc" class="trace"><title id="trace-title">Trace graph: ticket to deploy</title><desc id="trace-desc">{}</desc>"#,
        xml_escape(&desc)
    );
    for (i, name) in STAGES.iter().enumerate() {
        let _ = write!(
            s,
            r#"<text x="{}" y="24" class="stage">{name}</text>"#,
            10 + i * COL_W
        );
    }
    for (a, b) in &g.edges {
        let (ax, ay) = pos(*a);
        let (bx, by) = pos(*b);
        let _ = write!(
            s,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" class="edge"/>"#,
            ax + BOX_W,
            ay + BOX_H / 2,
            bx,
            by + BOX_H / 2
        );
    }
    for (c, col) in g.columns.iter().enumerate() {
        for (r, label) in col.iter().enumerate() {
            let (x, y) = pos((c, r));
            let _ = write!(
                s,
                r#"<g class="node"><rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="4"/><text x="{}" y="{}"><title>{}</title>{}</text></g>"#,
                x + 6,
                y + 17,
                xml_escape(label),
                xml_escape(&clip(label, 22))
            );
        }
    }
    s.push_str("</svg>");
    s
}
