//! Background work: the change consumer, the action workers, the sequence scheduler and the
//! sweep of clock-driven conditions. Each claims its work in Postgres (`FOR UPDATE SKIP LOCKED`,
//! leases), so any number of replicas can run side by side.

pub mod actions;
pub mod consumer;
pub mod fire;
pub mod process;
pub mod scheduler;
pub mod sweep;

use std::{sync::Arc, time::Duration};

use tokio::sync::Notify;

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
