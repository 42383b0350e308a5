//! Prometheus metrics (DESIGN §7). Each service records with the `metrics` macros and, when
//! `MEISA_METRICS_ADDR` is set (e.g. `0.0.0.0:9090` in Kubernetes), serves `GET /metrics` there.
//! Unset, the macros cost next to nothing and nothing listens.

use std::net::SocketAddr;

use metrics_exporter_prometheus::PrometheusBuilder;

use crate::config::{self, ConfigError};

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot serve metrics on MEISA_METRICS_ADDR={addr}: {reason}")]
    Install { addr: SocketAddr, reason: String },
}

/// Starts the `/metrics` listener when `MEISA_METRICS_ADDR` is set; returns where it listens.
pub fn install(service: &'static str) -> Result<Option<SocketAddr>, MetricsError> {
    let Some(raw) = config::optional("MEISA_METRICS_ADDR") else {
        return Ok(None);
    };
    let addr: SocketAddr =
        raw.parse()
            .map_err(|e: std::net::AddrParseError| ConfigError::Invalid {
                name: "MEISA_METRICS_ADDR".into(),
                value: raw.clone(),
                reason: format!("{e}; write host:port, e.g. 0.0.0.0:9090"),
            })?;
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .add_global_label("service", service)
        .install()
        .map_err(|e| MetricsError::Install {
            addr,
            reason: e.to_string(),
        })?;
    tracing::info!(%addr, "serving Prometheus metrics at /metrics");
    Ok(Some(addr))
}
