//! Liquid templates (DESIGN §3, §6): parse at save time with line and column, render with
//! HTML-escaped merge values, strict about missing variables unless a `default` filter is there,
//! and with a bounded cost.
//!
//! How each rule is met:
//!
//! * **Escaping.** Before the HTML part is parsed, every output `{{ … }}` gets a last filter,
//!   `meisa_html_escape` (escape `& < > " '`, leaving existing entities alone, like
//!   `escape_once`). Escaping at output rather than escaping the values keeps filters such as
//!   `size`, `truncate` and comparisons working on the real values. The `cycle` tag, which writes
//!   values without an output, is not offered; `include`/`render` are not offered either, so a
//!   template cannot reach files.
//! * **Missing variables.** liquid-rust is strict: an unknown variable is an error, including
//!   inside `{{ x | default: "y" }}`. So the rewrite also points every global variable of an
//!   output that has a `default` filter, and of `if`/`elsif`/`unless`/`case`/`when` conditions,
//!   at a lenient view of the same data (`__m.x`) that answers nil for what is missing. A missing
//!   variable anywhere else fails the render with its name: the send is recorded as `skipped`.
//! * **Bounded cost.** Sources are limited in size; loop ranges must have whole-number bounds
//!   at most [`MAX_RANGE`] apart (checked at save); a render runs under a budget of
//!   [`MAX_STEPS`] steps (variable lookups, rendered elements, loop iterations), its output is
//!   capped ([`MAX_BODY_OUTPUT`], [`MAX_SUBJECT_OUTPUT`]), and a value built with
//!   `assign`/`capture` may not exceed [`MAX_VALUE`]. The caller runs renders on the blocking
//!   pool, so even a budget-sized render never stalls the async workers.

use std::{
    cell::Cell,
    collections::HashSet,
    fmt,
    io::Write,
    sync::{Arc, LazyLock},
};

use liquid_core::{
    Language, ObjectView, Renderable, Runtime, ValueView,
    model::{
        DisplayCow, KString, KStringCow, ObjectRender, ObjectSource, ScalarCow, State, Value,
        ValueCow,
    },
    runtime::{Interrupt, InterruptRegister, PartialStore, Registers, RuntimeBuilder},
};
use meisa_model::BuiltIn;

use super::text::html_to_text;

pub const MAX_SUBJECT_SOURCE: usize = 2 * 1024;
pub const MAX_HTML_SOURCE: usize = 256 * 1024;
pub const MAX_TEXT_SOURCE: usize = 128 * 1024;
pub const MAX_SUBJECT_OUTPUT: usize = 4 * 1024;
pub const MAX_BODY_OUTPUT: usize = 1024 * 1024;
pub const MAX_VALUE: usize = 256 * 1024;
pub const MAX_STEPS: u64 = 200_000;
pub const MAX_RANGE: i64 = 1_000;

/// The lenient view's name in rewritten sources.
const LENIENT: &str = "__m";
const ESCAPE_FILTER: &str = "meisa_html_escape";

/// Which part of a template: also the `field` of errors ("subject", "html", "text").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Subject,
    Html,
    Text,
}

impl Part {
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Html => "html",
            Part::Text => "text",
        }
    }
}

/// A template that cannot be saved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub part: Part,
    /// Starts with "line L, column C: " when the position is known.
    pub message: String,
    pub line: u32,
    pub column: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("{part}: missing variable {name}", part = part.as_str())]
    MissingVariable { part: Part, name: String },
    #[error("{part}: {message}", part = part.as_str())]
    Failed { part: Part, message: String },
}

/// The three parts of a template, parsed.
#[derive(Debug)]
pub struct Compiled {
    subject: liquid_core::Template,
    html: liquid_core::Template,
    text: Option<liquid_core::Template>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub html: String,
    pub text: String,
}

static LANGUAGE: LazyLock<Language> = LazyLock::new(language);

