//! The dossier as a PDF/A-2b document (feature `pdf`): the same sections as the HTML page —
//! the five questions, the story, the traceability matrix, gate decisions, deployments, the
//! control mapping, the gaps and the log anchor — typeset by the typst compiler, linked in as a
//! library. Self-contained: the template and its fonts are compiled into this crate; no file,
//! font, package or clock of the machine is consulted.
//!
//! Escaping: no user text is written into typst markup. The view and the export's anchor go to
//! the template as one JSON document (`/dossier.json`), and the template shows each string as
//! text content, which typst never parses as markup. A ticket title full of `#`, `*`, `$`, `]`
//! or `\` prints as those characters (the tests hold this).
//!
//! Reproducible: a pure function of the view and the anchor. The document's date is the
//! dossier's `generated_at` (its `as_of`), its identifier is derived from the release and the
//! checkpoint, and nothing else varies, so the same dossier renders to the same bytes.

use std::sync::LazyLock;

use typst::diag::{FileError, FileResult, SourceDiagnostic};
use typst::foundations::{Bytes, Datetime, Duration, Smart};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World};
use typst_layout::PagedDocument;
use typst_pdf::{PdfOptions, PdfStandard, PdfStandards, Timestamp};

use crate::view::{ExportMeta, View};

/// The typst source of the document.
const TEMPLATE: &str = include_str!("../templates/dossier.typ");

/// The fonts the template may use, embedded (subset) in every PDF. See `fonts/README.md`.
const FONTS: &[&[u8]] = &[
    include_bytes!("../fonts/LibertinusSerif-Regular.otf"),
    include_bytes!("../fonts/LibertinusSerif-Bold.otf"),
    include_bytes!("../fonts/LibertinusSerif-Italic.otf"),
    include_bytes!("../fonts/DejaVuSansMono.ttf"),
];

/// Why a dossier could not be rendered as a PDF.
#[derive(Debug, thiserror::Error)]
#[error("the dossier could not be rendered as PDF: {0}")]
pub struct PdfError(pub String);

/// The dossier for `view`, anchored to the log described by `meta`, as PDF/A-2b bytes.
///
/// CPU-bound (typesetting and font subsetting): async callers should run it on a blocking
/// thread.
pub fn render(view: &View, meta: &ExportMeta) -> Result<Vec<u8>, PdfError> {
    let options = PdfOptions {
        // Hashed into the PDF's document identifier: stable for the same dossier.
        ident: Smart::Custom(format!(
            "trailmark dossier {} {} {}",
            view.release.id, meta.checkpoint_size, meta.checkpoint_root
        )),
        creator: Smart::Custom(Some("Trailmark".to_owned())),
        timestamp: Some(timestamp(&meta.generated_at)?),
        standards: PdfStandards::new(&[PdfStandard::A_2b])
            .map_err(|e| PdfError(format!("PDF/A-2b: {}", e.message())))?,
        ..PdfOptions::default()
    };
    let document = compile(view, meta)?;
    let pdf = typst_pdf::pdf(&document, &options).map_err(|e| PdfError(diagnostics(&e)));
    // typst memoizes across compilations; a long-running server must not keep every dossier's
    // layout alive.
    typst::comemo::evict(0);
    pdf
}

/// The document's creation date: `generated_at` to the second, in UTC.
fn timestamp(generated_at: &str) -> Result<Timestamp, PdfError> {
    let bad = || {
        PdfError(format!(
            "generated_at {generated_at:?} is not an RFC 3339 instant"
        ))
    };
    let t: jiff::Timestamp = generated_at.parse().map_err(|_| bad())?;
    let dt = jiff::tz::Offset::UTC.to_datetime(t);
    let small = |n: i8| u8::try_from(n).map_err(|_| bad());
    Datetime::from_ymd_hms(
        i32::from(dt.year()),
        small(dt.month())?,
        small(dt.day())?,
        small(dt.hour())?,
        small(dt.minute())?,
        small(dt.second())?,
    )
    .map(Timestamp::new_utc)
    .ok_or_else(bad)
}

/// Lays the document out (pages of positioned text and shapes), before PDF conversion.
pub(crate) fn compile(view: &View, meta: &ExportMeta) -> Result<PagedDocument, PdfError> {
    let mut data = serde_json::json!({"view": view, "meta": meta});
    printable(&mut data);
    let data = serde_json::to_vec(&data).map_err(|e| PdfError(format!("the view as JSON: {e}")))?;
    let world = DossierWorld::new(data)?;
    let warned = typst::compile::<PagedDocument>(&world);
    warned.output.map_err(|errors| {
        typst::comemo::evict(0);
        PdfError(diagnostics(&errors))
    })
}

