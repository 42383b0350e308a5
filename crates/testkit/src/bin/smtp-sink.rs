//! The test SMTP server as its own process, for a mailer run by hand (`MEISA_SMTP_URL=
//! smtp://127.0.0.1:2525`) or a test that needs the server to outlive another process:
//!
//! `cargo run -p meisa-testkit --bin smtp-sink -- [127.0.0.1:2525]`
//!
//! Prints one line per accepted message (envelope, Subject, Message-ID); stops on ctrl-c.

use std::time::Duration;

use meisa_testkit::smtp::SmtpServer;

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:2525".into());
    let server = SmtpServer::start_on(&addr).await;
    println!("smtp-sink listening on {}", server.url());
    let mut shown = 0;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        let mails = server.messages();
        for m in &mails[shown..] {
            println!(
                "from={} to={} subject={:?} message-id={}",
                m.from,
                m.to.join(","),
                m.header("Subject").unwrap_or_default(),
                m.header("Message-ID").unwrap_or_default()
            );
        }
        shown = mails.len();
    }
}
