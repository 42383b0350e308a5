//! Everything the gateway reads from the environment (DESIGN §7), validated once at start so a
//! bad value stops the process with the variable's name instead of failing on the first request.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use crate::accounts::SignInLimits;
use meisa_runtime::{
    client::Timeouts,
    config::{self, ConfigError, Secret},
};

pub const DEFAULT_CONTACTS_URL: &str = "http://127.0.0.1:50051";
pub const DEFAULT_MAILER_URL: &str = "http://127.0.0.1:50053";
pub const DEFAULT_AUTOMATIONS_URL: &str = "http://127.0.0.1:50052";
pub const DEFAULT_HTTP_PORT: u16 = 8080;

/// Bounds on the calls to a service, so a stuck dependency becomes a 503, not a hang.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone, Debug)]
pub struct Config {
    /// The gateway's own database (workspaces and API keys).
    pub database_url: Secret,
    /// The contacts gRPC service, e.g. `http://contacts:50051`.
    pub contacts: Upstream,
    /// The mailer gRPC service, e.g. `http://mailer:50053`.
    pub mailer: Upstream,
    /// The automations gRPC service, e.g. `http://automations:50052`.
    pub automations: Upstream,
    /// `127.0.0.1:0` in tests: the OS picks a port, [`crate::Application::port`] tells it.
    pub http_addr: SocketAddr,
    /// How long a verified API key is trusted without asking the database again. This is also
    /// how long a revoked key keeps working on a replica that has it cached.
    pub key_cache_ttl: Duration,
    pub db_max_connections: u32,
    /// Where people open the dashboard (`MEISA_PUBLIC_URL`, the same variable the mailer builds
    /// unsubscribe links from); https makes the session cookie `Secure`.
    pub public_url: String,
    /// `MEISA_SIGN_IN_MAX_FAILURES` per account, `MEISA_SIGN_IN_MAX_FAILURES_PER_ADDRESS` per
    /// client address, within `MEISA_SIGN_IN_WINDOW`.
    pub sign_in: SignInLimits,
}

/// Where one service listens and how long the gateway waits for it.
#[derive(Clone, Debug)]
pub struct Upstream {
    pub url: String,
    pub timeouts: Timeouts,
}

impl Upstream {
    fn with_default_timeouts(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            timeouts: Timeouts {
                connect: CONNECT_TIMEOUT,
                call: CALL_TIMEOUT,
            },
        }
    }

    /// `MEISA_{NAME}_URL`, `MEISA_{NAME}_TIMEOUT` and `MEISA_{NAME}_CONNECT_TIMEOUT`.
    fn from_env(name: &str, default_url: &str) -> Result<Self, ConfigError> {
        let url_var = format!("MEISA_{name}_URL");
        let url = config::optional(&url_var).unwrap_or_else(|| default_url.into());
        validate_grpc_url(&url_var, &url)?;
        Ok(Self {
            url,
            timeouts: Timeouts {
                connect: config::duration(
                    &format!("MEISA_{name}_CONNECT_TIMEOUT"),
                    CONNECT_TIMEOUT,
                )?,
                call: config::duration(&format!("MEISA_{name}_TIMEOUT"), CALL_TIMEOUT)?,
            },
        })
    }
}

impl Config {
    /// A configuration for tests and local tools: loopback, an OS-chosen port, no key cache (so
    /// a revoked key is refused at once). The mailer and automations addresses are ones where
    /// nothing listens (so a test never reaches a service some developer runs on the default
    /// port); set `mailer.url` / `automations.url` to use one.
    pub fn local(database_url: impl Into<String>, contacts_url: impl Into<String>) -> Self {
        Self {
            database_url: Secret::new(database_url),
            contacts: Upstream::with_default_timeouts(contacts_url),
            mailer: Upstream::with_default_timeouts("http://127.0.0.1:1"),
            automations: Upstream::with_default_timeouts("http://127.0.0.1:1"),
            http_addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            key_cache_ttl: Duration::ZERO,
            db_max_connections: 5,
            public_url: "http://127.0.0.1:8080".into(),
            sign_in: SignInLimits::default(),
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        let database_url = config::required(
            "DATABASE_URL",
            "set it to the gateway's Postgres database, e.g. postgres://postgres@127.0.0.1:5432/meisa_gateway",
        )?;
        let contacts = Upstream::from_env("CONTACTS", DEFAULT_CONTACTS_URL)?;
        let mailer = Upstream::from_env("MAILER", DEFAULT_MAILER_URL)?;
        let automations = Upstream::from_env("AUTOMATIONS", DEFAULT_AUTOMATIONS_URL)?;
        // Loopback by default so a developer machine does not expose the API; Kubernetes sets
        // MEISA_HTTP_HOST=0.0.0.0.
        let host: IpAddr = config::parsed("MEISA_HTTP_HOST", IpAddr::V4(Ipv4Addr::LOCALHOST))?;
        let port: u16 = config::parsed("MEISA_HTTP_PORT", DEFAULT_HTTP_PORT)?;
        Ok(Self {
            database_url: Secret::new(database_url),
            contacts,
            mailer,
            automations,
            http_addr: SocketAddr::new(host, port),
            key_cache_ttl: config::duration("MEISA_API_KEY_CACHE_TTL", Duration::from_secs(10))?,
            db_max_connections: config::parsed("MEISA_DB_MAX_CONNECTIONS", 10)?,
            public_url: public_url()?,
            sign_in: SignInLimits {
                per_account: config::parsed(
                    "MEISA_SIGN_IN_MAX_FAILURES",
                    SignInLimits::default().per_account,
                )?,
                per_address: config::parsed(
                    "MEISA_SIGN_IN_MAX_FAILURES_PER_ADDRESS",
                    SignInLimits::default().per_address,
                )?,
                window: config::duration("MEISA_SIGN_IN_WINDOW", SignInLimits::default().window)?,
            },
        })
    }
}

fn public_url() -> Result<String, ConfigError> {
    let url =
        config::optional("MEISA_PUBLIC_URL").unwrap_or_else(|| "http://127.0.0.1:8080".into());
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ConfigError::Invalid {
            name: "MEISA_PUBLIC_URL".into(),
            value: url,
            reason: "must start with http:// or https://, e.g. https://meisa.example.com".into(),
        });
    }
    Ok(url)
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
