//! The wire (DESIGN §5): compose the RFC 5322 message once with lettre, then either hand it to an
//! SMTP server or write its bytes to an `.eml` file. Both paths share everything up to that
//! point, so what the files show is what SMTP would have carried.
//!
//! `MEISA_SMTP_URL` syntax (the same as lettre's `from_url`, parsed here so the delivery code can
//! drive the SMTP conversation itself and tell a rejected recipient from a rejected message):
//!
//! * `smtp://host[:port]` — plain, no TLS (local sinks such as Mailpit); port 25 by default.
//! * `smtp://host:587?tls=required` (or `tls=starttls`) — STARTTLS, refusing to go on without it.
//! * `smtp://host:587?tls=opportunistic` — STARTTLS when the server offers it.
//! * `smtps://host[:port]` — implicit TLS (RFC 8314); port 465 by default.
//! * `user:password@` before the host authenticates (AUTH PLAIN or LOGIN); percent-encode
//!   special characters. TLS is rustls with the webpki roots (no system OpenSSL).
//! * `?hello=name` sets the EHLO name (default: this host's name).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use lettre::{
    Address, Message,
    address::Envelope,
    message::{
        Mailbox, MultiPart,
        header::{Header, HeaderName, HeaderValue},
    },
    transport::smtp::{
        authentication::{Credentials, Mechanism},
        client::{AsyncSmtpConnection, TlsParameters},
        commands::{Data, Mail, Rcpt, Rset},
        extension::{ClientId, Extension, MailBodyParameter, MailParameter},
    },
};
use meisa_runtime::config::Secret;

use crate::domain::ids::MessageId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    None,
    StartTlsRequired,
    StartTlsOpportunistic,
    Implicit,
}

#[derive(Clone, Debug)]
pub struct SmtpUrl {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub credentials: Option<(String, Secret)>,
    pub hello: Option<String>,
}

impl SmtpUrl {
    pub fn parse(s: &str) -> Result<SmtpUrl, String> {
        let url = url::Url::parse(s.trim())
            .map_err(|e| format!("not a URL ({e}); write e.g. smtp://127.0.0.1:2525"))?;
        let mut tls = match url.scheme() {
            "smtp" => TlsMode::None,
            "smtps" => TlsMode::Implicit,
            other => return Err(format!("scheme {other:?} is not smtp:// or smtps://")),
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("has no host")?
            .trim_matches(['[', ']'])
            .to_string();
        let port = url
            .port()
            .unwrap_or(if tls == TlsMode::Implicit { 465 } else { 25 });
        let mut hello = None;
        for (k, v) in url.query_pairs() {
            match (k.as_ref(), v.as_ref()) {
                ("tls", "required" | "starttls") if tls == TlsMode::None => {
                    tls = TlsMode::StartTlsRequired
                }
                ("tls", "opportunistic") if tls == TlsMode::None => {
                    tls = TlsMode::StartTlsOpportunistic
                }
                ("tls", "none" | "") if tls == TlsMode::None => {}
                ("tls", other) => {
                    return Err(format!(
                        "tls={other:?} is not one of required, starttls, opportunistic, none (smtps:// is always TLS)"
                    ));
                }
                ("hello", name) => hello = Some(name.to_string()),
                (other, _) => {
                    return Err(format!("unknown parameter {other:?} (known: tls, hello)"));
                }
            }
        }
        let credentials = if url.username().is_empty() {
            None
        } else {
            let decode = |s: &str| {
                percent_decode(s).ok_or_else(|| {
                    "user or password is not valid percent-encoded UTF-8".to_string()
                })
            };
            let user = decode(url.username())?;
            let pass = decode(url.password().unwrap_or(""))?;
            Some((user, Secret::new(pass)))
        };
        Ok(SmtpUrl {
            host,
            port,
            tls,
            credentials,
            hello,
        })
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

// ------------------------------------------------------------------------------- composing

#[derive(Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_string()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

#[derive(Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".to_string())
    }
}

/// What a queued message needs to become bytes.
pub struct Outgoing<'a> {
    pub message_id_header: &'a str,
    pub from: &'a str,
    pub reply_to: Option<&'a str>,
    pub to: &'a str,
    pub subject: &'a str,
    pub html: &'a str,
    pub text: &'a str,
    /// `{MEISA_PUBLIC_URL}/u/{token}`
    pub unsubscribe_url: &'a str,
    /// `unsubscribe+{token}@{domain}`
    pub unsubscribe_mailto: &'a str,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot compose the message: {0}")]
pub struct ComposeError(String);

/// The domain of a From mailbox ("Acme <hello@acme.test>" → "acme.test"): where the
/// `Message-ID` and the unsubscribe mailto live.
pub fn from_domain(from: &str) -> Result<String, ComposeError> {
    from.parse::<Mailbox>()
        .map(|m| m.email.domain().to_string())
        .map_err(|e| ComposeError(format!("from {from:?}: {e}")))
}

/// The envelope and the formatted message.
pub fn compose(m: &Outgoing<'_>) -> Result<(Envelope, Vec<u8>), ComposeError> {
    let from: Mailbox = m
        .from
        .parse()
        .map_err(|e| ComposeError(format!("from {:?}: {e}", m.from)))?;
    let to: Address =
        m.to.parse()
            .map_err(|e| ComposeError(format!("to {:?}: {e}", m.to)))?;
    let mut builder = Message::builder()
        .message_id(Some(m.message_id_header.to_string()))
        .from(from)
        .to(Mailbox::new(None, to))
        .subject(m.subject)
        .date_now()
        .header(ListUnsubscribe(format!(
            "<{}>, <mailto:{}>",
            m.unsubscribe_url, m.unsubscribe_mailto
        )))
        .header(ListUnsubscribePost);
    if let Some(r) = m.reply_to {
        let r: Mailbox = r
            .parse()
            .map_err(|e| ComposeError(format!("reply_to {r:?}: {e}")))?;
        builder = builder.reply_to(r);
    }
    let message = builder
        .multipart(MultiPart::alternative_plain_html(
            m.text.to_string(),
            m.html.to_string(),
        ))
        .map_err(|e| ComposeError(e.to_string()))?;
    Ok((message.envelope().clone(), message.formatted()))
}

// ------------------------------------------------------------------------------- delivering

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// 4xx, a timeout, a lost or refused connection: try again later.
    #[error("{0}")]
    Transient(String),
    /// 5xx: do not try again. `recipient_rejected` when the server refused the address at RCPT.
    #[error("{message}")]
    Permanent {
        message: String,
        recipient_rejected: bool,
    },
}

