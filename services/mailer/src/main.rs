//! `mailer serve` runs the service; `mailer migrate` applies the migrations (a Kubernetes Job).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "mailer",
    about = "Meisa mailer: templates, messages, suppressions and delivery"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve gRPC and run the delivery workers until SIGTERM or ctrl-c.
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let _telemetry = match meisa_runtime::telemetry::init("mailer") {
        Ok(g) => g,
        Err(e) => {
            eprintln!("mailer: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Migrate => match meisa_runtime::config::required(
            "DATABASE_URL",
            "set it to the mailer's Postgres database",
        ) {
            Ok(url) => meisa_mailer::migrate(&url).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        },
        Command::Serve => serve().await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // stderr, once: the log may be JSON for machines; this line is for the operator.
            eprintln!("mailer: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> Result<(), String> {
    let config = meisa_mailer::Config::from_env().map_err(|e| e.to_string())?;
    let app = meisa_mailer::Application::build(config)
        .await
        .map_err(|e| e.to_string())?;
    meisa_runtime::announce::addresses(&[("grpc", app.grpc_addr())]);
    app.run(meisa_runtime::shutdown::on_signal())
        .await
        .map_err(|e| e.to_string())
}
