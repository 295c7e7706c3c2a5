//! Matrix's text: plain for `body`, HTML for `formatted_body` and the bridges that read it.

use belfry_core::Notification;
use belfry_core::render::{Limit, Markup, TextStyle, render_text};

/// `n` as plain text of at most `max` bytes: the headline, the summary, the details and, for a
/// problem, the output's last lines.
pub(super) fn plain_text(n: &Notification, max: usize) -> String {
    render_text(
        n,
        &TextStyle {
            markup: Markup::Plain,
            title: true,
            details: true,
            tail_lines: 20,
            limit: Limit::bytes(max),
        },
    )
}

/// `n` as the HTML Matrix clients show (`org.matrix.custom.html`), at most `max` bytes: the
/// same text, escaped, the headline in bold, the output in `<pre>`, line breaks as `<br>`
/// outside it.
pub(super) fn html_text(n: &Notification, max: usize) -> String {
    // Room for the `<br>`s: each line break may grow by four bytes.
    let text = render_text(
        n,
        &TextStyle {
            markup: Markup::Html,
            title: true,
            details: true,
            tail_lines: 20,
            limit: Limit::bytes(max * 4 / 5),
        },
    );
    let (before, code) = match text.find("<pre>") {
        Some(i) => text.split_at(i),
        None => (text.as_str(), ""),
    };
    let mut out = before.replace('\n', "<br>");
    out.push_str(code);
    out
}
