//! The text part derived from the HTML when a template has none (DESIGN §3): tags stripped, links
//! kept as "text (url)", paragraphs and line breaks as new lines, lists as "- " items, entities
//! decoded. Hand-written (a small scanner, no HTML5 tree builder) because email HTML is our own
//! templates' output and the rules above are all a text part needs.

/// Elements whose content is never text.
const SKIP: &[&str] = &["head", "style", "script", "title", "template", "noscript"];
/// Elements that end a paragraph: a blank line around them.
const PARAGRAPH: &[&str] = &[
    "p",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "ul",
    "ol",
    "blockquote",
    "pre",
    "hr",
];
/// Elements that start a new line.
const LINE: &[&str] = &[
    "div", "tr", "section", "article", "header", "footer", "center", "dl", "dt", "dd", "tbody",
    "thead", "tfoot", "address", "nav", "main", "form",
];

struct Out {
    text: String,
    /// Whitespace seen since the last character written, emitted as one space when text follows.
    pending_space: bool,
    /// Newlines requested since the last character written (the largest request wins).
    pending_newlines: usize,
}

impl Out {
    fn push_text(&mut self, s: &str) {
        for c in s.chars() {
            if c.is_whitespace() && c != '\u{a0}' {
                self.pending_space = true;
                continue;
            }
            if !self.text.is_empty() {
                if self.pending_newlines > 0 {
                    for _ in 0..self.pending_newlines {
                        self.text.push('\n');
                    }
                } else if self.pending_space && !self.text.ends_with('\n') {
                    self.text.push(' ');
                }
            }
            self.pending_newlines = 0;
            self.pending_space = false;
            self.text.push(if c == '\u{a0}' { ' ' } else { c });
        }
    }

    fn newline(&mut self, n: usize) {
        self.pending_newlines = self.pending_newlines.max(n);
        self.pending_space = false;
    }
}

pub fn html_to_text(html: &str) -> String {
    let mut out = Out {
        text: String::with_capacity(html.len() / 2),
        pending_space: false,
        pending_newlines: 0,
    };
    // (href, position in `out.text` where the link text starts)
    let mut links: Vec<(String, usize)> = Vec::new();
    let mut skip_until: Option<String> = None;
    let mut rest = html;

    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            if skip_until.is_none() {
                out.push_text(&decode_entities(rest));
            }
            break;
        };
        if skip_until.is_none() && lt > 0 {
            out.push_text(&decode_entities(&rest[..lt]));
        }
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map(|i| &after[i + 3..]).unwrap_or("");
            continue;
        }
        let Some(gt) = find_tag_end(rest) else {
            // A lone "<" that opens no tag is text.
            if skip_until.is_none() {
                out.push_text("<");
            }
            rest = &rest[1..];
            continue;
        };
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        let closing = tag.starts_with('/');
        let body = tag.trim_start_matches('/');
        let name: String = body
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if name.is_empty() {
            continue; // <!DOCTYPE …>, <?xml …?>
        }
        if let Some(skipping) = &skip_until {
            if closing && *skipping == name {
                skip_until = None;
            }
            continue;
        }
        if !closing && SKIP.contains(&name.as_str()) && !body.trim_end().ends_with('/') {
            skip_until = Some(name);
            continue;
        }
        match name.as_str() {
            "br" => {
                out.pending_newlines += 1;
                out.pending_space = false;
                if out.text.is_empty() {
                    out.pending_newlines = 0;
                }
            }
            "li" if !closing => {
                out.newline(1);
                out.push_text("-");
                out.pending_space = true;
            }
            "td" | "th" if !closing => out.pending_space = true,
            "img" if !closing => {
                if let Some(alt) = attribute(body, "alt").filter(|a| !a.trim().is_empty()) {
                    out.push_text(&alt);
                }
            }
            "a" if !closing => {
                let href = attribute(body, "href").unwrap_or_default();
                // Flush pending whitespace so the link text starts at a known position.
                links.push((
                    href,
                    out.text.len() + usize::from(out.pending_space || out.pending_newlines > 0),
                ));
            }
            "a" => {
                if let Some((href, start)) = links.pop() {
                    let href = href.trim();
                    let shown = out
                        .text
                        .get(start.min(out.text.len())..)
                        .unwrap_or("")
                        .trim()
                        .to_string();
                    let useful = !href.is_empty()
                        && !href.starts_with('#')
                        && !href.starts_with("javascript:");
                    if useful && shown != href {
                        if shown.is_empty() {
                            out.push_text(href);
                        } else {
                            // The leading space becomes one separating space.
                            out.push_text(&format!(" ({href})"));
                        }
                    }
                }
            }
            n if PARAGRAPH.contains(&n) => out.newline(2),
            n if LINE.contains(&n) || n == "li" => out.newline(1),
            _ => {}
        }
    }
    let mut text = String::with_capacity(out.text.len());
    for line in out.text.lines() {
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text.trim().to_string()
}

