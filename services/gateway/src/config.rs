//! Everything the gateway reads from the environment (DESIGN §7), validated once at start so a
//! bad value stops the process with the variable's name instead of failing on the first request.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use meisa_runtime::config::{self, ConfigError, Secret};

pub const DEFAULT_CONTACTS_URL: &str = "http://127.0.0.1:50051";
pub const DEFAULT_MAILER_URL: &str = "http://127.0.0.1:50053";
pub const DEFAULT_AUTOMATIONS_URL: &str = "http://127.0.0.1:50052";
pub const DEFAULT_HTTP_PORT: u16 = 8080;

#[derive(Clone, Debug)]
pub struct Config {
    /// The gateway's own database (workspaces and API keys).
    pub database_url: Secret,
    /// Where the contacts gRPC service listens, e.g. `http://contacts:50051`.
    pub contacts_url: String,
    /// Where the mailer gRPC service listens, e.g. `http://mailer:50053`.
    pub mailer_url: String,
    /// Where the automations gRPC service listens, e.g. `http://automations:50052`.
    pub automations_url: String,
    /// `127.0.0.1:0` in tests: the OS picks a port, [`crate::Application::port`] tells it.
    pub http_addr: SocketAddr,
    /// How long a verified API key is trusted without asking the database again. This is also
    /// how long a revoked key keeps working on a replica that has it cached.
    pub key_cache_ttl: Duration,
    /// Bound on one call to a backing service, so a stuck dependency becomes a 503, not a hang.
    pub contacts_timeout: Duration,
    pub contacts_connect_timeout: Duration,
    pub mailer_timeout: Duration,
    pub mailer_connect_timeout: Duration,
    pub automations_timeout: Duration,
    pub automations_connect_timeout: Duration,
    pub db_max_connections: u32,
}

impl Config {
    /// A configuration for tests and local tools: loopback, an OS-chosen port, no key cache (so
    /// a revoked key is refused at once). The mailer and automations addresses are ones where nothing
    /// listens (so a test never reaches a service some developer runs on the default port); set
    /// `mailer_url` / `automations_url` to use one.
    pub fn local(database_url: impl Into<String>, contacts_url: impl Into<String>) -> Self {
        Self {
            database_url: Secret::new(database_url),
            contacts_url: contacts_url.into(),
            mailer_url: "http://127.0.0.1:1".into(),
            automations_url: "http://127.0.0.1:1".into(),
            http_addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            key_cache_ttl: Duration::ZERO,
            contacts_timeout: Duration::from_secs(10),
            contacts_connect_timeout: Duration::from_secs(2),
            mailer_timeout: Duration::from_secs(10),
            mailer_connect_timeout: Duration::from_secs(2),
            automations_timeout: Duration::from_secs(10),
            automations_connect_timeout: Duration::from_secs(2),
            db_max_connections: 5,
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        let database_url = config::required(
            "DATABASE_URL",
            "set it to the gateway's Postgres database, e.g. postgres://postgres@127.0.0.1:5432/meisa_gateway",
        )?;
        let contacts_url =
            config::optional("MEISA_CONTACTS_URL").unwrap_or_else(|| DEFAULT_CONTACTS_URL.into());
        validate_grpc_url("MEISA_CONTACTS_URL", &contacts_url)?;
        let mailer_url =
            config::optional("MEISA_MAILER_URL").unwrap_or_else(|| DEFAULT_MAILER_URL.into());
        validate_grpc_url("MEISA_MAILER_URL", &mailer_url)?;
        let automations_url = config::optional("MEISA_AUTOMATIONS_URL")
            .unwrap_or_else(|| DEFAULT_AUTOMATIONS_URL.into());
        validate_grpc_url("MEISA_AUTOMATIONS_URL", &automations_url)?;
        // Loopback by default so a developer machine does not expose the API; Kubernetes sets
        // MEISA_HTTP_HOST=0.0.0.0.
        let host: IpAddr = config::parsed("MEISA_HTTP_HOST", IpAddr::V4(Ipv4Addr::LOCALHOST))?;
        let port: u16 = config::parsed("MEISA_HTTP_PORT", DEFAULT_HTTP_PORT)?;
        Ok(Self {
            database_url: Secret::new(database_url),
            contacts_url,
            mailer_url,
            automations_url,
            http_addr: SocketAddr::new(host, port),
            key_cache_ttl: config::duration("MEISA_API_KEY_CACHE_TTL", Duration::from_secs(10))?,
            contacts_timeout: config::duration("MEISA_CONTACTS_TIMEOUT", Duration::from_secs(10))?,
            contacts_connect_timeout: config::duration(
                "MEISA_CONTACTS_CONNECT_TIMEOUT",
                Duration::from_secs(2),
            )?,
            mailer_timeout: config::duration("MEISA_MAILER_TIMEOUT", Duration::from_secs(10))?,
            mailer_connect_timeout: config::duration(
                "MEISA_MAILER_CONNECT_TIMEOUT",
                Duration::from_secs(2),
            )?,
            automations_timeout: config::duration(
                "MEISA_AUTOMATIONS_TIMEOUT",
                Duration::from_secs(10),
            )?,
            automations_connect_timeout: config::duration(
                "MEISA_AUTOMATIONS_CONNECT_TIMEOUT",
                Duration::from_secs(2),
            )?,
            db_max_connections: config::parsed("MEISA_DB_MAX_CONNECTIONS", 10)?,
        })
    }
}

fn validate_grpc_url(name: &str, url: &str) -> Result<(), ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        name: name.into(),
        value: url.into(),
        reason: reason.into(),
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(invalid(
            "must start with http:// or https://, e.g. http://127.0.0.1:50051",
        ));
    }
    tonic::transport::Endpoint::from_shared(url.to_string())
        .map(|_| ())
        .map_err(|e| invalid(&e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_urls_need_a_scheme() {
        assert!(validate_grpc_url("X", "http://127.0.0.1:50051").is_ok());
        assert!(validate_grpc_url("X", "https://contacts.meisa.svc:50051").is_ok());
        let err = validate_grpc_url("MEISA_CONTACTS_URL", "127.0.0.1:50051").unwrap_err();
        assert!(err.to_string().contains("MEISA_CONTACTS_URL"));
    }
}