fn language() -> Language {
    use liquid_lib::stdlib;
    let mut l = Language::empty();
    macro_rules! tags { ($($t:expr),*) => { $( { let t: Box<dyn liquid_core::ParseTag> = Box::new($t); l.tags.register(t.reflection().tag().to_owned(), t); } )* } }
    macro_rules! blocks { ($($b:expr),*) => { $( { let b: Box<dyn liquid_core::ParseBlock> = Box::new($b); l.blocks.register(b.reflection().start_tag().to_owned(), b); } )* } }
    macro_rules! filters { ($($f:expr),*) => { $( { let f: Box<dyn liquid_core::ParseFilter> = Box::new($f); l.filters.register(f.reflection().name().to_owned(), f); } )* } }
    // No cycle (writes values around the escaping), no include/render (no file access).
    tags!(
        stdlib::AssignTag,
        stdlib::BreakTag,
        stdlib::ContinueTag,
        stdlib::IncrementTag,
        stdlib::DecrementTag
    );
    blocks!(
        stdlib::RawBlock,
        stdlib::IfBlock,
        stdlib::UnlessBlock,
        stdlib::IfChangedBlock,
        stdlib::ForBlock,
        stdlib::TableRowBlock,
        stdlib::CommentBlock,
        stdlib::CaptureBlock,
        stdlib::CaseBlock
    );
    filters!(
        stdlib::Abs,
        stdlib::Append,
        stdlib::AtLeast,
        stdlib::AtMost,
        stdlib::Capitalize,
        stdlib::Ceil,
        stdlib::Compact,
        stdlib::Concat,
        stdlib::Date,
        stdlib::Default,
        stdlib::DividedBy,
        stdlib::Downcase,
        stdlib::Escape,
        stdlib::EscapeOnce,
        stdlib::First,
        stdlib::Floor,
        stdlib::Join,
        stdlib::Last,
        stdlib::Lstrip,
        stdlib::Map,
        stdlib::Minus,
        stdlib::Modulo,
        stdlib::NewlineToBr,
        stdlib::Plus,
        stdlib::Prepend,
        stdlib::Remove,
        stdlib::RemoveFirst,
        stdlib::Replace,
        stdlib::ReplaceFirst,
        stdlib::Reverse,
        stdlib::Round,
        stdlib::Rstrip,
        stdlib::Size,
        stdlib::Slice,
        stdlib::Sort,
        stdlib::SortNatural,
        stdlib::Split,
        stdlib::Strip,
        stdlib::StripHtml,
        stdlib::StripNewlines,
        stdlib::Times,
        stdlib::Truncate,
        stdlib::TruncateWords,
        stdlib::Uniq,
        stdlib::Upcase,
        stdlib::UrlDecode,
        stdlib::UrlEncode,
        stdlib::Where,
        HtmlEscape
    );
    l
}

// ------------------------------------------------------------------------------- the escape filter

/// Escapes `& < > " '` for HTML text and attribute values; an `&` that already starts an entity
/// is kept, so an author's own `| escape` or a captured, already escaped block is not escaped
/// twice.
#[derive(Clone, Debug, Default)]
struct HtmlEscape;

impl liquid_core::FilterReflection for HtmlEscape {
    fn name(&self) -> &str {
        ESCAPE_FILTER
    }
    fn description(&self) -> &str {
        "Escapes a merge value for HTML (added to every output of the HTML part)."
    }
    fn positional_parameters(&self) -> &'static [liquid_core::parser::ParameterReflection] {
        &[]
    }
    fn keyword_parameters(&self) -> &'static [liquid_core::parser::ParameterReflection] {
        &[]
    }
}

impl liquid_core::ParseFilter for HtmlEscape {
    fn parse(
        &self,
        mut arguments: liquid_core::parser::FilterArguments,
    ) -> liquid_core::Result<Box<dyn liquid_core::Filter>> {
        if arguments.positional.next().is_some() || arguments.keyword.next().is_some() {
            return Err(liquid_core::Error::with_msg(
                "meisa_html_escape takes no arguments",
            ));
        }
        Ok(Box::new(HtmlEscapeFilter))
    }
    fn reflection(&self) -> &dyn liquid_core::FilterReflection {
        self
    }
}

#[derive(Debug)]
struct HtmlEscapeFilter;

impl fmt::Display for HtmlEscapeFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(ESCAPE_FILTER)
    }
}

impl liquid_core::Filter for HtmlEscapeFilter {
    fn evaluate(
        &self,
        input: &dyn ValueView,
        _runtime: &dyn Runtime,
    ) -> liquid_core::Result<Value> {
        if input.is_nil() {
            return Ok(Value::scalar(""));
        }
        Ok(Value::scalar(escape_html(&input.to_kstr())))
    }
}

pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for (i, c) in s.char_indices() {
        match c {
            '&' if starts_entity(&s[i..]) => out.push('&'),
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

/// `&name;`, `&#123;` or `&#x1F;` at the start of `s`.
fn starts_entity(s: &str) -> bool {
    let Some(end) = s[1..].find(';').map(|e| e + 1) else {
        return false;
    };
    let body = &s[1..end];
    if body.is_empty() || body.len() > 10 {
        return false;
    }
    match body.strip_prefix('#') {
        Some(num) => match num.strip_prefix(['x', 'X']) {
            Some(hex) => !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            None => !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()),
        },
        None => body.bytes().all(|b| b.is_ascii_alphanumeric()),
    }
}

// ------------------------------------------------------------------------------- compiling

/// Sources as stored.
#[derive(Clone, Copy, Debug)]
pub struct Sources<'a> {
    pub subject: &'a str,
    pub html: &'a str,
    pub text: Option<&'a str>,
}

impl Compiled {
    pub fn compile(src: Sources<'_>) -> Result<Compiled, ParseError> {
        Ok(Compiled {
            subject: compile_part(Part::Subject, src.subject, MAX_SUBJECT_SOURCE)?,
            html: compile_part(Part::Html, src.html, MAX_HTML_SOURCE)?,
            text: src
                .text
                .map(|t| compile_part(Part::Text, t, MAX_TEXT_SOURCE))
                .transpose()?,
        })
    }

