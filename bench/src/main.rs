//! `make bench`: the performance figures of DESIGN §9, measured on this machine, printed as a
//! table. Starts the release binaries as processes on fresh databases, so the numbers include
//! every hop a product backend's request takes. Targets live here, never in tests.
//!
//! BENCH_SECONDS (default 10) sets each load phase's length.

mod cluster;
mod load;

use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let phase = Duration::from_secs(seconds);
    eprintln!("starting contacts and gateway (release builds) on fresh databases…");
    let cluster = cluster::Cluster::start().await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = cluster.idle_rss();

    eprintln!("pre-creating contacts for the 'updated' half…");
    let existing = load::precreate(&cluster, 5_000).await?;

    eprintln!("single upserts: 64 keep-alive connections, half new, half updated, {seconds}s…");
    let cpu_before = cluster.cpu_seconds();
    let single = load::single_upserts(&cluster, 64, phase, existing).await?;
    let cpu_after = cluster.cpu_seconds();

    eprintln!(
        "pgbench: the same upsert-plus-outbox transaction, one per transaction, 64 clients, {seconds}s…"
    );
    let pg = cluster.pgbench(64, seconds)?;

    eprintln!("batch upserts of 1,000 contacts, 4 connections, {seconds}s…");
    let batch = load::batch_upserts(&cluster, 4, 1000, phase).await?;

    println!();
    println!("| benchmark | result | target (DESIGN §9) |");
    println!("|---|---|---|");
    println!(
        "| single upsert via gateway, 64 conns | {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, {} errors | ≥ pgbench below, p99 ≤ 25 ms |",
        single.per_second, single.p50_ms, single.p99_ms, single.errors
    );
    println!("| pgbench, same txn, one upsert per txn, 64 clients | {pg:.0} tps | reference |");
    println!(
        "| batch upsert via gateway (1,000 per request) | {:.0} contacts/s, p99 {:.0} ms per request | ≥ 10,000/s |",
        batch.per_second, batch.p99_ms
    );
    for (name, kib) in idle {
        println!(
            "| idle RSS, {name} | {:.1} MiB | < 64 MiB |",
            kib as f64 / 1024.0
        );
    }
    let cpu: Vec<String> = cpu_before
        .iter()
        .zip(&cpu_after)
        .map(|((name, a), (_, b))| format!("{name} {:.0}%", (b - a) / phase.as_secs_f64() * 100.0))
        .collect();
    println!();
    println!(
        "CPU during single upserts (100% = one core): {}",
        cpu.join(", ")
    );
    let meets = |ok: bool| if ok { "meets" } else { "misses" };
    println!(
        "single upserts: throughput {} the target ({:.2}× pgbench); p99 {:.1} ms {} the 25 ms target.",
        meets(single.per_second >= pg),
        single.per_second / pg.max(1.0),
        single.p99_ms,
        meets(single.p99_ms <= 25.0)
    );
    Ok(())
}
