//! Compiles every `.proto` under the workspace's `proto/` with protox (pure Rust), so a fresh
//! machine builds with `cargo build` alone.

use std::{env, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files: Vec<PathBuf> = [
        "meisa/common/v1/common.proto",
        "meisa/events/v1/events.proto",
        "meisa/contacts/v1/contacts.proto",
        "meisa/mailer/v1/mailer.proto",
        "meisa/automations/v1/automations.proto",
    ]
    .iter()
    .map(|f| root.join(f))
    .filter(|p| p.exists())
    .collect();
    println!("cargo:rerun-if-changed={}", root.display());

    let fds = protox::compile(&files, [&root])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(out.join("meisa_descriptor.bin"), fds.encode_to_vec())?;

    tonic_prost_build::configure()
        // Deterministic map order keeps `changed` lists and event payloads stable.
        .btree_map(".")
        .compile_fds(fds)?;
    Ok(())
}