    pub fn render(&self, vars: &Variables) -> Result<Rendered, RenderError> {
        let subject = render_part(&self.subject, Part::Subject, vars, MAX_SUBJECT_OUTPUT)?;
        // A subject is one line: new lines a value brought in become spaces.
        let subject = subject
            .split(['\r', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let html = render_part(&self.html, Part::Html, vars, MAX_BODY_OUTPUT)?;
        let text = match &self.text {
            Some(t) => render_part(t, Part::Text, vars, MAX_BODY_OUTPUT)?,
            None => html_to_text(&html),
        };
        Ok(Rendered {
            subject,
            html,
            text,
        })
    }
}

fn compile_part(part: Part, src: &str, max: usize) -> Result<liquid_core::Template, ParseError> {
    let err = |message: String, line: u32, column: u32| ParseError {
        part,
        message: format!("{}: {message}", part.as_str()),
        line,
        column,
    };
    if src.len() > max {
        return Err(err(format!("is longer than {} KiB", max / 1024), 0, 0));
    }
    // The source as written must parse: its errors carry positions the author can find.
    if let Err(e) = liquid_core::parser::parse(src, &LANGUAGE) {
        let (line, column, detail) = describe_parse_error(&e);
        let at = if line > 0 {
            format!("line {line}, column {column}: ")
        } else {
            String::new()
        };
        return Err(err(format!("{at}{detail}"), line, column));
    }
    let rewritten = rewrite(src, part == Part::Html).map_err(|(line, column, m)| {
        err(format!("line {line}, column {column}: {m}"), line, column)
    })?;
    liquid_core::parser::parse(&rewritten, &LANGUAGE)
        .map(liquid_core::Template::new)
        .map_err(|e| {
            err(
                format!(
                    "cannot be prepared for rendering: {}",
                    first_line(&e.to_string())
                ),
                0,
                0,
            )
        })
}

fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && *l != "liquid:")
        .unwrap_or("")
        .trim_start_matches("liquid: ")
        .to_string()
}

/// (line, column, what was expected) from liquid's error, whose text holds pest's
/// " --> L:C" and "= expected …" lines.
fn describe_parse_error(e: &liquid_core::Error) -> (u32, u32, String) {
    let text = e.to_string();
    let mut line = 0;
    let mut column = 0;
    if let Some(pos) = text.find("--> ") {
        let rest = &text[pos + 4..];
        let mut it = rest
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty());
        line = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        column = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    }
    let detail = text
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("= "))
        .map(str::to_string)
        .unwrap_or_else(|| first_line(&text));
    let detail = if detail.is_empty() {
        "does not parse".to_string()
    } else {
        detail
    };
    (line, column, detail)
}

// ------------------------------------------------------------------------------- the rewrite

const KEYWORDS: &[&str] = &[
    "and", "or", "contains", "nil", "null", "empty", "blank", "true", "false", "in", "reversed",
];

fn line_col(src: &str, at: usize) -> (u32, u32) {
    let before = &src[..at.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line as u32, col as u32)
}

/// The end of a `{{`/`{%` element starting at `start` (index just past its closing delimiter),
/// skipping quoted strings.
fn element_end(src: &str, start: usize, close: &str) -> Option<usize> {
    let bytes = src.as_bytes();
    let mut i = start + 2;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if src[i..].starts_with(close) => return Some(i + close.len()),
            None => {}
        }
        i += 1;
    }
    None
}

/// An element's markup without delimiters and whitespace-control dashes, and where it sits.
struct Element<'a> {
    /// e.g. "{%-"
    open: &'a str,
    inner: &'a str,
    close: &'a str,
}

fn split_element(text: &str) -> Element<'_> {
    let open_len = if text.len() > 2 && text.as_bytes()[2] == b'-' {
        3
    } else {
        2
    };
    let close_len = if text.len() >= open_len + 3 && text.as_bytes()[text.len() - 3] == b'-' {
        3
    } else {
        2
    };
    Element {
        open: &text[..open_len],
        inner: &text[open_len..text.len() - close_len],
        close: &text[text.len() - close_len..],
    }
}

fn tag_name(inner: &str) -> &str {
    let t = inner.trim_start();
    let end = t
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(t.len());
    &t[..end]
}

