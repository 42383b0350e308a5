use clap::{Parser, Subcommand};
use meisa_contacts::{Application, Config, migrate};

#[derive(Parser)]
#[command(
    name = "contacts",
    about = "Meisa contacts service: contact state, change detection, change stream"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve gRPC and relay changes to Redis.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let _telemetry = match meisa_runtime::telemetry::init("contacts") {
        Ok(g) => g,
        Err(e) => {
            eprintln!("contacts: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = async {
        match cli.command {
            Command::Migrate => {
                // Migrating needs the database only, so a Kubernetes Job needs no Redis.
                let url = meisa_runtime::config::required(
                    "DATABASE_URL",
                    "set it to the contacts database, e.g. postgres://postgres@127.0.0.1:5432/meisa_contacts",
                )?;
                migrate(&url).await?;
                tracing::info!("contacts migrations applied");
                Ok(())
            }
            Command::Serve => {
                let config = Config::from_env()?;
                let metrics = meisa_runtime::metrics::install("contacts").await?;
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
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("contacts: {e}");
            eprintln!("contacts: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
