//! What every service binary does (DESIGN §7): `serve` (configuration from the environment, until
//! SIGTERM or ctrl-c) and `migrate` (create the database if missing, apply the migrations, exit;
//! what Kubernetes runs as a Job, with `DATABASE_URL` only). A service's `main.rs` says only what
//! is its own: its name, how it migrates, and how it builds and runs.
//!
//! ```text
//! fn main() -> ExitCode {
//!     meisa_runtime::cli::main(Binary { name: "contacts", about: "…", database: "meisa_contacts" },
//!         |url| async move { Ok(migrate(&url).await?) },
//!         |serving| async move {
//!             let app = Application::build(Config::from_env()?).await?;
//!             serving.listening(&[("grpc", app.grpc_addr())]);
//!             Ok(app.run(serving.shutdown).await?)
//!         })
//! }
//! ```

use std::{future::Future, net::SocketAddr, process::ExitCode};

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// Any failure of a binary's own, printed once for the operator.
pub type Failure = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone, Copy, Debug, Subcommand)]
pub enum Command {
    /// Serve until SIGTERM or ctrl-c; configuration comes from the environment.
    Serve,
    /// Create the database if it is missing, apply the migrations and exit (needs DATABASE_URL
    /// only).
    Migrate,
}

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// A service binary as its `--help` shows it.
#[derive(Clone, Copy, Debug)]
pub struct Binary {
    pub name: &'static str,
    pub about: &'static str,
    /// The database's usual name, for the hint when `DATABASE_URL` is missing.
    pub database: &'static str,
}

/// What `serve` is given: the token that SIGTERM cancels, and a way to say where it listens.
pub struct Serving {
    pub shutdown: CancellationToken,
    metrics: Option<SocketAddr>,
}

impl Serving {
    /// Reports the bound addresses (and the metrics listener) to whoever started the process
    /// (see [`crate::announce`]).
    pub fn listening(&self, addrs: &[(&str, SocketAddr)]) {
        let mut all = addrs.to_vec();
        all.extend(self.metrics.map(|m| ("metrics", m)));
        crate::announce::addresses(&all);
    }
}

/// Parses the command line and runs it on a new runtime: telemetry, then `migrate` or
/// `serve` (with metrics on `MEISA_METRICS_ADDR` and the shutdown signal). A failure is logged
/// and printed on stderr as `{name}: {error}`, and the process exits non-zero.
pub fn main<M, MF, S, SF>(binary: Binary, migrate: M, serve: S) -> ExitCode
where
    M: FnOnce(String) -> MF,
    MF: Future<Output = Result<(), Failure>>,
    S: FnOnce(Serving) -> SF,
    SF: Future<Output = Result<(), Failure>>,
{
    let matches = Cli::command()
        .name(binary.name)
        .about(binary.about)
        .get_matches();
    let command = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli.command,
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{}: cannot start the async runtime: {e}", binary.name);
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(binary, command, migrate, serve))
}

/// [`main`] for a binary that parses its own command line (the gateway has more subcommands).
pub async fn run<M, MF, S, SF>(binary: Binary, command: Command, migrate: M, serve: S) -> ExitCode
where
    M: FnOnce(String) -> MF,
    MF: Future<Output = Result<(), Failure>>,
    S: FnOnce(Serving) -> SF,
    SF: Future<Output = Result<(), Failure>>,
{
    let _telemetry = match crate::telemetry::init(binary.name) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("{}: {e}", binary.name);
            return ExitCode::FAILURE;
        }
    };
    let result: Result<(), Failure> = async {
        match command {
            Command::Migrate => {
                let hint = format!(
                    "set it to the {} database, e.g. postgres://postgres@127.0.0.1:5432/{}",
                    binary.name, binary.database
                );
                let url = crate::config::required("DATABASE_URL", &hint)?;
                migrate(url).await?;
                tracing::info!("{} migrations applied", binary.name);
                Ok(())
            }
            Command::Serve => {
                let metrics = crate::metrics::install(binary.name).await?;
                let shutdown = crate::shutdown::on_signal();
                serve(Serving { shutdown, metrics }).await
            }
        }
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{}: {e}", binary.name);
            // Also on stderr: the log may be JSON for machines; this line is for the operator.
            eprintln!("{}: {e}", binary.name);
            ExitCode::FAILURE
        }
    }
}