/// Every name a template binds itself (loop variables, assign, capture, counters): those are not
/// contact data and are never pointed at the lenient view.
fn locals(src: &str) -> HashSet<String> {
    let mut names: HashSet<String> = ["forloop", "tablerowloop"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut i = 0;
    while let Some(off) = src[i..].find("{%") {
        let start = i + off;
        let Some(end) = element_end(src, start, "%}") else {
            break;
        };
        let el = split_element(&src[start..end]);
        let mut words = el.inner.split_whitespace();
        let name = words.next().unwrap_or("");
        if matches!(
            name,
            "assign" | "capture" | "for" | "tablerow" | "increment" | "decrement"
        ) && let Some(var) = words.next()
        {
            let var: String = var
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                .collect();
            names.insert(var);
        }
        i = end;
    }
    names
}

/// Points each root variable of `markup` at the lenient view, leaving member names, filter names,
/// keyword arguments, keywords, literals and template-bound names alone.
fn lenient_roots(markup: &str, locals: &HashSet<String>) -> String {
    let bytes = markup.as_bytes();
    let mut out = String::with_capacity(markup.len() + 16);
    let mut i = 0;
    let mut prev_sig: u8 = b' ';
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'"' || b == b'\'' {
            let end = markup[i + 1..]
                .find(b as char)
                .map(|e| i + 1 + e + 1)
                .unwrap_or(bytes.len());
            out.push_str(&markup[i..end]);
            i = end;
            prev_sig = b'"';
            continue;
        }
        if b.is_ascii_alphabetic() || b == b'_' {
            let mut j = i + 1;
            while j < bytes.len()
                && (bytes[j].is_ascii_alphanumeric()
                    || bytes[j] == b'_'
                    || bytes[j] == b'-'
                    || bytes[j] == b'?')
            {
                j += 1;
            }
            let ident = &markup[i..j];
            let next_sig = markup[j..]
                .trim_start()
                .as_bytes()
                .first()
                .copied()
                .unwrap_or(b' ');
            let is_root = prev_sig != b'.'
                && prev_sig != b'|'
                && next_sig != b':'
                && !KEYWORDS.contains(&ident)
                && !locals.contains(ident);
            if is_root {
                out.push_str(LENIENT);
                out.push('.');
            }
            out.push_str(ident);
            i = j;
            prev_sig = b'a';
            continue;
        }
        if b.is_ascii_digit() {
            let mut j = i + 1;
            while j < bytes.len()
                && (bytes[j].is_ascii_digit()
                    || (bytes[j] == b'.' && bytes.get(j + 1).is_some_and(u8::is_ascii_digit)))
            {
                j += 1;
            }
            out.push_str(&markup[i..j]);
            i = j;
            prev_sig = b'0';
            continue;
        }
        // Any other character: copy it (whole, it may be multi-byte).
        let ch_len = markup[i..].chars().next().map(char::len_utf8).unwrap_or(1);
        out.push_str(&markup[i..i + ch_len]);
        if !b.is_ascii_whitespace() {
            prev_sig = b;
        }
        i += ch_len;
    }
    out
}

/// Whether an output's filter chain has a `default` filter.
fn has_default_filter(markup: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut after_pipe = false;
    let mut word = String::new();
    for c in markup.chars() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '|' => {
                after_pipe = true;
                word.clear();
            }
            c if after_pipe && (c.is_ascii_alphanumeric() || c == '_') => word.push(c),
            c if after_pipe && c.is_whitespace() && word.is_empty() => {}
            _ => {
                if after_pipe && word == "default" {
                    return true;
                }
                after_pipe = false;
                word.clear();
            }
        }
    }
    after_pipe && word == "default"
}

/// Checks `(a..b)` ranges of a loop tag: whole-number literals at most MAX_RANGE apart.
fn check_ranges(markup: &str) -> Result<(), String> {
    let mut rest = markup;
    while let Some(open) = rest.find('(') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(')') else { break };
        let inside = &after[..close];
        if let Some((a, b)) = inside.split_once("..") {
            let (a, b) = (a.trim().parse::<i64>(), b.trim().parse::<i64>());
            match (a, b) {
                (Ok(a), Ok(b)) if (b - a).abs() <= MAX_RANGE => {}
                (Ok(_), Ok(_)) => {
                    return Err(format!("a loop range may span at most {MAX_RANGE} numbers"));
                }
                _ => return Err("loop ranges need whole-number bounds, e.g. (1..5)".into()),
            }
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// Rewrites a source for rendering (see the module docs). Errors are (line, column, message).
fn rewrite(src: &str, html: bool) -> Result<String, (u32, u32, String)> {
    let locals = locals(src);
    let mut out = String::with_capacity(src.len() + src.len() / 4);
    let mut i = 0;
    while i < src.len() {
        let next = [src[i..].find("{{"), src[i..].find("{%")]
            .into_iter()
            .flatten()
            .min();
        let Some(off) = next else {
            out.push_str(&src[i..]);
            break;
        };
        let start = i + off;
        out.push_str(&src[i..start]);
        let is_output = src[start..].starts_with("{{");
        let close = if is_output { "}}" } else { "%}" };
        let Some(end) = element_end(src, start, close) else {
            out.push_str(&src[start..]);
            break;
        };
        let el = split_element(&src[start..end]);
        if is_output {
            let inner = if has_default_filter(el.inner) {
                lenient_roots(el.inner, &locals)
            } else {
                el.inner.to_string()
            };
            let inner = inner.trim_end();
            if html {
                out.push_str(&format!(
                    "{}{inner} | {ESCAPE_FILTER} {}",
                    el.open, el.close
                ));
            } else {
                out.push_str(&format!("{}{inner} {}", el.open, el.close));
            }
            i = end;
            continue;
        }
        let name = tag_name(el.inner);
        match name {
            "raw" | "comment" => {
                // Copied as written up to and including the end tag: their bodies are not Liquid.
                let end_name = format!("end{name}");
                let mut j = end;
                let mut block_end = src.len();
                while let Some(o) = src[j..].find("{%") {
                    let s = j + o;
                    let Some(e) = element_end(src, s, "%}") else {
                        break;
                    };
                    if tag_name(split_element(&src[s..e]).inner) == end_name {
                        block_end = e;
                        break;
                    }
                    j = e;
                }
                out.push_str(&src[start..block_end]);
                i = block_end;
                continue;
            }
            "if" | "elsif" | "unless" | "case" | "when" => {
                let args_at = el.inner.find(name).map(|p| p + name.len()).unwrap_or(0);
                out.push_str(el.open);
                out.push_str(&el.inner[..args_at]);
                out.push_str(&lenient_roots(&el.inner[args_at..], &locals));
                out.push_str(el.close);
            }
            "assign" if has_default_filter(el.inner) => {
                let args_at = el.inner.find('=').map(|p| p + 1).unwrap_or(0);
                out.push_str(el.open);
                out.push_str(&el.inner[..args_at]);
                out.push_str(&lenient_roots(&el.inner[args_at..], &locals));
                out.push_str(el.close);
            }
            "for" | "tablerow" => {
                if let Err(m) = check_ranges(el.inner) {
                    let (l, c) = line_col(src, start);
                    return Err((l, c, m));
                }
                out.push_str(&src[start..end]);
            }
            _ => out.push_str(&src[start..end]),
        }
        i = end;
    }
    Ok(out)
}

// ------------------------------------------------------------------------------- variables

/// The data a template renders with: built-in fields, custom fields (bare and under
/// `custom_fields`), `tags` and `unsubscribe_url`. Absent values are absent, not empty: using one
/// without a `default` filter skips the send.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Variables {
    pub(crate) vars: liquid_core::Object,
    pub(crate) custom_fields: liquid_core::Object,
}

/// The variable that holds the unsubscribe link (DESIGN §3).
pub const UNSUBSCRIBE_URL: &str = "unsubscribe_url";
/// The object that holds every custom field (`custom_fields.<name>`).
const CUSTOM_FIELDS: &str = "custom_fields";

/// The mailer's own top-level names: with the built-in fields, the names a custom field's bare
/// name may not take over.
const MAILER_NAMES: [&str; 4] = [UNSUBSCRIBE_URL, CUSTOM_FIELDS, "id", LENIENT];

pub fn is_reserved(name: &str) -> bool {
    BuiltIn::parse(name).is_some() || MAILER_NAMES.contains(&name)
}

impl Variables {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&mut self, name: &str, value: Value) {
        self.vars.insert(KString::from_ref(name), value);
    }

    pub fn set_custom(&mut self, name: &str, value: Value) {
        if !is_reserved(name) {
            self.vars.insert(KString::from_ref(name), value.clone());
        }
        self.custom_fields.insert(KString::from_ref(name), value);
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.vars.get(name)
    }

    pub fn get_custom(&self, name: &str) -> Option<&Value> {
        self.custom_fields.get(name)
    }
}

