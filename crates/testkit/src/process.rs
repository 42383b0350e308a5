//! Services started as real processes, on ports they pick themselves: each is told to listen on
//! port 0 and to write the addresses it got to `MEISA_ADDR_FILE` (see
//! `meisa_runtime::announce`), which [`Service::spawn`] waits for. No port is chosen before the
//! process binds it, so a parallel test cannot take it meanwhile.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command},
    time::Duration,
};

pub struct Service {
    pub child: Child,
    /// What the process announced: `grpc`, `http`, `metrics`…
    pub addrs: HashMap<String, SocketAddr>,
    file: PathBuf,
}

impl Service {
    /// Starts `cmd` with `MEISA_ADDR_FILE` set and waits (up to 60 s: a debug build starting
    /// while the machine is busy) until it announced where it listens. Panics with the process's
    /// exit status when it dies first.
    pub async fn spawn(mut cmd: Command) -> Service {
        let file = std::env::temp_dir().join(format!("{}.addrs.json", crate::unique_name("meisa")));
        let mut child = cmd
            .env("MEISA_ADDR_FILE", &file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(addrs) = std::fs::read_to_string(&file).ok().and_then(|t| parse(&t)) {
                return Service { child, addrs, file };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{cmd:?} exited with {status} before it listened");
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = child.kill();
                panic!("{cmd:?} did not announce its addresses within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn addr(&self, name: &str) -> SocketAddr {
        *self
            .addrs
            .get(name)
            .unwrap_or_else(|| panic!("the process announced no {name} address: {:?}", self.addrs))
    }

    /// `http://127.0.0.1:port` of an announced address, for a gRPC or HTTP client.
    pub fn url(&self, name: &str) -> String {
        format!("http://{}", self.addr(name))
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.file);
    }
}

/// `{"grpc": "127.0.0.1:41234", …}`, flat and written by us: a small reader, no JSON crate.
fn parse(text: &str) -> Option<HashMap<String, SocketAddr>> {
    let inner = text.trim().strip_prefix('{')?.strip_suffix('}')?;
    inner
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once(':')?;
            let k = k.trim().trim_matches('"').to_string();
            let v = v.trim().trim_matches('"').parse().ok()?;
            Some((k, v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_what_announce_writes() {
        let m = super::parse(r#"{"grpc": "127.0.0.1:41234", "metrics": "127.0.0.1:9"}"#).unwrap();
        assert_eq!(m["grpc"].port(), 41234);
        assert_eq!(m["metrics"].port(), 9);
        assert!(super::parse("{\"grpc\": ").is_none());
    }
}
