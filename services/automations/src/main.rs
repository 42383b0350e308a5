//! `automations serve` runs the service; `automations migrate` creates the database when missing
//! and applies the migrations (a Kubernetes Job; it needs only DATABASE_URL).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use meisa_automations::{Application, Config, migrate};

#[derive(Parser)]
#[command(
    name = "automations",
    about = "Meisa automations: triggers, conditions, actions, sequences"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve gRPC, consume contact changes and run actions, sequences and sweeps until SIGTERM.
    Serve,
    /// Create the database if needed, apply the migrations and exit.
    Migrate,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let _telemetry = match meisa_runtime::telemetry::init("automations") {
        Ok(g) => g,
        Err(e) => {
            eprintln!("automations: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = async {
        match cli.command {
            Command::Migrate => {
                let url = meisa_runtime::config::required(
                    "DATABASE_URL",
                    "set it to the automations database, e.g. postgres://postgres@127.0.0.1:5432/meisa_automations",
                )?;
                migrate(&url).await?;
                tracing::info!("automations migrations applied");
                Ok::<(), meisa_automations::StartError>(())
            }
            Command::Serve => {
                let config = Config::from_env()?;
                let metrics = meisa_runtime::metrics::install("automations").await?;
                let shutdown = meisa_runtime::shutdown::on_signal();
                let app = Application::build(config).await?;
                let mut addrs = vec![("grpc", app.grpc_addr())];
                addrs.extend(metrics.map(|m| ("metrics", m)));
                meisa_runtime::announce::addresses(&addrs);
                app.run(shutdown).await
            }
        }
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("automations: {e}");
            eprintln!("automations: {e}");
            ExitCode::FAILURE
        }
    }
}