static NIL: Value = Value::Nil;

/// The globals of one render: the strict view, plus the lenient one under `__m`.
#[derive(Debug)]
struct Globals<'a> {
    strict: Scope<'a>,
    lenient: Scope<'a>,
}

#[derive(Debug)]
struct Scope<'a> {
    vars: &'a liquid_core::Object,
    custom_fields: Fields<'a>,
    lenient: bool,
}

#[derive(Debug)]
struct Fields<'a> {
    map: &'a liquid_core::Object,
    lenient: bool,
}

macro_rules! object_value_view {
    ($t:ty) => {
        impl ValueView for $t {
            fn as_debug(&self) -> &dyn fmt::Debug {
                self
            }
            fn render(&self) -> DisplayCow<'_> {
                DisplayCow::Owned(Box::new(ObjectRender::new(self)))
            }
            fn source(&self) -> DisplayCow<'_> {
                DisplayCow::Owned(Box::new(ObjectSource::new(self)))
            }
            fn type_name(&self) -> &'static str {
                "object"
            }
            fn query_state(&self, state: State) -> bool {
                match state {
                    State::Truthy => true,
                    State::DefaultValue | State::Empty | State::Blank => self.size() == 0,
                }
            }
            fn to_kstr(&self) -> KStringCow<'_> {
                KStringCow::from_string(ObjectRender::new(self).to_string())
            }
            fn to_value(&self) -> Value {
                Value::Object(
                    self.iter()
                        .map(|(k, v)| (k.into_owned(), v.to_value()))
                        .collect(),
                )
            }
            fn as_object(&self) -> Option<&dyn ObjectView> {
                Some(self)
            }
        }
    };
}

object_value_view!(Scope<'_>);
object_value_view!(Fields<'_>);
object_value_view!(Globals<'_>);

impl ObjectView for Scope<'_> {
    fn as_value(&self) -> &dyn ValueView {
        self
    }
    fn size(&self) -> i64 {
        self.vars.len() as i64 + 1
    }
    fn keys<'k>(&'k self) -> Box<dyn Iterator<Item = KStringCow<'k>> + 'k> {
        Box::new(self.iter().map(|(k, _)| k))
    }
    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn ValueView> + 'k> {
        Box::new(self.iter().map(|(_, v)| v))
    }
    fn iter<'k>(&'k self) -> Box<dyn Iterator<Item = (KStringCow<'k>, &'k dyn ValueView)> + 'k> {
        Box::new(
            self.vars
                .iter()
                .map(|(k, v)| (KStringCow::from(k.as_ref()), v as &dyn ValueView))
                .chain(std::iter::once((
                    KStringCow::from_static(CUSTOM_FIELDS),
                    &self.custom_fields as &dyn ValueView,
                ))),
        )
    }
    fn contains_key(&self, index: &str) -> bool {
        self.lenient || index == CUSTOM_FIELDS || self.vars.contains_key(index)
    }
    fn get<'s>(&'s self, index: &str) -> Option<&'s dyn ValueView> {
        if index == CUSTOM_FIELDS {
            return Some(&self.custom_fields);
        }
        match self.vars.get(index) {
            Some(v) => Some(v),
            None if self.lenient => Some(&NIL),
            None => None,
        }
    }
}

