//! HTTP load against the gateway: fixed connections, each sending requests back to back.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use serde_json::json;

use crate::cluster::Cluster;

pub struct Result {
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap_or_default()
}

pub async fn precreate(
    cluster: &Cluster,
    n: usize,
) -> std::result::Result<usize, Box<dyn std::error::Error>> {
    let c = client();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let contacts: Vec<_> = chunk
            .iter()
            .map(|i| json!({"email": format!("old{i}@example.com"), "external_id": format!("old_{i}"), "custom_fields": {"plan": "free", "posts_generated": 0}}))
            .collect();
        let r = c
            .post(format!(
                "{}/api/v1/contacts/batch-upsert/",
                cluster.gateway_url
            ))
            .bearer_auth(&cluster.api_key)
            .json(&json!({ "contacts": contacts }))
            .send()
            .await?;
        if !r.status().is_success() {
            return Err(format!("pre-create failed: {}", r.status()).into());
        }
    }
    Ok(n)
}

pub async fn single_upserts(
    cluster: &Cluster,
    connections: usize,
    duration: Duration,
    existing: usize,
) -> std::result::Result<Result, Box<dyn std::error::Error>> {
    // Half new contacts, half updates of pre-created ones.
    let body = move |conn: usize, n: u64| {
        if n.is_multiple_of(2) {
            json!({"email": format!("new{conn}_{n}@example.com"), "external_id": format!("new_{conn}_{n}"), "first_name": "Jane", "custom_fields": {"plan": "free"}})
        } else {
            let i = (n as usize / 2) % existing;
            json!({"email": format!("old{i}@example.com"), "external_id": format!("old_{i}"), "custom_fields": {"posts_generated": n}})
        }
    };
    drive(
        cluster,
        "/api/v1/contacts/upsert/",
        connections,
        duration,
        1,
        body,
    )
    .await
}

pub async fn batch_upserts(
    cluster: &Cluster,
    connections: usize,
    size: usize,
    duration: Duration,
) -> std::result::Result<Result, Box<dyn std::error::Error>> {
    let body = move |conn: usize, n: u64| {
        let contacts: Vec<_> = (0..size)
            .map(|i| json!({"email": format!("b{conn}_{n}_{i}@example.com"), "external_id": format!("b_{conn}_{n}_{i}"), "custom_fields": {"plan": "free", "posts_generated": i}}))
            .collect();
        json!({ "contacts": contacts })
    };
    drive(
        cluster,
        "/api/v1/contacts/batch-upsert/",
        connections,
        duration,
        size as u64,
        body,
    )
    .await
}

/// `connections` keep-alive connections posting `body(connection, n)` to `path` back to back
/// until `duration` is over; `items` contacts per request.
async fn drive(
    cluster: &Cluster,
    path: &str,
    connections: usize,
    duration: Duration,
    items: u64,
    body: impl Fn(usize, u64) -> serde_json::Value + Clone + Send + 'static,
) -> std::result::Result<Result, Box<dyn std::error::Error>> {
    let url = format!("{}{path}", cluster.gateway_url);
    let counter = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for conn in 0..connections {
        let (url, key, counter) = (url.clone(), cluster.api_key.clone(), counter.clone());
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let c = client();
            let mut hist = Histogram::<u64>::new(3).map_err(|e| e.to_string())?;
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let body = body(conn, counter.fetch_add(1, Ordering::Relaxed));
                let start = Instant::now();
                match c.post(&url).bearer_auth(&key).json(&body).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        let _ = hist.record(start.elapsed().as_micros() as u64);
                    }
                    _ => errors += 1,
                }
            }
            Ok::<_, String>((hist, errors))
        }));
    }
    summarize(tasks, duration, items).await
}

type Worker = tokio::task::JoinHandle<std::result::Result<(Histogram<u64>, u64), String>>;

async fn summarize(
    tasks: Vec<Worker>,
    duration: Duration,
    items_per_request: u64,
) -> std::result::Result<Result, Box<dyn std::error::Error>> {
    let mut all = Histogram::<u64>::new(3)?;
    let mut errors = 0;
    for t in tasks {
        let (h, e) = t.await??;
        all.add(h)?;
        errors += e;
    }
    Ok(Result {
        per_second: (all.len() * items_per_request) as f64 / duration.as_secs_f64(),
        p50_ms: all.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: all.value_at_quantile(0.99) as f64 / 1000.0,
        errors,
    })
}