#[derive(Clone, Debug)]
pub enum Transport {
    Smtp { url: SmtpUrl, timeout: Duration },
    Files { dir: PathBuf },
}

impl Transport {
    pub fn describe(&self) -> String {
        match self {
            Transport::Smtp { url, .. } => {
                format!("smtp {}:{} ({:?})", url.host, url.port, url.tls)
            }
            Transport::Files { dir } => format!(".eml files in {}", dir.display()),
        }
    }
}

/// One worker's sender: keeps its SMTP connection open between messages.
pub struct Sender {
    transport: Transport,
    conn: Option<AsyncSmtpConnection>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Step {
    Connect,
    Mail,
    Rcpt,
    Data,
}

fn classify(step: Step, e: &lettre::transport::smtp::Error) -> DeliveryError {
    let message = format!("{step:?}: {e}");
    if e.is_permanent() {
        DeliveryError::Permanent {
            message,
            recipient_rejected: step == Step::Rcpt,
        }
    } else {
        DeliveryError::Transient(message)
    }
}

impl Sender {
    pub fn new(transport: Transport) -> Self {
        Self {
            transport,
            conn: None,
        }
    }

    /// Hands one message over. Ok means the server answered 250 to the end of DATA (or the file
    /// is on disk).
    pub async fn send(
        &mut self,
        message: MessageId,
        envelope: &Envelope,
        bytes: &[u8],
    ) -> Result<(), DeliveryError> {
        match &self.transport {
            Transport::Files { dir } => write_eml(dir, message, bytes).await,
            Transport::Smtp { timeout, .. } => {
                let timeout = *timeout;
                match tokio::time::timeout(timeout, self.send_smtp(envelope, bytes)).await {
                    Ok(r) => r,
                    Err(_) => {
                        // The conversation is in an unknown state: never reuse it.
                        self.conn = None;
                        Err(DeliveryError::Transient(format!(
                            "no answer within {timeout:?}"
                        )))
                    }
                }
            }
        }
    }

    async fn send_smtp(&mut self, envelope: &Envelope, bytes: &[u8]) -> Result<(), DeliveryError> {
        // A reused connection may have been closed by the server while idle: if it fails before
        // the message content went out, reconnect once at once instead of waiting for a retry.
        let reused = self.conn.is_some();
        match self.transaction(envelope, bytes).await {
            Err((Step::Mail, DeliveryError::Transient(_))) if reused => {
                self.conn = None;
                self.transaction(envelope, bytes).await.map_err(|(_, e)| e)
            }
            other => other.map_err(|(_, e)| e),
        }
    }