impl ObjectView for Fields<'_> {
    fn as_value(&self) -> &dyn ValueView {
        self
    }
    fn size(&self) -> i64 {
        self.map.len() as i64
    }
    fn keys<'k>(&'k self) -> Box<dyn Iterator<Item = KStringCow<'k>> + 'k> {
        Box::new(self.map.keys().map(|k| KStringCow::from(k.as_ref())))
    }
    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn ValueView> + 'k> {
        Box::new(self.map.values().map(|v| v as &dyn ValueView))
    }
    fn iter<'k>(&'k self) -> Box<dyn Iterator<Item = (KStringCow<'k>, &'k dyn ValueView)> + 'k> {
        Box::new(
            self.map
                .iter()
                .map(|(k, v)| (KStringCow::from(k.as_ref()), v as &dyn ValueView)),
        )
    }
    fn contains_key(&self, index: &str) -> bool {
        self.lenient || self.map.contains_key(index)
    }
    fn get<'s>(&'s self, index: &str) -> Option<&'s dyn ValueView> {
        match self.map.get(index) {
            Some(v) => Some(v),
            None if self.lenient => Some(&NIL),
            None => None,
        }
    }
}

impl ObjectView for Globals<'_> {
    fn as_value(&self) -> &dyn ValueView {
        self
    }
    fn size(&self) -> i64 {
        self.strict.size()
    }
    fn keys<'k>(&'k self) -> Box<dyn Iterator<Item = KStringCow<'k>> + 'k> {
        self.strict.keys()
    }
    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn ValueView> + 'k> {
        self.strict.values()
    }
    fn iter<'k>(&'k self) -> Box<dyn Iterator<Item = (KStringCow<'k>, &'k dyn ValueView)> + 'k> {
        self.strict.iter()
    }
    fn contains_key(&self, index: &str) -> bool {
        index == LENIENT || self.strict.contains_key(index)
    }
    fn get<'s>(&'s self, index: &str) -> Option<&'s dyn ValueView> {
        if index == LENIENT {
            return Some(&self.lenient);
        }
        self.strict.get(index)
    }
}

// ------------------------------------------------------------------------------- the budget

/// Delegates to liquid's runtime, counting steps. Past the budget it raises liquid's `break`
/// interrupt, which unwinds every loop and block, and the render is reported as failed; values
/// stored by `assign`/`capture` past [`MAX_VALUE`] are dropped and fail the render too.
struct Budgeted<R> {
    inner: R,
    steps: Cell<u64>,
    exhausted: Cell<bool>,
    oversized: Cell<bool>,
}

impl<R: Runtime> Budgeted<R> {
    fn tick(&self) -> bool {
        let n = self.steps.get() + 1;
        self.steps.set(n);
        if n > MAX_STEPS {
            self.exhausted.set(true);
        }
        !self.exhausted.get() && !self.oversized.get()
    }
}

fn value_size(v: &dyn ValueView) -> usize {
    if let Some(a) = v.as_array() {
        a.values().map(|x| 8 + value_size(x)).sum()
    } else if let Some(o) = v.as_object() {
        o.iter().map(|(k, x)| k.len() + value_size(x)).sum()
    } else {
        v.to_kstr().len()
    }
}

