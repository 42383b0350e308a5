//! `automations serve` | `automations migrate` (see `meisa_runtime::cli`).

use std::process::ExitCode;

use meisa_automations::{Application, Config, migrate};
use meisa_runtime::cli::Binary;

fn main() -> ExitCode {
    let binary = Binary {
        name: "automations",
        about: "Meisa automations: triggers, conditions, actions, sequences",
        database: "meisa_automations",
    };
    meisa_runtime::cli::main(
        binary,
        |url| async move { Ok(migrate(&url).await?) },
        |serving| async move {
            let app = Application::build(Config::from_env()?).await?;
            serving.listening(&[("grpc", app.grpc_addr())]);
            Ok(app.run(serving.shutdown).await?)
        },
    )
}
