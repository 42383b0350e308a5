//! `contacts serve` | `contacts migrate` (see `meisa_runtime::cli`).

use std::process::ExitCode;

use meisa_contacts::{Application, Config, migrate};
use meisa_runtime::cli::Binary;

fn main() -> ExitCode {
    let binary = Binary {
        name: "contacts",
        about: "Meisa contacts service: contact state, change detection, change stream",
        database: "meisa_contacts",
    };
    meisa_runtime::cli::main(
        binary,
        // Migrating needs the database only, so a Kubernetes Job needs no Redis.
        |url| async move { Ok(migrate(&url).await?) },
        |serving| async move {
            let app = Application::build(Config::from_env()?).await?;
            serving.listening(&[("grpc", app.grpc_addr())]);
            Ok(app.run(serving.shutdown).await?)
        },
    )
}
