//! One telemetry setup for every service: readable text logs in development, JSON when
//! `MEISA_LOG_FORMAT=json`, OTLP trace export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and W3C
//! trace context carried across gRPC calls and stream entries.
//!
//! A tracer provider is installed even without an exporter, so that every request has a trace id
//! and change events carry a `traceparent` that a consumer can continue.

use std::collections::HashMap;

use opentelemetry::{
    global,
    propagation::{Extractor, Injector},
    trace::TracerProvider as _,
};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("OTEL_EXPORTER_OTLP_ENDPOINT is set but the OTLP exporter cannot start: {0}")]
    Exporter(String),
    #[error("telemetry was already initialised: {0}")]
    Init(String),
}

/// Flushes spans on drop; keep it alive for the whole of `main`.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("telemetry: flushing spans failed: {e}");
        }
    }
}

pub fn init(service: &'static str) -> Result<TelemetryGuard, TelemetryError> {
    global::set_text_map_propagator(TraceContextPropagator::new());

    let mut builder = SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(service).build());
    if std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").is_ok_and(|v| !v.is_empty()) {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    global::set_tracer_provider(provider.clone());
    // Separate filters: RUST_LOG decides what is logged, never which spans exist, so a quiet
    // log level still carries traces (and every change event its traceparent).
    let trace_filter = EnvFilter::try_new(
        std::env::var("MEISA_TRACE_FILTER")
            .unwrap_or_else(|_| "info,h2=warn,hyper=warn,tower=warn,sqlx=warn".into()),
    )
    .unwrap_or_else(|_| EnvFilter::new("info"));
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(service))
        .with_filter(trace_filter);

    let log_filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,h2=warn,tower=warn,hyper=warn"));
    let json = std::env::var("MEISA_LOG_FORMAT").is_ok_and(|v| v == "json");
    let logs = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .compact()
            .with_target(false)
            .boxed()
    };
    let result = tracing_subscriber::registry()
        .with(otel)
        .with(logs.with_filter(log_filter))
        .try_init();
    result.map_err(|e| TelemetryError::Init(e.to_string()))?;
    Ok(TelemetryGuard { provider })
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);
impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            http::header::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(k, v);
        }
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);
impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The W3C `traceparent` of the current span ("" when there is none).
pub fn current_traceparent() -> String {
    let cx = Span::current().context();
    let mut map = HashMap::new();
    global::get_text_map_propagator(|p| p.inject_context(&cx, &mut map));
    map.remove("traceparent").unwrap_or_default()
}

/// Makes `span` a child of the trace a `traceparent` names (from a stream entry, say).
pub fn set_parent_from_traceparent(span: &Span, traceparent: &str) {
    if traceparent.is_empty() {
        return;
    }
    let map = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    let cx = global::get_text_map_propagator(|p| p.extract(&map));
    let _ = span.set_parent(cx);
}

pub fn set_parent_from_headers(span: &Span, headers: &http::HeaderMap) {
    let cx = global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)));
    let _ = span.set_parent(cx);
}

pub fn inject_headers(headers: &mut http::HeaderMap) {
    let cx = Span::current().context();
    global::get_text_map_propagator(|p| p.inject_context(&cx, &mut HeaderInjector(headers)));
}

/// A tonic client interceptor that carries the current trace to the server.
pub fn propagate_trace(mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    let tp = current_traceparent();
    if let Ok(v) = tp.parse() {
        req.metadata_mut().insert("traceparent", v);
    }
    Ok(req)
}
