//! `/u/{token}`: the unsubscribe link of every email (DESIGN §5, RFC 8058). No API key: the
//! signed token is the credential, and it names a message, not a contact.
//!
//! - `GET` shows a small confirmation page (the masked address and one button). It never
//!   unsubscribes: mail scanners and link previews fetch links with GET.
//! - `POST` unsubscribes at once. A mail client's one-click POST (body
//!   `List-Unsubscribe=One-Click`) gets a plain 200; the page's button gets a page. Unsubscribing
//!   twice is fine.
//! - A token that does not verify is a 404 (a page for browsers).
//!
//! The pages are self-contained (no scripts, no external resources) and show neither the contact
//! id nor the whole address. The token is kept out of traces (see `api::loggable_path`) and
//! out of other sites' logs (`Referrer-Policy: no-referrer`).

use axum::{
    body::{Body, Bytes},
    extract::{Path, State, rejection::PathRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures::StreamExt;
use meisa_proto::mailer as pb;
use meisa_runtime::errors::{ApiError, ErrorCode};

use crate::{error::RETRY_AFTER_SECS, state::AppState};

/// Tokens are 44 base64url characters today; the bound leaves room for a longer version while
/// keeping junk away from the mailer.
const MAX_TOKEN: usize = 128;
/// RFC 8058 bodies are one short form field; the page's form sends one too.
const MAX_BODY: usize = 4 * 1024;

/// What the mailer said about a token, as the page shows it.
enum Outcome {
    Ask { masked_email: String },
    AlreadyUnsubscribed { masked_email: String },
    Unsubscribed,
    NotFound,
    Unavailable,
}

fn plausible(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_TOKEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn outcome_of_error(status: &tonic::Status) -> Outcome {
    let api = ApiError::from_status(status);
    match api.code {
        // A token the mailer cannot read is as unknown as one it never signed.
        ErrorCode::NotFound | ErrorCode::InvalidField => Outcome::NotFound,
        _ => {
            // The status text is the mailer's; it never holds the token.
            tracing::warn!(code = api.code.as_str(), error = %status.message(), "unsubscribe: mailer call failed");
            Outcome::Unavailable
        }
    }
}

#[utoipa::path(
    get, path = "/u/{token}", tag = "unsubscribe",
    params(("token" = String, Path, description = "The signed token from the email's List-Unsubscribe link")),
    responses(
        (status = 200, content_type = "text/html", description = "the confirmation page (or, when already unsubscribed, the confirmation that it is done)"),
        (status = 404, content_type = "text/html", description = "the link is not valid"),
        (status = 503, content_type = "text/html", description = "the mailer is unavailable; see Retry-After"),
    )
)]
pub async fn page(
    State(state): State<AppState>,
    token: Result<Path<String>, PathRejection>,
) -> Response {
    let token = token.map(|Path(t)| t).unwrap_or_default();
    let outcome = if plausible(&token) {
        match state
            .mailer()
            .describe_unsubscribe_token(pb::DescribeUnsubscribeTokenRequest { token })
            .await
        {
            Ok(r) => {
                let r = r.into_inner();
                if r.already_unsubscribed {
                    Outcome::AlreadyUnsubscribed {
                        masked_email: r.masked_email,
                    }
                } else {
                    Outcome::Ask {
                        masked_email: r.masked_email,
                    }
                }
            }
            Err(s) => outcome_of_error(&s),
        }
    } else {
        Outcome::NotFound
    };
    html_response(&outcome)
}

#[utoipa::path(
    post, path = "/u/{token}", tag = "unsubscribe",
    params(("token" = String, Path, description = "The signed token from the email's List-Unsubscribe link")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`List-Unsubscribe=One-Click` (RFC 8058), or the confirmation page's form"),
    responses(
        (status = 200, description = "unsubscribed (also when already unsubscribed): text/plain for a one-click POST, a page otherwise"),
        (status = 404, description = "the link is not valid"),
        (status = 503, description = "the mailer is unavailable; see Retry-After"),
    )
)]
pub async fn unsubscribe(
    State(state): State<AppState>,
    token: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // A path that does not decode is not a token: the same 404 as a forged one.
    let token = token.map(|Path(t)| t).unwrap_or_default();
    let one_click = is_one_click(&headers, &read_limited(body).await);
    let outcome = if plausible(&token) {
        match state
            .mailer()
            .unsubscribe(pb::UnsubscribeRequest { token })
            .await
        {
            Ok(_) => Outcome::Unsubscribed,
            Err(s) => outcome_of_error(&s),
        }
    } else {
        Outcome::NotFound
    };
    if one_click {
        text_response(&outcome)
    } else {
        html_response(&outcome)
    }
}

/// The body, or as much of it as fits [`MAX_BODY`]: the answer does not depend on more.
async fn read_limited(body: Body) -> Bytes {
    let mut out = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = MAX_BODY.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= MAX_BODY {
            break;
        }
    }
    Bytes::from(out)
}

/// RFC 8058: the POST carries `List-Unsubscribe=One-Click`, form-encoded (or as a multipart
/// field). The page's own form sends `confirm=yes` instead, so the two are told apart.
fn is_one_click(headers: &HeaderMap, body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    let multipart = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    if multipart {
        return text.contains("name=\"List-Unsubscribe\"") && text.contains("One-Click");
    }
    text.split('&').any(|pair| {
        let pair = pair.trim().replace("%2D", "-").replace("%2d", "-");
        pair.eq_ignore_ascii_case("List-Unsubscribe=One-Click")
    })
}

