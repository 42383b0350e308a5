//! Starts contacts and gateway as release processes on fresh databases, and runs pgbench.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use meisa_testkit::{Service, TestDb};

pub struct Cluster {
    pub gateway_url: String,
    pub api_key: String,
    pub contacts_db: TestDb,
    _gateway_db: TestDb,
    children: Vec<(&'static str, Service)>,
    prefix: String,
}

fn bin(name: &str) -> String {
    let dir = std::env::var("MEISA_BIN_DIR").unwrap_or_else(|_| "target/release".into());
    format!("{dir}/{name}")
}

fn run(cmd: &mut Command) -> Result<String, Box<dyn std::error::Error>> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

impl Cluster {
    pub async fn start() -> Result<Self, Box<dyn std::error::Error>> {
        let contacts_db = TestDb::create("bench_contacts").await;
        let gateway_db = TestDb::create("bench_gateway").await;
        let prefix = meisa_testkit::unique_name("bench");
        run(Command::new(bin("contacts"))
            .arg("migrate")
            .env("DATABASE_URL", &contacts_db.url)
            .env("REDIS_URL", meisa_testkit::redis_url()))?;
        run(Command::new(bin("gateway"))
            .arg("migrate")
            .env("DATABASE_URL", &gateway_db.url))?;
        let ws = run(Command::new(bin("gateway"))
            .args(["admin", "create-workspace", "--name", "bench"])
            .env("DATABASE_URL", &gateway_db.url))?;
        let ws: serde_json::Value = serde_json::from_str(ws.trim())?;
        let api_key = ws["api_key"].as_str().ok_or("no api_key")?.to_string();

        // Each service binds port 0 and announces what it got (MEISA_ADDR_FILE).
        let mut contacts = Command::new(bin("contacts"));
        contacts
            .arg("serve")
            .env("DATABASE_URL", &contacts_db.url)
            .env("REDIS_URL", meisa_testkit::redis_url())
            .env("MEISA_GRPC_ADDR", "127.0.0.1:0")
            .env("MEISA_STREAM_PREFIX", &prefix)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null());
        let contacts = Service::spawn(contacts).await;
        let mut gateway = Command::new(bin("gateway"));
        gateway
            .arg("serve")
            .env("DATABASE_URL", &gateway_db.url)
            .env("MEISA_CONTACTS_URL", contacts.url("grpc"))
            .env("MEISA_HTTP_HOST", "127.0.0.1")
            .env("MEISA_HTTP_PORT", "0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null());
        let gateway = Service::spawn(gateway).await;
        let cluster = Self {
            gateway_url: gateway.url("http"),
            api_key,
            contacts_db,
            _gateway_db: gateway_db,
            children: vec![("contacts", contacts), ("gateway", gateway)],
            prefix,
        };
        let client = reqwest::Client::new();
        for _ in 0..200 {
            let ready = client
                .get(format!("{}/readyz", cluster.gateway_url))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(cluster);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("the gateway did not become ready".into())
    }

    /// CPU seconds used so far by each service, by Postgres, by Redis and by this process (the
    /// load generator), to show where a phase's time goes on a shared machine.
    pub fn cpu_seconds(&self) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = self
            .children
            .iter()
            .map(|(name, c)| ((*name).to_string(), proc_cpu(c.child.id())))
            .collect();
        for (label, comm) in [("postgres", "postgres"), ("redis", "redis-server")] {
            out.push((
                label.to_string(),
                procs_named(comm).into_iter().map(proc_cpu).sum(),
            ));
        }
        out.push(("load generator".into(), proc_cpu(std::process::id())));
        out
    }

    /// Resident memory of each service process, in KiB.
    pub fn idle_rss(&self) -> Vec<(&'static str, u64)> {
        self.children
            .iter()
            .map(|(name, child)| {
                let status = std::fs::read_to_string(format!("/proc/{}/status", child.child.id()))
                    .unwrap_or_default();
                let kib = status
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                (*name, kib)
            })
            .collect()
    }

    /// The transaction contacts runs for one upsert (lock the matches, write the contact, its
    /// history row and its outbox row), one upsert per transaction, as pgbench runs it. No
    /// NOTIFY: it is no part of upsert-plus-outbox, and it would make the reference slower.
    pub fn pgbench(&self, clients: u32, seconds: u64) -> Result<f64, Box<dyn std::error::Error>> {
        let script = std::env::temp_dir().join(format!("{}.sql", self.prefix));
        std::fs::write(
            &script,
            r#"\set n random(1, 1000000000)
BEGIN;
SELECT id FROM contacts WHERE workspace_id = 'ws_pgbench' AND (email = 'u' || :n || '@example.com' OR external_id = 'x' || :n) FOR UPDATE;
INSERT INTO contacts (workspace_id, id, email, external_id, first_name, subscribed, tags, custom_fields, version, created_at, updated_at)
  VALUES ('ws_pgbench', 'ct_' || :n, 'u' || :n || '@example.com', 'x' || :n, 'Jane', true, '{}', '{"plan": "free", "posts_generated": 3}', 1, now(), now())
  ON CONFLICT (workspace_id, id) DO UPDATE SET custom_fields = EXCLUDED.custom_fields, version = contacts.version + 1, updated_at = now();
INSERT INTO contact_changes (workspace_id, contact_id, version, event_id, payload, occurred_at)
  VALUES ('ws_pgbench', 'ct_' || :n, (SELECT version FROM contacts WHERE workspace_id = 'ws_pgbench' AND id = 'ct_' || :n), gen_random_uuid(), decode(repeat('ab', 120), 'hex'), now());
INSERT INTO outbox (shard, event_id, workspace_id, contact_id, payload)
  VALUES (:n % 16, gen_random_uuid(), 'ws_pgbench', 'ct_' || :n, decode(repeat('ab', 300), 'hex'));
COMMIT;
"#,
        )?;
        let out = run(Command::new("pgbench")
            .args([
                "-n",
                "-c",
                &clients.to_string(),
                "-j",
                "2",
                "-T",
                &seconds.to_string(),
                "-f",
            ])
            .arg(&script)
            .arg(&self.contacts_db.url))?;
        let _ = std::fs::remove_file(&script);
        out.lines()
            .find(|l| l.starts_with("tps = "))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no tps in pgbench output: {out}").into())
    }
}

/// utime + stime, plus the time of children already reaped (cutime + cstime): Postgres backends
/// come and go, and their CPU lands in the postmaster's children counters when they exit.
fn proc_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime, stime, cutime, cstime are 12th to 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = (11..=14)
        .filter_map(|i| f.get(i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

fn procs_named(comm: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        })
        .collect()
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, service) in &mut self.children {
            service.kill();
        }
        let prefix = self.prefix.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(meisa_testkit::clean_redis(&prefix));
            }
        })
        .join();
    }
}