    async fn transaction(
        &mut self,
        envelope: &Envelope,
        bytes: &[u8],
    ) -> Result<(), (Step, DeliveryError)> {
        let Transport::Smtp { url, timeout } = &self.transport else {
            return Ok(());
        };
        if self.conn.as_ref().is_none_or(|c| c.has_broken()) {
            self.conn = Some(
                connect(url, *timeout)
                    .await
                    .map_err(|e| (Step::Connect, e))?,
            );
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err((
                Step::Connect,
                DeliveryError::Transient("no connection".into()),
            ));
        };

        let mut params = Vec::new();
        if !bytes.is_ascii() && conn.server_info().supports_feature(Extension::EightBitMime) {
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        if let Err(e) = conn
            .command(Mail::new(envelope.from().cloned(), params))
            .await
        {
            return Err(self.after_failure(Step::Mail, &e).await);
        }
        for to in envelope.to() {
            let Some(conn) = self.conn.as_mut() else {
                break;
            };
            if let Err(e) = conn.command(Rcpt::new(to.clone(), vec![])).await {
                return Err(self.after_failure(Step::Rcpt, &e).await);
            }
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err((
                Step::Data,
                DeliveryError::Transient("connection lost".into()),
            ));
        };
        if let Err(e) = conn.command(Data).await {
            return Err(self.after_failure(Step::Data, &e).await);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err((
                Step::Data,
                DeliveryError::Transient("connection lost".into()),
            ));
        };
        match conn.message(bytes).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.after_failure(Step::Data, &e).await),
        }
    }

    /// Classifies a failure and leaves the connection usable (RSET) or drops it.
    async fn after_failure(
        &mut self,
        step: Step,
        e: &lettre::transport::smtp::Error,
    ) -> (Step, DeliveryError) {
        let err = classify(step, e);
        let keep = if e.is_permanent() || e.is_transient() {
            // The server answered: the session is fine, only this transaction is over.
            match self.conn.as_mut() {
                Some(c) => c.command(Rset).await.is_ok(),
                None => false,
            }
        } else {
            false
        };
        if !keep && let Some(mut c) = self.conn.take() {
            c.abort().await;
        }
        (step, err)
    }

    /// Takes back what `send` handed over, where that is possible: a file is removed (its
    /// contact was erased while it was being written); a message an SMTP server accepted is out
    /// of reach.
    pub async fn discard(&self, message: MessageId) -> std::io::Result<()> {
        match &self.transport {
            Transport::Files { dir } => {
                match tokio::fs::remove_file(eml_path(dir, message)).await {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                }
            }
            Transport::Smtp { .. } => Ok(()),
        }
    }

    /// Says goodbye to the server (on shutdown).
    pub async fn close(&mut self) {
        if let Some(mut c) = self.conn.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), c.quit()).await;
        }
    }
}

async fn connect(url: &SmtpUrl, timeout: Duration) -> Result<AsyncSmtpConnection, DeliveryError> {
    let hello = url.hello.clone().map(ClientId::Domain).unwrap_or_default();
    let tls = || {
        TlsParameters::new(url.host.clone())
            .map_err(|e| DeliveryError::Transient(format!("TLS setup for {}: {e}", url.host)))
    };
    let connect_err = |e: &dyn std::fmt::Display| {
        DeliveryError::Transient(format!("connect to {}:{}: {e}", url.host, url.port))
    };
    let mut conn = if url.tls == TlsMode::Implicit {
        AsyncSmtpConnection::connect_tokio1(
            (url.host.as_str(), url.port),
            Some(timeout),
            &hello,
            Some(tls()?),
            None,
        )
        .await
        .map_err(|e| connect_err(&e))?
    } else {
        // Our own socket, for TCP_NODELAY: lettre writes a message's body and its final
        // "\r\n.\r\n" in two writes, and with Nagle's algorithm the second waits for the
        // server's delayed ACK (~40 ms per message). lettre does not set it on sockets it opens,
        // which is why implicit TLS (above) still has that delay; prefer STARTTLS on 587 for
        // volume. STARTTLS upgrades this same socket.
        let tcp = tokio::time::timeout(
            timeout,
            tokio::net::TcpStream::connect((url.host.as_str(), url.port)),
        )
        .await
        .map_err(|_| connect_err(&"timed out"))?
        .map_err(|e| connect_err(&e))?;
        tcp.set_nodelay(true).map_err(|e| connect_err(&e))?;
        AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &hello)
            .await
            .map_err(|e| connect_err(&e))?
    };
    match url.tls {
        TlsMode::StartTlsRequired => {
            conn.starttls(tls()?, &hello).await.map_err(|e| {
                DeliveryError::Transient(format!("STARTTLS with {}: {e}", url.host))
            })?;
        }
        TlsMode::StartTlsOpportunistic if conn.can_starttls() => {
            conn.starttls(tls()?, &hello).await.map_err(|e| {
                DeliveryError::Transient(format!("STARTTLS with {}: {e}", url.host))
            })?;
        }
        _ => {}
    }
    if let Some((user, pass)) = &url.credentials {
        let creds = Credentials::new(user.clone(), pass.expose().to_string());
        conn.auth(&[Mechanism::Plain, Mechanism::Login], &creds)
            .await
            .map_err(|e| {
                // Wrong credentials will not fix themselves, but an operator can fix them: retry.
                DeliveryError::Transient(format!("SMTP authentication as {user}: {e}"))
            })?;
    }
    Ok(conn)
}