/// The index of the `>` that closes the tag starting at `s[0] == '<'`, skipping quoted attribute
/// values; None when `s` does not start a tag.
fn find_tag_end(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let next = *bytes.get(1)?;
    if !(next.is_ascii_alphabetic() || next == b'/' || next == b'!' || next == b'?') {
        return None;
    }
    let mut quote: Option<u8> = None;
    for (i, &b) in bytes.iter().enumerate().skip(1) {
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b'>' => return Some(i),
            None => {}
        }
    }
    None
}

/// The decoded value of attribute `name` in a tag's inside (`a href="…" class=x`).
fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(name) {
        let start = from + i;
        from = start + name.len();
        let before_ok = start > 0 && lower.as_bytes()[start - 1].is_ascii_whitespace();
        let after = lower[from..].trim_start();
        if !before_ok || !after.starts_with('=') {
            continue;
        }
        let value_start = tag.len() - after.len() + 1;
        let value = tag[value_start..].trim_start();
        let raw = match value.as_bytes().first() {
            Some(&q @ (b'"' | b'\'')) => value[1..].split(q as char).next().unwrap_or(""),
            _ => value
                .split(|c: char| c.is_whitespace() || c == '>')
                .next()
                .unwrap_or(""),
        };
        return Some(decode_entities(raw));
    }
    None
}

pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest[1..].find(';').map(|e| e + 1).filter(|e| *e <= 12);
        let decoded = end.and_then(|e| {
            let ent = &rest[1..e];
            let c = match ent {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                "nbsp" => '\u{a0}',
                "copy" => '©',
                "reg" => '®',
                "trade" => '™',
                "hellip" => '…',
                "mdash" => '—',
                "ndash" => '–',
                "lsquo" => '‘',
                "rsquo" => '’',
                "ldquo" => '“',
                "rdquo" => '”',
                "euro" => '€',
                _ => {
                    let num = ent.strip_prefix('#')?;
                    let code = match num.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => num.parse().ok()?,
                    };
                    char::from_u32(code)?
                }
            };
            Some((c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_breaks_and_links() {
        let html = "<html><head><title>x</title><style>p{color:red}</style></head><body>\
            <h1>Welcome,  Jane!</h1><p>You are on <b>pro</b>.<br>Enjoy &amp; have fun.</p>\
            <p><a href=\"https://acme.test/start?a=1&amp;b=2\">Get started</a></p>\
            <a href=\"https://x.test/u/abc\">https://x.test/u/abc</a></body></html>";
        assert_eq!(
            html_to_text(html),
            "Welcome, Jane!\n\nYou are on pro.\nEnjoy & have fun.\n\nGet started (https://acme.test/start?a=1&b=2)\n\nhttps://x.test/u/abc"
        );
    }

    #[test]
    fn lists_entities_comments_and_stray_brackets() {
        let html =
            "<ul><li>one</li><li>two &lt;3</li></ul><!-- hidden --><p>a < b &#8212; &#x41;</p>";
        assert_eq!(html_to_text(html), "- one\n- two <3\n\na < b — A");
    }

    #[test]
    fn escaped_markup_stays_text() {
        assert_eq!(
            html_to_text("<p>Hi &lt;script&gt;alert(1)&lt;/script&gt;</p>"),
            "Hi <script>alert(1)</script>"
        );
    }

    #[test]
    fn empty_link_text_shows_the_url() {
        assert_eq!(
            html_to_text("<a href=\"https://a.test\"></a>"),
            "https://a.test"
        );
    }
}
