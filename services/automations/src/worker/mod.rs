//! Background work: the change consumer, the action workers, the sequence scheduler and the
//! sweep of clock-driven conditions. Each claims its work in Postgres (`FOR UPDATE SKIP LOCKED`,
//! leases), so any number of replicas can run side by side.

pub mod actions;
pub mod consumer;
pub mod fire;
pub mod process;
pub mod scheduler;
pub mod sweep;

use std::{future::Future, sync::Arc, time::Duration};

use tokio::{sync::Notify, task::JoinSet};
use tokio_util::sync::CancellationToken;

pub use fire::Wake;

/// In-process wake-ups: a committed firing wakes the worker that has new work at once instead of
/// at its next poll (other replicas find it by polling).
#[derive(Clone, Default)]
pub struct Wakers {
    pub jobs: Arc<Notify>,
    pub scheduler: Arc<Notify>,
    pub sweep: Arc<Notify>,
}

impl Wakers {
    pub fn wake(&self, w: Wake) {
        if w.jobs {
            self.jobs.notify_one();
        }
        if w.scheduler {
            self.scheduler.notify_one();
        }
        if w.sweep {
            self.sweep.notify_one();
        }
    }
}

/// Exponential backoff for transient failures: 1s, 2s, 4s… capped at 5 minutes.
pub fn backoff(attempts: i32) -> Duration {
    let exp = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    Duration::from_secs(1u64 << exp.min(9)).min(Duration::from_secs(300))
}

pub fn chrono(d: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX)
}

/// Claims work and runs up to `concurrency` items at once: one claim query per free batch of
/// slots, each item in its own task. Waits for a wake-up or `poll` when nothing is due. On
/// shutdown it stops claiming and waits for the items in hand (claims are made only for free
/// slots, so nothing claimed is left unstarted).
pub async fn dispatch<T, C, CF, R, RF>(
    concurrency: usize,
    poll: Duration,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
    what: &'static str,
    claim: C,
    run: R,
) where
    T: Send + 'static,
    C: Fn(i64) -> CF,
    CF: Future<Output = Result<Vec<T>, sqlx::Error>>,
    R: Fn(T) -> RF,
    RF: Future<Output = ()> + Send + 'static,
{
    let mut running: JoinSet<()> = JoinSet::new();
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        while running.try_join_next().is_some() {}
        let free = concurrency.saturating_sub(running.len());
        if free == 0 {
            tokio::select! {
                _ = running.join_next() => {}
                _ = shutdown.cancelled() => {}
            }
            continue;
        }
        let claimed = match claim(i64::try_from(free).unwrap_or(1)).await {
            Ok(c) => {
                failures = 0;
                c
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, "claiming {what} failed");
                Vec::new()
            }
        };
        let full = claimed.len() == free;
        for item in claimed {
            running.spawn(run(item));
        }
        if full {
            continue;
        }
        let pause = if failures > 0 {
            backoff(i32::try_from(failures).unwrap_or(i32::MAX)).min(poll * 10)
        } else {
            poll
        };
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = wake.notified() => {}
            _ = tokio::time::sleep(pause) => {}
            Some(_) = running.join_next(), if !running.is_empty() && failures == 0 => {}
        }
    }
    while running.join_next().await.is_some() {}
}
