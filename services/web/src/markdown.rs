//! Articles' Markdown as HTML that is safe to put in a page: raw HTML in the source is shown
//! as text, links keep only web, mail and same-site targets, and images become their
//! description (the pages load images from this origin only).

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd, html};

/// Whether a link target is harmless: http(s), mailto, or a path or anchor on this site.
fn safe_target(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("https://")
        || lower.starts_with("http://")
        || lower.starts_with("mailto:")
        || (lower.starts_with('/') && !lower.starts_with("//"))
        || lower.starts_with('#')
}

pub fn to_html(markdown: &str) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    let events = Parser::new_ext(markdown, options).filter_map(|event| match event {
        Event::Html(text) | Event::InlineHtml(text) => Some(Event::Text(text)),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => Some(Event::Start(Tag::Link {
            link_type,
            dest_url: if safe_target(&dest_url) {
                dest_url
            } else {
                CowStr::Borrowed("#")
            },
            title,
            id,
        })),
        // An image's description (the events between its start and end) stays as text.
        Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => None,
        other => Some(other),
    });
    let mut out = String::new();
    html::push_html(&mut out, events);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_renders_without_raw_html_or_script_links() {
        let html = to_html("# Title\n\nSome *text* and [a link](https://example.com).");
        assert!(html.contains("<h1>Title</h1>") && html.contains("<em>text</em>"));
        assert!(html.contains("href=\"https://example.com\""));
        let hostile = to_html(
            "<script>alert(1)</script>\n\n[x](javascript:alert(1)) <img src=x onerror=alert(1)> ![pic](https://evil.example/p.png)",
        );
        assert!(!hostile.contains("<script"), "{hostile}");
        assert!(!hostile.contains("<img"), "{hostile}");
        assert!(!hostile.contains("javascript:"), "{hostile}");
        assert!(hostile.contains("&lt;script&gt;"));
        assert!(
            hostile.contains("pic"),
            "an image keeps its description: {hostile}"
        );
    }
}
