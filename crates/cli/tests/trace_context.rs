//! The W3C trace context of a command reaches the services: a write made
//! by `workteams` while spans are exported is recorded in the directory's
//! audit log with the command's `traceparent`, and one made without export
//! with none.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use clap::Parser;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use workteams_cli::cli::Cli;
use workteams_cli::commands::run;
use workteams_cli::resolve;
use workteams_proto::directory::v1 as proto;
use workteams_storage::testing::TestDatabase;

use support::Services;

/// Runs `workteams orgs create <name>` through the library, as the binary
/// does, against `services`.
async fn create_organization(services: &Services, name: &str) {
    let endpoints = &services.endpoints;
    let data_dir = endpoints.data_dir.display().to_string();
    let cli = Cli::try_parse_from([
        "workteams",
        "--directory",
        endpoints.directory.as_str(),
        "--authz",
        endpoints.authz.as_str(),
        "--data-dir",
        data_dir.as_str(),
        "orgs",
        "create",
        name,
    ])
    .unwrap();
    let mut out = Vec::new();
    let mut err = Vec::new();
    run(cli, &mut out, &mut err).await.unwrap();
}

async fn recorded_traceparents(services: &Services, organization: &str) -> Vec<String> {
    let mut directory = services.directory().await;
    let organization = resolve::organization(&directory, organization).await.unwrap();
    let response = directory
        .list_audit_events(proto::ListAuditEventsRequest {
            organization_id: organization.id,
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    response
        .into_inner()
        .audit_events
        .into_iter()
        .map(|event| event.traceparent)
        .collect()
}

#[tokio::test]
async fn command_trace_context_recorded_in_audit() {
    let services = Services::start(TestDatabase::sqlite()).await;

    // Without span export, as when no OTEL variables are set, calls carry
    // no trace context.
    create_organization(&services, "untraced").await;

    // The test runtime has one thread, so the default subscriber set here
    // records the command's spans, as the binary's does with export on.
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
    let subscriber = tracing_subscriber::registry().with(layer);
    let _default = tracing::subscriber::set_default(subscriber);

    let test_span = tracing::info_span!("test");
    let trace_id = test_span
        .context()
        .span()
        .span_context()
        .trace_id()
        .to_string();
    create_organization(&services, "traced")
        .instrument(test_span)
        .await;

    let traced = recorded_traceparents(&services, "traced").await;
    assert!(!traced.is_empty());
    for traceparent in &traced {
        let fields: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(fields.len(), 4, "{traceparent:?}");
        assert_eq!(fields[1], trace_id, "{traceparent:?}");
    }
    let untraced = recorded_traceparents(&services, "untraced").await;
    assert!(!untraced.is_empty());
    assert!(untraced.iter().all(String::is_empty), "{untraced:?}");

    services.stop().await;
}
