//! `gateway serve` | `gateway migrate` (see `meisa_runtime::cli`) | `gateway admin …` (see [`admin`]).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use meisa_gateway::{Application, Config, admin};
use serde::Serialize;

/// The Meisa gateway: public HTTP/JSON API and operator commands. `serve` reads DATABASE_URL,
/// MEISA_CONTACTS_URL, MEISA_MAILER_URL, MEISA_AUTOMATIONS_URL, MEISA_HTTP_HOST and
/// MEISA_HTTP_PORT; `migrate` and `admin` only DATABASE_URL.
#[derive(Parser)]
#[command(name = "gateway", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    // `serve` and `migrate`, as every service has them.
    #[command(flatten)]
    Service(meisa_runtime::cli::Command),
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
    /// Create a dashboard user: {"workspace_id", "user_id", "email", "password"}. Without
    /// --password one is generated and printed.
    CreateUser {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        email: String,
        /// At least 10 characters. Prefer leaving it out over putting one in shell history.
        #[arg(long)]
        password: Option<String>,
    },
    /// Revoke the key starting with this prefix (meisa_sk_ + at least 8 characters) or the whole key.
    RevokeKey {
        #[arg(long)]
        key_prefix: String,
    },
}

const BINARY: meisa_runtime::cli::Binary = meisa_runtime::cli::Binary {
    name: "gateway",
    about: "The Meisa gateway: public HTTP/JSON API and operator commands",
    database: "meisa_gateway",
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gateway: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Service(command) => {
                meisa_runtime::cli::run(
                    BINARY,
                    command,
                    |url| async move { Ok(meisa_gateway::migrate(&url).await?) },
                    |serving| async move {
                        let app = Application::build(Config::from_env()?).await?;
                        serving.listening(&[("http", app.addr())]);
                        Ok(app.run(serving.shutdown).await?)
                    },
                )
                .await
            }
            Command::Admin { command } => match run_admin(command).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(message) => {
                    eprintln!("gateway: {message}");
                    ExitCode::FAILURE
                }
            },
        }
    })
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
        AdminCommand::CreateUser {
            workspace,
            email,
            password,
        } => print_json(&admin::create_user(&pool, &workspace, &email, password.as_deref()).await),
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
