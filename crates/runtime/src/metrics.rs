//! Prometheus metrics (DESIGN §7). Each service records with the `metrics` macros and, when
//! `MEISA_METRICS_ADDR` is set (e.g. `0.0.0.0:9090` in Kubernetes, `127.0.0.1:0` in tests),
//! serves `GET /metrics` there. Unset, the macros cost next to nothing and nothing listens.
//!
//! The listener is bound here rather than by the exporter so that port 0 works: the address it
//! got is returned, and [`crate::announce`] can report it.

use std::{net::SocketAddr, time::Duration};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

use crate::config::{self, ConfigError};

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot serve metrics on MEISA_METRICS_ADDR={addr}: {reason}")]
    Install { addr: SocketAddr, reason: String },
}

/// Starts the `/metrics` listener when `MEISA_METRICS_ADDR` is set; returns where it listens.
/// Call it from inside the runtime.
pub async fn install(service: &'static str) -> Result<Option<SocketAddr>, MetricsError> {
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
    let failed = |reason: String| MetricsError::Install { addr, reason };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let bound = listener.local_addr().map_err(|e| failed(e.to_string()))?;
    let handle = PrometheusBuilder::new()
        .add_global_label("service", service)
        .install_recorder()
        .map_err(|e| failed(e.to_string()))?;
    tokio::spawn(serve(listener, handle));
    tracing::info!(addr = %bound, "serving Prometheus metrics at /metrics");
    Ok(Some(bound))
}

/// A scrape is one short request; every connection gets the current text and is closed.
async fn serve(listener: TcpListener, handle: PrometheusHandle) {
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
            let Ok(Ok(n)) = read else { return };
            let request = String::from_utf8_lossy(&buf[..n]);
            let response = if request.starts_with("GET /metrics") {
                let body = handle.render();
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".into()
            };
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}