fn status_of(outcome: &Outcome) -> StatusCode {
    match outcome {
        Outcome::Ask { .. } | Outcome::AlreadyUnsubscribed { .. } | Outcome::Unsubscribed => {
            StatusCode::OK
        }
        Outcome::NotFound => StatusCode::NOT_FOUND,
        Outcome::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn with_page_headers(mut response: Response, outcome: &Outcome) -> Response {
    let h = response.headers_mut();
    // The URL is a credential: no caching, no Referer to wherever the page links, no framing (a
    // framed button could be clicked for someone).
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-robots-tag", HeaderValue::from_static("noindex"));
    if matches!(outcome, Outcome::Unavailable) {
        h.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECS),
        );
    }
    response
}

fn text_response(outcome: &Outcome) -> Response {
    let text = match outcome {
        Outcome::Ask { .. } | Outcome::AlreadyUnsubscribed { .. } | Outcome::Unsubscribed => {
            "unsubscribed\n"
        }
        Outcome::NotFound => "this unsubscribe link is not valid\n",
        Outcome::Unavailable => "temporarily unavailable; retry shortly\n",
    };
    let response = (
        status_of(outcome),
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response();
    with_page_headers(response, outcome)
}

fn html_response(outcome: &Outcome) -> Response {
    let response = (
        status_of(outcome),
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        render_page(outcome),
    )
        .into_response();
    with_page_headers(response, outcome)
}

/// The masked address comes from the mailer; it is escaped like any other value.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

fn address(masked_email: &str) -> String {
    if masked_email.is_empty() {
        "your address".into()
    } else {
        format!("<strong>{}</strong>", escape(masked_email))
    }
}

fn render_page(outcome: &Outcome) -> String {
    let (title, body) = match outcome {
        Outcome::Ask { masked_email } => (
            "Unsubscribe",
            format!(
                "<h1>Unsubscribe?</h1>\
                 <p>Stop these emails to {}.</p>\
                 <form method=\"post\"><input type=\"hidden\" name=\"confirm\" value=\"yes\">\
                 <button type=\"submit\">Unsubscribe</button></form>",
                address(masked_email)
            ),
        ),
        Outcome::AlreadyUnsubscribed { masked_email } => (
            "Unsubscribed",
            format!(
                "<h1>You are unsubscribed</h1>\
                 <p>{} will not get these emails any more. Nothing else to do.</p>",
                address(masked_email)
            ),
        ),
        Outcome::Unsubscribed => (
            "Unsubscribed",
            "<h1>You are unsubscribed</h1>\
             <p>You will not get these emails any more. You can close this page.</p>"
                .to_string(),
        ),
        Outcome::NotFound => (
            "Link not valid",
            "<h1>This link is not valid</h1>\
             <p>It may have been copied incompletely, or it belongs to an email that no longer \
             exists. To unsubscribe, use the link in the most recent email you received.</p>"
                .to_string(),
        ),
        Outcome::Unavailable => (
            "Try again shortly",
            "<h1>Something went wrong on our side</h1>\
             <p>Nothing has changed yet. Please try again in a minute.</p>"
                .to_string(),
        ),
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\">\
         <title>{title}</title><style>{STYLE}</style></head>\
         <body><main>{body}</main></body></html>\n"
    )
}

const STYLE: &str = "body{margin:0;background:#f5f5f4;color:#1c1917;\
font:16px/1.5 -apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif}\
main{max-width:28rem;margin:12vh auto;padding:2rem;background:#fff;border-radius:12px;\
box-shadow:0 1px 3px rgba(0,0,0,.08)}h1{font-size:1.35rem;margin:0 0 .75rem}\
p{margin:0 0 1.25rem}button{font:inherit;font-weight:600;color:#fff;background:#1c1917;\
border:0;border-radius:8px;padding:.65rem 1.4rem;cursor:pointer}button:focus{outline:3px solid #a8a29e}";

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        h
    }

    #[test]
    fn one_click_bodies_are_recognised() {
        assert!(is_one_click(&form(), b"List-Unsubscribe=One-Click"));
        assert!(is_one_click(&form(), b"List-Unsubscribe=One%2DClick"));
        assert!(is_one_click(
            &HeaderMap::new(),
            b"List-Unsubscribe=One-Click\r\n"
        ));
        assert!(!is_one_click(&form(), b"confirm=yes"));
        assert!(!is_one_click(&form(), b""));
        let mut multipart = HeaderMap::new();
        multipart.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("multipart/form-data; boundary=x"),
        );
        let body = b"--x\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--x--\r\n";
        assert!(is_one_click(&multipart, body));
    }

    #[test]
    fn only_token_shaped_paths_reach_the_mailer() {
        assert!(plausible("AQID-_abc"));
        assert!(!plausible(""));
        assert!(!plausible("a/b"));
        assert!(!plausible("a%2Fb"));
        assert!(!plausible(&"a".repeat(MAX_TOKEN + 1)));
    }

    #[test]
    fn pages_escape_the_address_and_ask_with_one_post_button() {
        let page = render_page(&Outcome::Ask {
            masked_email: "j***@<script>.test".into(),
        });
        assert!(page.contains("j***@&lt;script&gt;.test"));
        assert!(!page.contains("<script>"));
        assert_eq!(page.matches("<form method=\"post\">").count(), 1);
        assert_eq!(page.matches("<button").count(), 1);
        let done = render_page(&Outcome::AlreadyUnsubscribed {
            masked_email: "j***@example.com".into(),
        });
        assert!(done.contains("You are unsubscribed"));
        assert!(!done.contains("<form"));
    }

    #[test]
    fn responses_carry_the_privacy_headers() {
        let r = html_response(&Outcome::NotFound);
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(r.headers()[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        let r = text_response(&Outcome::Unavailable);
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], RETRY_AFTER_SECS);
    }
}