/// Where the files transport puts a message: `{dir}/{message id}.eml`.
pub fn eml_path(dir: &Path, message: MessageId) -> PathBuf {
    dir.join(format!("{message}.eml"))
}

async fn write_eml(dir: &Path, message: MessageId, bytes: &[u8]) -> Result<(), DeliveryError> {
    let io =
        |e: std::io::Error| DeliveryError::Transient(format!("writing {}: {e}", dir.display()));
    tokio::fs::create_dir_all(dir).await.map_err(io)?;
    // Write then rename: a reader (the dashboard) never sees half a file.
    let tmp = dir.join(format!(".{message}.eml.tmp"));
    let path = eml_path(dir, message);
    tokio::fs::write(&tmp, bytes).await.map_err(io)?;
    tokio::fs::rename(&tmp, &path).await.map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls() {
        let u = SmtpUrl::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.tls),
            ("127.0.0.1", 2525, TlsMode::None)
        );
        assert!(u.credentials.is_none());
        let u = SmtpUrl::parse("smtp://me%40x.test:p%3Ass@mail.x.test:587?tls=required").unwrap();
        assert_eq!(u.tls, TlsMode::StartTlsRequired);
        let (user, pass) = u.credentials.unwrap();
        assert_eq!((user.as_str(), pass.expose()), ("me@x.test", "p:ss"));
        assert_eq!(
            SmtpUrl::parse("smtp://h?tls=starttls").unwrap().tls,
            TlsMode::StartTlsRequired
        );
        assert_eq!(
            SmtpUrl::parse("smtp://h?tls=opportunistic").unwrap().tls,
            TlsMode::StartTlsOpportunistic
        );
        let u = SmtpUrl::parse("smtps://smtp.x.test").unwrap();
        assert_eq!((u.port, u.tls), (465, TlsMode::Implicit));
        assert_eq!(SmtpUrl::parse("smtp://h").unwrap().port, 25);
        assert!(SmtpUrl::parse("http://h").is_err());
        assert!(SmtpUrl::parse("smtp://h?tls=maybe").is_err());
        assert!(SmtpUrl::parse("smtp://h?nope=1").is_err());
        assert!(SmtpUrl::parse("nonsense").is_err());
    }

    #[test]
    fn composes_headers_and_both_parts() {
        let (env, bytes) = compose(&Outgoing {
            message_id_header: "<msg_1@acme.test>",
            from: "Acme <hello@acme.test>",
            reply_to: Some("help@acme.test"),
            to: "jane@example.com",
            subject: "Welcome, Jane!",
            html: "<p>Hi</p>",
            text: "Hi",
            unsubscribe_url: "http://x.test/u/tok",
            unsubscribe_mailto: "unsubscribe+tok@acme.test",
        })
        .unwrap();
        let s = String::from_utf8(bytes).unwrap();
        assert_eq!(
            env.from().map(|a| a.to_string()).as_deref(),
            Some("hello@acme.test")
        );
        assert!(s.contains("Message-ID: <msg_1@acme.test>"), "{s}");
        assert!(
            s.contains(
                "List-Unsubscribe: <http://x.test/u/tok>, <mailto:unsubscribe+tok@acme.test>"
            ),
            "{s}"
        );
        assert!(
            s.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
            "{s}"
        );
        assert!(s.contains("text/plain") && s.contains("text/html"), "{s}");
        assert!(s.contains("Reply-To: help@acme.test"), "{s}");
    }
}