/// Every string in `data` made printable with the embedded fonts: a character none of them has a
/// glyph for (CJK, emoji, control characters...) is written as its code point, `[U+1F642]`.
/// PDF/A forbids the "missing glyph" glyph, and a reader must be able to tell what was there.
fn printable(data: &mut serde_json::Value) {
    use serde_json::Value;
    match data {
        Value::String(s) if s.chars().any(|c| !covered(c)) => {
            let mut out = String::with_capacity(s.len() + 16);
            for c in s.chars() {
                if covered(c) {
                    out.push(c);
                } else {
                    out.push_str(&format!("[U+{:04X}]", u32::from(c)));
                }
            }
            *s = out;
        }
        Value::Array(items) => items.iter_mut().for_each(printable),
        Value::Object(map) => map.values_mut().for_each(printable),
        _ => {}
    }
}

/// Whether an embedded font can show `c` (line breaks and tabs are layout, not glyphs).
fn covered(c: char) -> bool {
    matches!(c, '\n' | '\t')
        || (!c.is_control()
            && FONT_SET
                .1
                .iter()
                .any(|f| f.info().coverage.contains(u32::from(c))))
}

fn diagnostics(list: &[SourceDiagnostic]) -> String {
    let messages: Vec<&str> = list.iter().map(|d| d.message.as_str()).collect();
    if messages.is_empty() {
        "typst reported an error without a message".to_owned()
    } else {
        messages.join("; ")
    }
}

static LIBRARY: LazyLock<LazyHash<Library>> = LazyLock::new(|| LazyHash::new(Library::default()));

/// The embedded fonts, parsed once per process.
static FONT_SET: LazyLock<(LazyHash<FontBook>, Vec<Font>)> = LazyLock::new(|| {
    let fonts: Vec<Font> = FONTS
        .iter()
        .flat_map(|bytes| Font::iter(Bytes::new(*bytes)))
        .collect();
    (LazyHash::new(FontBook::from_fonts(&fonts)), fonts)
});

/// The compiler's whole world: the template as the main file, the data as the only other file,
/// the embedded fonts, and no clock.
struct DossierWorld {
    main: Source,
    data_id: FileId,
    data: Bytes,
}

fn file_id(path: &str) -> Result<FileId, PdfError> {
    let vpath = VirtualPath::new(path).map_err(|e| PdfError(format!("{path}: {e:?}")))?;
    Ok(FileId::new(RootedPath::new(VirtualRoot::Project, vpath)))
}

impl DossierWorld {
    fn new(data: Vec<u8>) -> Result<Self, PdfError> {
        Ok(Self {
            main: Source::new(file_id("/dossier.typ")?, TEMPLATE.to_owned()),
            data_id: file_id("/dossier.json")?,
            data: Bytes::new(data),
        })
    }
}

impl World for DossierWorld {
    fn library(&self) -> &LazyHash<Library> {
        &LIBRARY
    }

    fn book(&self) -> &LazyHash<FontBook> {
        &FONT_SET.0
    }

    fn main(&self) -> FileId {
        self.main.id()
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.main.id() {
            Ok(self.main.clone())
        } else {
            Err(FileError::AccessDenied)
        }
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        if id == self.data_id {
            Ok(self.data.clone())
        } else if id == self.main.id() {
            Ok(Bytes::from_string(self.main.clone()))
        } else {
            Err(FileError::AccessDenied)
        }
    }

    fn font(&self, index: usize) -> Option<Font> {
        FONT_SET.1.get(index).cloned()
    }

