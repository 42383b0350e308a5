//! A real SMTP server for tests: speaks the protocol over TCP on loopback (EHLO/HELO, AUTH PLAIN,
//! MAIL FROM, RCPT TO, DATA with dot-unstuffing, RSET, NOOP, QUIT), records every accepted
//! message (envelope and raw data) and answers what a test scripts:
//!
//! ```no_run
//! # use std::time::Duration;
//! # use meisa_testkit::smtp::{SmtpServer, Stage};
//! # async fn demo() {
//! let smtp = SmtpServer::start().await;
//! smtp.script(Stage::DataEnd, "451 4.3.0 try again later", 2); // twice, then 250
//! smtp.reject_rcpt("gone@example.com", "550 5.1.1 no such user");  // every time
//! smtp.set_delay(Stage::Mail, Duration::from_millis(500));         // slow server
//! let mails = smtp.wait_for(1, Duration::from_secs(10)).await;
//! # }
//! ```
//!
//! A message is recorded when the server accepts it at the end of DATA, right before its 250
//! goes out (as a real server commits before replying); a transaction cut before the final dot
//! records nothing.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::{Notify, watch},
};

/// Where in a transaction a scripted reply applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The reply to `MAIL FROM`.
    Mail,
    /// The reply to `RCPT TO`.
    Rcpt,
    /// The reply to the `DATA` command (normally 354).
    Data,
    /// The reply after the terminating `.` (normally 250: the message is accepted).
    DataEnd,
}

/// One accepted message.
#[derive(Clone, Debug)]
pub struct ReceivedMail {
    /// The envelope sender, without angle brackets.
    pub from: String,
    /// The envelope recipients, without angle brackets.
    pub to: Vec<String>,
    /// The message as sent, dot-unstuffed, CRLF line ends, without the terminating `.`.
    pub data: Vec<u8>,
    /// The user name of `AUTH PLAIN` on that connection, if any.
    pub auth_user: Option<String>,
}

impl ReceivedMail {
    pub fn data_str(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }

    /// The first header with this name (case-insensitive), unfolded, without the name.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers(name).into_iter().next()
    }

    /// Every header with this name, unfolded.
    pub fn headers(&self, name: &str) -> Vec<String> {
        let text = self.data_str();
        let head = text.split("\r\n\r\n").next().unwrap_or("");
        let mut unfolded: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with(' ') || line.starts_with('\t') {
                if let Some(last) = unfolded.last_mut() {
                    last.push(' ');
                    last.push_str(line.trim_start());
                }
            } else {
                unfolded.push(line.to_string());
            }
        }
        unfolded
            .into_iter()
            .filter_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
            .collect()
    }
}

struct Rule {
    stage: Stage,
    /// For `Stage::Rcpt`: only this recipient (case-insensitive).
    recipient: Option<String>,
    reply: String,
    /// None: every time.
    remaining: Option<usize>,
}

#[derive(Default)]
struct State {
    messages: Vec<ReceivedMail>,
    rules: Vec<Rule>,
    delays: Vec<(Stage, Duration)>,
    connections: usize,
    /// `MAIL FROM` commands received (counted before any scripted delay).
    mail_commands: usize,
    /// Every reply the server sent after DATA's end, in order ("250", "451"...), including
    /// scripted failures: lets a test count attempts as the server saw them.
    data_end_replies: Vec<String>,
}

