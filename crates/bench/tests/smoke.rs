//! Runs the whole harness at the tiniest size with no peers: generation,
//! the in-process index, the directory and sidecar over loopback gRPC,
//! listing, propagation on SQLite, the agreement checks and the report.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use workteams_bench::dataset::Size;
use workteams_bench::runner::{Profile, RunConfig, run};
use workteams_bench::services::Launch;
use workteams_storage::testing::TestDatabase;

fn smoke_config(work_dir: &std::path::Path) -> RunConfig {
    RunConfig {
        sizes: vec![Size::Tiny],
        seed: 11,
        profile: Profile::smoke(),
        launch: Launch::InProcess,
        postgres_url: TestDatabase::postgres_server_url(),
        postgres_max_size: Size::Tiny,
        live_bytes: None,
        work_dir: work_dir.to_path_buf(),
        command: "cargo test -p workteams-bench".to_owned(),
        repository: std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        services: true,
        report_path: None,
        write_inputs_up_to: Some(Size::Tiny),
    }
}

#[test]
fn tiny_run_completes() {
    let work_dir = tempfile::tempdir().unwrap();
    let report = run(&smoke_config(work_dir.path()), &[]).unwrap();
    let size = &report.sizes[0];

    let sidecar = size
        .agreement
        .iter()
        .find(|agreement| agreement.engine.contains("sidecar"))
        .expect("the sidecar was compared");
    assert_eq!(sidecar.compared, 2 * Profile::smoke().cases_per_pattern);
    assert!(
        sidecar.disagreements.is_empty(),
        "{:#?}",
        sidecar.disagreements
    );

    let model = size.model_check.as_ref().unwrap();
    assert!(model.compared > 0);
    assert!(model.disagreements.is_empty(), "{:#?}", model.disagreements);

    let lists_differ: Vec<_> = size
        .lists
        .iter()
        .flat_map(|row| row.differences.iter())
        .collect();
    assert!(lists_differ.is_empty(), "{lists_differ:#?}");

    let expected_propagation_rows = if TestDatabase::postgres_server_url().is_some() {
        2
    } else {
        1
    };
    assert_eq!(
        size.propagation.len(),
        expected_propagation_rows,
        "{:?}",
        size.skipped
    );
    assert!(!size.grpc.is_empty());
    assert!(!size.in_process.is_empty());

    let markdown = report.to_markdown();
    assert!(markdown.contains("## Tiny directory"));
    assert!(markdown.contains("### Write-to-visible propagation"));
}
