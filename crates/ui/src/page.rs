//! The HTML page: one template with the script and styles built into the
//! binary (no Node.js to build or run, no network to open it). The report
//! inlines its [`ReportData`]; the live page fetches it from the receiver's
//! JSON API.

use crate::data::ReportData;

const TEMPLATE: &str = include_str!("../assets/page.html");
const SCRIPT: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/app.css");

/// Content-Security-Policy of the report: nothing is loaded from anywhere,
/// only the inline script and styles run.
const REPORT_CSP: &str =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'none'";
/// Of the live page: the same, plus the receiver's own API.
const LIVE_CSP: &str =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'";

/// Escapes text for HTML content and attribute values.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON made safe inside a `<script>` element: `<` only appears escaped,
/// so no `</script>` or `<!--` in a name can end or bend the element.
fn script_json(json: &str) -> String {
    json.replace('<', "\\u003c")
}

struct Fill<'a> {
    title: &'a str,
    mode: &'a str,
    view: &'a str,
    trace: &'a str,
    csp: &'a str,
    data: &'a str,
}

fn fill(f: &Fill<'_>) -> String {
    // The script and data go in last: nothing in them is a placeholder.
    let head = TEMPLATE
        .replace("{{GENERATOR}}", &format!("tracelens {}", env!("CARGO_PKG_VERSION")))
        .replace("{{CSP}}", f.csp)
        .replace("{{TITLE}}", &escape_html(f.title))
        .replace("{{MODE}}", f.mode)
        .replace("{{VIEW}}", &escape_html(f.view))
        .replace("{{TRACE}}", &escape_html(f.trace))
        .replace("{{STYLE}}", STYLE);
    let (before_data, after_data) = head.split_once("{{DATA}}").expect("the template has a data slot");
    let (before_script, after_script) = after_data.split_once("{{SCRIPT}}").expect("the template has a script slot");
    let mut out = String::with_capacity(head.len() + f.data.len() + SCRIPT.len());
    out.push_str(before_data);
    out.push_str(f.data);
    out.push_str(before_script);
    out.push_str(SCRIPT);
    out.push_str(after_script);
    out
}

/// The self-contained report of `data`.
pub fn report(data: &ReportData) -> String {
    let json = serde_json::to_string(data).expect("report data serializes");
    fill(&Fill { title: &data.title, mode: "report", view: "", trace: "", csp: REPORT_CSP, data: &script_json(&json) })
}

/// Which view the live page opens with.
#[derive(Clone, Debug, Default)]
pub enum LiveView {
    /// The overview (graph first).
    #[default]
    Overview,
    /// One trace.
    Trace(String),
    /// The trace search.
    Search,
}

/// The live page, served at `/`, `/search` and `/trace/{id}` by the
/// receiver; it reads `/api/v1/report`, `/api/v1/traces` and
/// `/api/v1/traces/{id}` on the same address.
pub fn live(title: &str, view: &LiveView) -> String {
    let (view, trace) = match view {
        LiveView::Overview => ("", ""),
        LiveView::Trace(id) => ("trace", id.as_str()),
        LiveView::Search => ("search", ""),
    };
    fill(&Fill { title, mode: "live", view, trace, csp: LIVE_CSP, data: "null" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_break_out_of_the_page() {
        let json = r#"{"name":"</script><script>alert(1)</script>"}"#;
        let safe = script_json(json);
        assert!(!safe.contains("</script"));
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["name"], "</script><script>alert(1)</script>");
        assert_eq!(escape_html("a<b>\"c\"&'"), "a&lt;b&gt;&quot;c&quot;&amp;&#39;");
    }

    #[test]
    fn live_pages_name_their_view() {
        let page = live("t <x>", &LiveView::Trace("abc\"".into()));
        assert!(page.contains(r#"data-mode="live""#));
        assert!(page.contains(r#"data-trace="abc&quot;""#));
        assert!(page.contains("<title>t &lt;x&gt;</title>"));
        assert!(page.contains("connect-src 'self'"));
    }
}