pub struct SmtpServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
    stop: watch::Sender<bool>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A test that panicked while holding the lock has already failed; keep serving the others.
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl SmtpServer {
    /// Listens on an ephemeral loopback port.
    pub async fn start() -> SmtpServer {
        Self::start_on("127.0.0.1:0").await
    }

    pub async fn start_on(addr: &str) -> SmtpServer {
        let listener = TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("bind the test SMTP server on {addr}: {e}"));
        let addr = listener
            .local_addr()
            .expect("local address of a bound listener");
        let state = Arc::new(Mutex::new(State::default()));
        let notify = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        let (st, nt) = (state.clone(), notify.clone());
        tokio::spawn(async move {
            let mut stopped_accept = stopped.clone();
            loop {
                tokio::select! {
                    _ = stopped_accept.changed() => break,
                    accepted = listener.accept() => {
                        let Ok((socket, _)) = accepted else { continue };
                        lock(&st).connections += 1;
                        let (st, nt, mut stop) = (st.clone(), nt.clone(), stopped.clone());
                        tokio::spawn(async move {
                            tokio::select! {
                                _ = stop.changed() => {}
                                _ = session(socket, st, nt) => {}
                            }
                        });
                    }
                }
            }
        });
        SmtpServer {
            addr,
            state,
            notify,
            stop,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `smtp://127.0.0.1:PORT`, for MEISA_SMTP_URL.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Answers `reply` (e.g. "451 4.3.0 busy") at `stage` the next `times` times, then normally.
    pub fn script(&self, stage: Stage, reply: &str, times: usize) {
        lock(&self.state).rules.push(Rule {
            stage,
            recipient: None,
            reply: reply.into(),
            remaining: Some(times),
        });
    }

    /// Answers `reply` (e.g. "550 5.1.1 no such user") to every `RCPT TO` for `recipient`.
    pub fn reject_rcpt(&self, recipient: &str, reply: &str) {
        lock(&self.state).rules.push(Rule {
            stage: Stage::Rcpt,
            recipient: Some(recipient.to_ascii_lowercase()),
            reply: reply.into(),
            remaining: None,
        });
    }

    /// Waits `delay` before every reply at `stage` (a slow server keeps transactions in flight).
    pub fn set_delay(&self, stage: Stage, delay: Duration) {
        let mut s = lock(&self.state);
        s.delays.retain(|(st, _)| *st != stage);
        if !delay.is_zero() {
            s.delays.push((stage, delay));
        }
    }

    pub fn messages(&self) -> Vec<ReceivedMail> {
        lock(&self.state).messages.clone()
    }

    pub fn message_count(&self) -> usize {
        lock(&self.state).messages.len()
    }

    /// The messages accepted after the first `skip`, in order: polling for new arrivals costs
    /// only what arrived (a benchmark stamps each one as it sees it).
    pub fn messages_since(&self, skip: usize) -> Vec<ReceivedMail> {
        lock(&self.state)
            .messages
            .get(skip..)
            .map(<[ReceivedMail]>::to_vec)
            .unwrap_or_default()
    }

    /// How many TCP connections were accepted so far.
    pub fn connection_count(&self) -> usize {
        lock(&self.state).connections
    }

    /// How many `MAIL FROM` commands arrived, answered or not: one more than the accepted
    /// messages means a client is waiting in a (delayed) transaction right now.
    pub fn mail_command_count(&self) -> usize {
        lock(&self.state).mail_commands
    }

    /// The code of every reply after DATA's end, in order.
    pub fn data_end_replies(&self) -> Vec<String> {
        lock(&self.state).data_end_replies.clone()
    }

    /// Waits until at least `n` messages were accepted; panics after `timeout` with what arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            // Count first: cloning every message on every wake-up would be quadratic.
            if self.message_count() >= n {
                return self.messages();
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "the test SMTP server received {} message(s) within {timeout:?}, expected {n}",
                    self.message_count()
                );
            }
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn angle_addr(arg: &str) -> String {
    // "FROM:<a@b> SIZE=10" -> "a@b"
    let arg = arg.split_once(':').map(|(_, a)| a).unwrap_or(arg).trim();
    let inner = match (arg.find('<'), arg.find('>')) {
        (Some(s), Some(e)) if e > s => &arg[s + 1..e],
        _ => arg.split_whitespace().next().unwrap_or(""),
    };
    inner.to_string()
}

/// The scripted reply for `stage`, if a rule applies, and the delay to wait before replying.
fn scripted(
    state: &Mutex<State>,
    stage: Stage,
    recipient: Option<&str>,
) -> (Option<String>, Duration) {
    let mut s = lock(state);
    let delay = s
        .delays
        .iter()
        .find(|(st, _)| *st == stage)
        .map(|(_, d)| *d)
        .unwrap_or_default();
    let rcpt = recipient.map(|r| r.to_ascii_lowercase());
    let rule = s.rules.iter_mut().find(|r| {
        r.stage == stage && r.remaining != Some(0) && (r.recipient.is_none() || r.recipient == rcpt)
    });
    let reply = rule.map(|r| {
        if let Some(n) = r.remaining.as_mut() {
            *n -= 1;
        }
        r.reply.clone()
    });
    (reply, delay)
}

const MAX_LINE: usize = 4096;
const MAX_DATA: usize = 20 * 1024 * 1024;

async fn session(
    socket: TcpStream,
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::new(read);
    write
        .write_all(b"220 meisa-testkit ESMTP ready\r\n")
        .await?;

    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    let mut auth_user: Option<String> = None;
    let mut line = Vec::new();

    loop {
        line.clear();
        let n = (&mut read)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        let (verb, arg) = match text.split_once(' ') {
            Some((v, a)) => (v.to_ascii_uppercase(), a.to_string()),
            None => (text.to_ascii_uppercase(), String::new()),
        };
        let reply: String = match verb.as_str() {
            "EHLO" => "250-meisa-testkit\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-SIZE 20971520\r\n250-AUTH PLAIN\r\n250 ENHANCEDSTATUSCODES".into(),
            "HELO" => "250 meisa-testkit".into(),
            "AUTH" => {
                // "AUTH PLAIN <base64(\0user\0pass)>"; any credentials are accepted.
                let b64 = arg.split_whitespace().nth(1).unwrap_or("");
                auth_user = decode_plain_user(b64);
                "235 2.7.0 authenticated".into()
            }
            "NOOP" => "250 2.0.0 ok".into(),
            "RSET" => {
                from = None;
                to.clear();
                "250 2.0.0 reset".into()
            }
            "QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(());
            }
            "MAIL" => {
                lock(&state).mail_commands += 1;
                let (scripted_reply, delay) = scripted(&state, Stage::Mail, None);
                sleep(delay).await;
                match scripted_reply {
                    Some(r) => r,
                    None => {
                        from = Some(angle_addr(&arg));
                        to.clear();
                        "250 2.1.0 sender ok".into()
                    }
                }
            }
            "RCPT" => {
                if from.is_none() {
                    "503 5.5.1 MAIL first".into()
                } else {
                    let addr = angle_addr(&arg);
                    let (scripted_reply, delay) = scripted(&state, Stage::Rcpt, Some(&addr));
                    sleep(delay).await;
                    match scripted_reply {
                        Some(r) => r,
                        None => {
                            to.push(addr);
                            "250 2.1.5 recipient ok".into()
                        }
                    }
                }
            }
            "DATA" => {
                if from.is_none() || to.is_empty() {
                    "503 5.5.1 RCPT first".into()
                } else {
                    let (scripted_reply, delay) = scripted(&state, Stage::Data, None);
                    sleep(delay).await;
                    if let Some(r) = scripted_reply {
                        r
                    } else {
                        write.write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n").await?;
                        let Some(data) = read_data(&mut read).await? else {
                            return Ok(());
                        };
                        let (scripted_reply, delay) = scripted(&state, Stage::DataEnd, None);
                        sleep(delay).await;
                        let reply = scripted_reply.unwrap_or_else(|| "250 2.0.0 queued".into());
                        let code = reply.get(..3).unwrap_or("").to_string();
                        // Like a real server: the message is taken (recorded) before the 250
                        // goes out, so a client that dies right after sending the dot has
                        // still delivered it.
                        {
                            let mut s = lock(&state);
                            s.data_end_replies.push(code.clone());
                            if code.starts_with('2') {
                                s.messages.push(ReceivedMail {
                                    from: from.take().unwrap_or_default(),
                                    to: std::mem::take(&mut to),
                                    data,
                                    auth_user: auth_user.clone(),
                                });
                            }
                        }
                        notify.notify_waiters();
                        write.write_all(format!("{reply}\r\n").as_bytes()).await?;
                        write.flush().await?;
                        from = None;
                        to.clear();
                        continue;
                    }
                }
            }
            "STARTTLS" => "502 5.5.1 TLS not available on the test server".into(),
            "" => continue,
            _ => "500 5.5.2 command not recognized".into(),
        };
        write.write_all(format!("{reply}\r\n").as_bytes()).await?;
        write.flush().await?;
    }
}

