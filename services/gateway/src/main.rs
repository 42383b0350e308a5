use std::process::ExitCode;

use clap::{Parser, Subcommand};
use meisa_gateway::{Application, Config, admin};
use serde::Serialize;

/// The Meisa gateway: public HTTP/JSON API and operator commands.
#[derive(Parser)]
#[command(name = "gateway", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (env: DATABASE_URL, MEISA_CONTACTS_URL, MEISA_MAILER_URL,
    /// MEISA_AUTOMATIONS_URL, MEISA_HTTP_HOST, MEISA_HTTP_PORT).
    Serve,
    /// Apply the database migrations and exit (env: DATABASE_URL).
    Migrate,
    /// Operator commands against the gateway database (env: DATABASE_URL). Each prints one JSON
    /// line on stdout.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a workspace and its first API key: {"workspace_id": "ws_…", "api_key": "meisa_sk_…"}.
    CreateWorkspace {
        #[arg(long)]
        name: String,
    },
    /// Create another API key for a workspace (for rotation).
    CreateKey {
        #[arg(long)]
        workspace: String,
    },
    /// List a workspace's keys by prefix (keys themselves are never stored).
    ListKeys {
        #[arg(long)]
        workspace: String,
    },
    /// Revoke the key starting with this prefix (meisa_sk_ + at least 8 characters) or the whole key.
    RevokeKey {
        #[arg(long)]
        key_prefix: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gateway: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve => serve().await,
            Command::Migrate => migrate().await,
            Command::Admin { command } => run_admin(command).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("gateway: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> Result<(), String> {
    let _telemetry = meisa_runtime::telemetry::init("gateway").map_err(|e| e.to_string())?;
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let app = Application::build(config)
        .await
        .map_err(|e| e.to_string())?;
    meisa_runtime::announce::addresses(&[("http", app.addr())]);
    let shutdown = meisa_runtime::shutdown::on_signal();
    app.run(shutdown)
        .await
        .map_err(|e| format!("HTTP server failed: {e}"))
}

async fn migrate() -> Result<(), String> {
    let _telemetry = meisa_runtime::telemetry::init("gateway").map_err(|e| e.to_string())?;
    let url = database_url()?;
    meisa_gateway::migrate(&url)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("gateway migrations applied");
    Ok(())
}

fn database_url() -> Result<String, String> {
    meisa_runtime::config::required(
        "DATABASE_URL",
        "set it to the gateway's Postgres database, e.g. postgres://postgres@127.0.0.1:5432/meisa_gateway",
    )
    .map_err(|e| e.to_string())
}

/// No telemetry here: logs go to stdout, and stdout must be exactly one JSON line that scripts
/// (`make dev`, `make workspace`) can parse.
async fn run_admin(command: AdminCommand) -> Result<(), String> {
    let url = database_url()?;
    let pool = admin::connect(&url).await.map_err(|e| e.to_string())?;
    let result = match command {
        AdminCommand::CreateWorkspace { name } => {
            print_json(&admin::create_workspace(&pool, &name).await)
        }
        AdminCommand::CreateKey { workspace } => {
            print_json(&admin::create_key(&pool, &workspace).await)
        }
        AdminCommand::ListKeys { workspace } => print_json(
            &admin::list_keys(&pool, &workspace)
                .await
                .map(|keys| serde_json::json!({ "keys": keys })),
        ),
        AdminCommand::RevokeKey { key_prefix } => {
            print_json(&admin::revoke_key(&pool, &key_prefix).await)
        }
    };
    pool.close().await;
    result
}

fn print_json<T: Serialize>(result: &Result<T, admin::AdminError>) -> Result<(), String> {
    match result {
        Ok(value) => {
            let line = serde_json::to_string(value).map_err(|e| e.to_string())?;
            println!("{line}");
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}