    /// No clock: the document's only date is the dossier's own.
    fn today(&self, _offset: Option<Duration>) -> Option<Datetime> {
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;
    use typst::layout::{Frame, FrameItem};

    use super::*;

    /// Strings that would be markup, code, maths, labels or escapes if the template pasted
    /// them into typst source.
    const HOSTILE: &[&str] = &[
        r#"#panic("pwned") *bold* _emph_ $x^2$ ] [ \ \\n"#,
        r#"<label> @ref = heading // comment /* x */ `raw` ~ -- --- ... 'q' "q""#,
        r#"#{ let x = 1 } #set text(red) #show: none \u{41} #(1 + 1)"#,
    ];

    /// A release whose every user-supplied string is hostile.
    fn hostile() -> (View, ExportMeta) {
        let [a, b, c] = [HOSTILE[0], HOSTILE[1], HOSTILE[2]];
        let view: View = serde_json::from_value(json!({
            "release": {"id": format!("acme/pay/{a}"), "name": b, "version": c, "project": a,
                "environments": [a, "production"], "requested_by": b,
                "created_at": "2026-03-02T09:00:00Z", "record": 3},
            "as_of": "2026-03-05T16:30:00Z",
            "environment": c,
            "evidence_digest": "sha256:9f2c41d0a8e7b3c5d6e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7",
            "questions": [{"id": "change_authorization", "title": a, "answer": "partial",
                "summary": [b, c], "evidence": [5, 6]}],
            "story": {"requested": [a], "owner": b, "changed": [c], "validated": [a],
                "approvals": [{"record": 14, "person": b, "decision": "approved",
                    "recorded_at": "2026-03-04T11:00:00Z", "comment": c, "current": true}],
                "approval_at_deploy": {"required": 1, "counted": [a], "rejected_by": [],
                    "not_counted": [b], "auto_approved": false, "satisfied": true},
                "exceptions": [c], "certified": [], "after_deploy": [a]},
            "matrix": [{"ticket": a, "ticket_approved_at": b,
                "commits": [{"sha": "a1b2c3d4e5f6", "prs": [c], "reviews": [a], "builds": [b],
                    "tests": {"reports": 1, "tests": 3, "passed": 2, "failures": 1, "errors": 0,
                        "skipped": 0, "flaky": 0, "blocked": 0, "pass_rate_permille": 667,
                        "repeated_failures": [c], "failures_with_follow_up": []},
                    "findings": [a]}],
                "approvals": [b], "deployments": [c]}],
            "controls": [{"framework": "SOC 2", "id": "CC8.1", "title": a, "status": "gap",
                "evidence": [], "notes": [b]}],
            "gaps": [c, a],
            "gate_decisions": [{"record": 20, "environment": b, "decision": c,
                "recorded_at": "2026-03-05T15:00:00Z", "input_digest": "sha256:00",
                "policy_digest": "sha256:11"}],
            "deployments": [{"record": 30, "environment": a, "recorded_at": "2026-03-05T16:00:00Z",
                "commit": b, "status": c, "gated": false}],
        }))
        .unwrap();
        let meta = ExportMeta {
            origin: a.to_owned(),
            checkpoint_size: 31,
            checkpoint_root: "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=".into(),
            records: 12,
            generated_at: "2026-03-05T16:30:00.123456Z".into(),
            certification_record: None,
            identity_map: None,
        };
        (view, meta)
    }

    /// Every run of text on every page, in layout order.
    fn text_of(doc: &PagedDocument) -> String {
        fn walk(frame: &Frame, out: &mut String) {
            for (_, item) in frame.items() {
                match item {
                    FrameItem::Group(g) => walk(&g.frame, out),
                    FrameItem::Text(t) => out.push_str(&t.text),
                    _ => {}
                }
            }
        }
        let mut out = String::new();
        for page in doc.pages() {
            walk(&page.frame, &mut out);
        }
        out
    }

    fn squeeze(s: &str) -> String {
        s.chars().filter(|c| !c.is_whitespace()).collect()
    }

    #[test]
    fn fonts_are_embedded_and_found_by_family() {
        let families: Vec<&str> = FONT_SET.0.families().map(|(name, _)| name).collect();
        assert!(families.contains(&"Libertinus Serif"), "{families:?}");
        assert!(families.contains(&"DejaVu Sans Mono"), "{families:?}");
        assert_eq!(FONT_SET.1.len(), FONTS.len());
    }

    /// Text no embedded font can show still renders (PDF/A allows no missing-glyph boxes): each
    /// such character appears as its code point.
    #[test]
    fn characters_without_a_glyph_are_written_as_code_points() {
        let (mut view, meta) = hostile();
        view.gaps = vec![
            "commit by 山田 🙂 ok\u{7}".into(),
            "a\ttab and a\nnew line".into(),
        ];
        let text = squeeze(&text_of(&compile(&view, &meta).unwrap()));
        assert!(
            text.contains("commitby[U+5C71][U+7530][U+1F642]ok[U+0007]"),
            "{text}"
        );
        assert!(render(&view, &meta).unwrap().starts_with(b"%PDF-"));
        // Accented Latin, Greek and the like are in the fonts and stay as they are.
        assert!(covered('é') && covered('ß') && covered('Ω') && covered('—'));
    }

    #[test]
    fn a_bad_generated_at_is_an_error_not_a_panic() {
        assert!(timestamp("2026-03-05T16:30:00Z").is_ok());
        let e = timestamp("yesterday").unwrap_err();
        assert!(e.to_string().contains("yesterday"), "{e}");
        let (view, mut meta) = hostile();
        meta.generated_at = "not a time".into();
        assert!(render(&view, &meta).is_err());
    }

    /// User text is shown as text: every hostile string appears, character for character, in
    /// what is laid out (line breaks aside), so none of it was read as markup or code.
    #[test]
    fn user_text_is_set_verbatim_never_as_typst_markup() {
        let (view, meta) = hostile();
        let text = squeeze(&text_of(&compile(&view, &meta).unwrap()));
        for s in HOSTILE {
            assert!(
                text.contains(&squeeze(s)),
                "{s:?} is not shown verbatim in {text}"
            );
        }
        // The template's own words are there too (the data did not end the document early).
        for s in [
            "Thefivequestions",
            "Traceabilitymatrix",
            "Controlmapping",
            "Howtoverify",
        ] {
            assert!(text.contains(s), "{s} missing");
        }
        // And it renders to a PDF.
        assert!(render(&view, &meta).unwrap().starts_with(b"%PDF-"));
    }
}
