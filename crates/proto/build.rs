//! Compiles the contracts under `proto/` with a vendored `protoc`, so a fresh
//! machine needs no system protobuf compiler.

use std::env;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let protoc_include = protoc_bin_vendored::include_path()?;

    let proto_root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let files = [
        proto_root.join("workteams/directory/v1/directory.proto"),
        proto_root.join("workteams/authz/v1/authz.proto"),
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);

    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("workteams_descriptor.bin"))
        .compile_with_config(config, &files, &[proto_root, protoc_include])?;
    Ok(())
}