impl<R: Runtime> Runtime for Budgeted<R> {
    fn partials(&self) -> &dyn PartialStore {
        self.inner.partials()
    }
    fn name(&self) -> Option<liquid_core::model::KStringRef<'_>> {
        self.inner.name()
    }
    fn roots(&self) -> std::collections::BTreeSet<KStringCow<'_>> {
        self.inner.roots()
    }
    fn try_get(&self, path: &[ScalarCow<'_>]) -> Option<ValueCow<'_>> {
        self.tick();
        self.inner.try_get(path)
    }
    fn get(&self, path: &[ScalarCow<'_>]) -> liquid_core::Result<ValueCow<'_>> {
        if !self.tick() {
            return Err(liquid_core::Error::with_msg(BUDGET_MESSAGE));
        }
        self.inner.get(path)
    }
    fn set_global(&self, name: KString, val: Value) -> Option<Value> {
        if value_size(&val) > MAX_VALUE {
            self.oversized.set(true);
            return self.inner.set_global(name, Value::Nil);
        }
        self.inner.set_global(name, val)
    }
    fn set_index(&self, name: KString, val: Value) -> Option<Value> {
        self.inner.set_index(name, val)
    }
    fn get_index<'a>(&'a self, name: &str) -> Option<ValueCow<'a>> {
        self.inner.get_index(name)
    }
    fn registers(&self) -> &Registers {
        let registers = self.inner.registers();
        if !self.tick() {
            registers
                .get_mut::<InterruptRegister>()
                .set(Interrupt::Break);
        }
        registers
    }
}

const BUDGET_MESSAGE: &str = "render budget exceeded";

/// Stops writing past a limit.
struct CappedWriter {
    buf: Vec<u8>,
    limit: usize,
    overflowed: bool,
}

impl Write for CappedWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > self.limit {
            self.overflowed = true;
            return Err(std::io::Error::other("output limit"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn render_part(
    template: &liquid_core::Template,
    part: Part,
    vars: &Variables,
    limit: usize,
) -> Result<String, RenderError> {
    let lenient = Scope {
        vars: &vars.vars,
        custom_fields: Fields {
            map: &vars.custom_fields,
            lenient: true,
        },
        lenient: true,
    };
    let globals = Globals {
        strict: Scope {
            vars: &vars.vars,
            custom_fields: Fields {
                map: &vars.custom_fields,
                lenient: false,
            },
            lenient: false,
        },
        lenient,
    };
    let runtime = Budgeted {
        inner: RuntimeBuilder::new().set_globals(&globals).build(),
        steps: Cell::new(0),
        exhausted: Cell::new(false),
        oversized: Cell::new(false),
    };
    let mut out = CappedWriter {
        buf: Vec::with_capacity(1024),
        limit,
        overflowed: false,
    };
    let result = template.render_to(&mut out, &runtime);
    let failed = |message: String| RenderError::Failed { part, message };
    if out.overflowed {
        return Err(failed(format!("renders to more than {} KiB", limit / 1024)));
    }
    if runtime.exhausted.get() {
        return Err(failed(format!(
            "needs more than {MAX_STEPS} render steps (loops too large?)"
        )));
    }
    if runtime.oversized.get() {
        return Err(failed(format!(
            "builds a value larger than {} KiB",
            MAX_VALUE / 1024
        )));
    }
    if let Err(e) = result {
        let text = e.to_string();
        if let Some(name) = requested_variable(&text) {
            return Err(RenderError::MissingVariable { part, name });
        }
        return Err(failed(first_line(&text)));
    }
    String::from_utf8(out.buf).map_err(|_| failed("rendered invalid UTF-8".into()))
}

/// The missing variable named by liquid's errors: "Unknown variable" (context line
/// "requested variable=x") or "Unknown index" ("variable=custom_fields", "requested index=plan").
fn requested_variable(error: &str) -> Option<String> {
    let context = |key: &str| -> Option<String> {
        let pos = error
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(key))?;
        let name: String = pos.chars().take_while(|c| !c.is_whitespace()).collect();
        (!name.is_empty() && name != "nil").then_some(name)
    };
    if error.contains("Unknown variable") {
        return context("requested variable=");
    }
    if error.contains("Unknown index") {
        let index = context("requested index=")?;
        return Some(match context("variable=") {
            Some(var) => format!("{var}.{index}"),
            None => index,
        });
    }
    None
}

/// A shared compiled template (the cache hands out clones).
pub type SharedCompiled = Arc<Compiled>;

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Variables {
        let mut v = Variables::new();
        v.set("email", Value::scalar("jane@example.com"));
        v.set("first_name", Value::scalar("<script>alert(1)</script>"));
        v.set(
            "tags",
            Value::Array(vec![Value::scalar("pro"), Value::scalar("beta")]),
        );
        v.set("unsubscribe_url", Value::scalar("https://x.test/u/tok"));
        v.set_custom("plan", Value::scalar("pro"));
        v.set_custom("posts", Value::scalar(3i64));
        v
    }

    fn render(subject: &str, html: &str, text: Option<&str>) -> Result<Rendered, RenderError> {
        Compiled::compile(Sources {
            subject,
            html,
            text,
        })
        .expect("compiles")
        .render(&vars())
    }

    #[test]
    fn html_values_are_escaped_but_subject_and_text_are_raw() {
        let r = render(
            "Hi {{ first_name }}",
            "<p>Hi {{ first_name }}</p>",
            Some("Hi {{ first_name }}"),
        )
        .unwrap();
        assert_eq!(r.subject, "Hi <script>alert(1)</script>");
        assert_eq!(r.html, "<p>Hi &lt;script&gt;alert(1)&lt;/script&gt;</p>");
        assert_eq!(r.text, "Hi <script>alert(1)</script>");
    }

    #[test]
    fn default_works_for_missing_variables_and_missing_ones_are_named() {
        let r = render(
            "Hi {{ nickname | default: \"there\" }}",
            "{{ custom_fields.nps | default: 0 }} {{ nope | upcase | default: 'x' }}",
            None,
        )
        .unwrap();
        assert_eq!(r.subject, "Hi there");
        assert_eq!(r.html, "0 x");
        assert_eq!(
            render("x", "<p>{{ nickname }}</p>", None),
            Err(RenderError::MissingVariable {
                part: Part::Html,
                name: "nickname".into()
            })
        );
        assert_eq!(
            render("{{ custom_fields.nps }}", "x", None),
            Err(RenderError::MissingVariable {
                part: Part::Subject,
                name: "custom_fields.nps".into()
            })
        );
    }

    #[test]
    fn conditions_on_missing_variables_are_false() {
        let r = render(
            "{% if nickname %}A{% else %}B{% endif %}{% if plan == \"pro\" and missing == 1 %}C{% endif %}{% unless gone %}D{% endunless %}{% case nothing %}{% when 1 %}E{% else %}F{% endcase %}",
            "{% for t in tags %}{{ t }}{% if forloop.last %}.{% else %},{% endif %}{% endfor %}{% assign n = nickname | default: 'n' %}{{ n }}",
            None,
        )
        .unwrap();
        assert_eq!(r.subject, "BDF");
        assert_eq!(r.html, "pro,beta.n");
    }

    #[test]
    fn custom_fields_by_bare_name_and_prefixed() {
        let r = render(
            "{{ plan }}/{{ custom_fields.plan }}/{{ posts | plus: 1 }}",
            "{{ unsubscribe_url }}",
            None,
        )
        .unwrap();
        assert_eq!(r.subject, "pro/pro/4");
        assert_eq!(r.html, "https://x.test/u/tok");
        assert_eq!(r.text, "https://x.test/u/tok");
    }

    #[test]
    fn raw_blocks_are_left_alone() {
        let r = render("x", "{% raw %}{{ first_name }}{% endraw %}", None).unwrap();
        assert_eq!(r.html, "{{ first_name }}");
    }

    #[test]
    fn parse_errors_carry_line_and_column() {
        let e = Compiled::compile(Sources {
            subject: "ok",
            html: "<p>\n  {{ first_name </p>",
            text: None,
        })
        .unwrap_err();
        assert_eq!(e.part, Part::Html);
        assert_eq!(e.line, 2);
        assert!(e.column > 0, "{e:?}");
        assert!(
            e.message.starts_with("html: line 2, column"),
            "{}",
            e.message
        );
        let e = Compiled::compile(Sources {
            subject: "{% if %}",
            html: "",
            text: None,
        })
        .unwrap_err();
        assert_eq!(e.part, Part::Subject);
        let e = Compiled::compile(Sources {
            subject: "",
            html: "",
            text: Some("{{ x | nosuchfilter }}"),
        })
        .unwrap_err();
        assert_eq!(e.part, Part::Text);
        let e = Compiled::compile(Sources {
            subject: "{% cycle 'a', 'b' %}",
            html: "",
            text: None,
        })
        .unwrap_err();
        assert_eq!(e.part, Part::Subject);
        let e = Compiled::compile(Sources {
            subject: "",
            html: "{% include 'x' %}",
            text: None,
        })
        .unwrap_err();
        assert_eq!(e.part, Part::Html);
    }

    #[test]
    fn render_cost_is_bounded() {
        let e = Compiled::compile(Sources {
            subject: "",
            html: "{% for i in (1..100000) %}x{% endfor %}",
            text: None,
        })
        .unwrap_err();
        assert!(e.message.contains("at most"), "{e:?}");
        let e = Compiled::compile(Sources {
            subject: "",
            html: "{% for i in (1..posts) %}x{% endfor %}",
            text: None,
        })
        .unwrap_err();
        assert!(e.message.contains("whole-number"), "{e:?}");
        // 1,000^3 iterations: stopped by the step budget.
        let r = render(
            "",
            "{% for a in (1..1000) %}{% for b in (1..1000) %}{% for c in (1..1000) %}{% endfor %}{% endfor %}{% endfor %}",
            None,
        );
        assert!(matches!(r, Err(RenderError::Failed { .. })), "{r:?}");
        // Doubling a string: stopped by the value cap.
        let r = render(
            "",
            "{% assign s = 'xxxxxxxxxxxxxxxx' %}{% for a in (1..40) %}{% assign s = s | append: s %}{% endfor %}",
            None,
        );
        assert!(matches!(r, Err(RenderError::Failed { .. })), "{r:?}");
        // Output cap.
        let r = render(
            "",
            "{% for a in (1..1000) %}{% for b in (1..200) %}xxxxxxxxxx{% endfor %}{% endfor %}",
            None,
        );
        assert!(matches!(r, Err(RenderError::Failed { .. })), "{r:?}");
    }

    #[test]
    fn escaping_keeps_entities_and_escapes_quotes() {
        assert_eq!(
            escape_html("a & b &amp; <\"'>"),
            "a &amp; b &amp; &lt;&quot;&#39;&gt;"
        );
        assert_eq!(escape_html("&#39; &#x41; &nope"), "&#39; &#x41; &amp;nope");
    }

    #[test]
    fn subjects_are_one_line() {
        let mut v = vars();
        v.set("first_name", Value::scalar("Jane\r\nBcc: evil@x.test"));
        let c = Compiled::compile(Sources {
            subject: "Hi {{ first_name }}",
            html: "x",
            text: None,
        })
        .unwrap();
        assert_eq!(c.render(&v).unwrap().subject, "Hi Jane Bcc: evil@x.test");
    }

    #[test]
    fn rewrite_points_only_global_roots_at_the_lenient_view() {
        let locals: HashSet<String> = ["t".to_string()].into();
        assert_eq!(
            lenient_roots(" a.b | default: c | append: 'x y' ", &locals),
            " __m.a.b | default: __m.c | append: 'x y' "
        );
        assert_eq!(
            lenient_roots(" t == x and y contains \"z\" ", &locals),
            " t == __m.x and __m.y contains \"z\" "
        );
        assert!(has_default_filter(" a | upcase | default: 'x' "));
        assert!(!has_default_filter(" a | upcase | defaults "));
        assert!(!has_default_filter(" 'a | default' "));
    }
}