async fn sleep(d: Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

/// Reads the DATA section up to the lone ".", undoing dot-stuffing. None when the client left.
async fn read_data<R: tokio::io::AsyncBufRead + Unpin>(
    read: &mut R,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = read.read_until(b'\n', &mut line).await?;
        if n == 0 {
            return Ok(None);
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(Some(data));
        }
        let content = if line.starts_with(b"..") {
            &line[1..]
        } else {
            &line[..]
        };
        if data.len() + content.len() <= MAX_DATA {
            data.extend_from_slice(content);
        }
    }
}

fn decode_plain_user(b64: &str) -> Option<String> {
    // A tiny base64 decoder keeps the test kit free of another dependency.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in b64.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c)? as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    // authzid \0 authcid \0 password
    let parts: Vec<&[u8]> = out.split(|b| *b == 0).collect();
    parts
        .get(1)
        .map(|u| String::from_utf8_lossy(u).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn talk(stream: &mut TcpStream, line: &str) -> String {
        stream.write_all(line.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = stream.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[tokio::test]
    async fn records_a_dot_unstuffed_message_and_follows_the_script() {
        let smtp = SmtpServer::start().await;
        smtp.script(Stage::DataEnd, "451 4.3.0 busy", 1);
        smtp.reject_rcpt("gone@example.com", "550 5.1.1 no such user");
        let mut s = TcpStream::connect(smtp.addr()).await.unwrap();
        let mut greet = vec![0u8; 256];
        let _ = s.read(&mut greet).await.unwrap();
        assert!(talk(&mut s, "EHLO me\r\n").await.starts_with("250-"));
        // (command, the reply code it gets): a refused recipient, then a failed message, then one
        // that goes through.
        let script = [
            ("MAIL FROM:<a@b.test>\r\n", "250"),
            ("RCPT TO:<gone@example.com>\r\n", "550"),
            ("RCPT TO:<c@d.test>\r\n", "250"),
            ("DATA\r\n", "354"),
            ("Subject: x\r\n\r\n..dot\r\n.\r\n", "451"),
            ("MAIL FROM:<a@b.test>\r\n", "250"),
            ("RCPT TO:<c@d.test>\r\n", "250"),
            ("DATA\r\n", "354"),
            ("Subject: x\r\n\r\n..dot\r\n.\r\n", "250"),
        ];
        for (i, (command, code)) in script.into_iter().enumerate() {
            let reply = talk(&mut s, command).await;
            assert!(reply.starts_with(code), "{command:?} answered {reply:?}");
            if i == 4 {
                assert_eq!(smtp.message_count(), 0, "a 451 keeps nothing");
            }
        }
        let mails = smtp.wait_for(1, Duration::from_secs(5)).await;
        assert_eq!(mails[0].from, "a@b.test");
        assert_eq!(mails[0].to, vec!["c@d.test".to_string()]);
        assert_eq!(mails[0].data_str(), "Subject: x\r\n\r\n.dot\r\n");
        assert_eq!(mails[0].header("subject").as_deref(), Some("x"));
        assert_eq!(smtp.data_end_replies(), vec!["451", "250"]);
        assert!(talk(&mut s, "QUIT\r\n").await.starts_with("221"));
    }

    #[test]
    fn decodes_auth_plain() {
        // "\0user\0pass"
        assert_eq!(
            decode_plain_user("AHVzZXIAcGFzcw==").as_deref(),
            Some("user")
        );
    }
}
