//! `workteams apply` against real servers: idempotency, the removal guard,
//! malformed files, and the access the company example gives.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use workteams_cli::commands::access::{CheckArgs, check};
use workteams_cli::error::CliError;
use workteams_cli::output::OutputFormat;
use workteams_cli::sync::SyncOptions;
use workteams_proto::directory::v1 as proto;

use support::{Services, all_services, examples, write};

fn company() -> std::path::PathBuf {
    examples().join("company.yaml")
}

async fn allowed(services: &Services, user: &str, resource: &str, permission: &str) -> bool {
    let args = CheckArgs {
        organization: "lumen-studio".to_owned(),
        user: user.to_owned(),
        resource: resource.parse().expect("resource argument"),
        permission: permission.to_owned(),
    };
    let mut out = Vec::new();
    check(&services.endpoints, &args, OutputFormat::Json, &mut out)
        .await
        .expect("check")
}

async fn organization_names(services: &Services) -> Vec<String> {
    let mut directory = services.directory().await;
    let response = directory
        .list_organizations(proto::ListOrganizationsRequest {
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .expect("list organizations")
        .into_inner();
    response
        .organizations
        .into_iter()
        .map(|organization| organization.name)
        .collect()
}

#[tokio::test]
async fn second_apply_has_no_changes() {
    for services in all_services().await {
        let (first, first_output, _) = services.apply(&company(), SyncOptions::default()).await;
        let first = first.expect("first apply");
        assert!(first.applied, "{}", services.backend);
        assert!(
            first_output.contains("organization lumen-studio (new)"),
            "{first_output}"
        );

        let (second, output, _) = services.apply(&company(), SyncOptions::default()).await;
        let second = second.expect("second apply");
        assert!(second.plan.is_empty(), "{}: {output}", services.backend);
        assert!(!second.applied);
        assert_eq!(output.trim(), "No changes.", "{}", services.backend);
        services.stop().await;
    }
}

#[tokio::test]
async fn company_example_grants_expected_access() {
    for services in all_services().await {
        services
            .apply(&company(), SyncOptions::default())
            .await
            .0
            .expect("apply");
        let backend = services.backend.clone();

        // Mail is cumulative: Sofia reads through Studio and sends through Clients.
        assert!(
            allowed(
                &services,
                "sofia",
                "mail.mailbox:hello@lumen.example",
                "send"
            )
            .await,
            "{backend}"
        );
        assert!(
            allowed(
                &services,
                "marc",
                "mail.mailbox:HELLO@lumen.example",
                "read"
            )
            .await,
            "{backend}"
        );
        assert!(
            !allowed(
                &services,
                "marc",
                "mail.mailbox:hello@lumen.example",
                "send"
            )
            .await,
            "{backend}"
        );
        assert!(
            allowed(
                &services,
                "hugo",
                "mail.mailbox:hello@lumen.example",
                "manage_aliases"
            )
            .await,
            "{backend}"
        );
        assert!(
            allowed(
                &services,
                "paul",
                "mail.mailbox:invoices@lumen.example",
                "read"
            )
            .await,
            "{backend}"
        );

        // kDrive: inherited view, team modify, the intern's override.
        assert!(
            allowed(&services, "theo", "kdrive.folder:1002", "view").await,
            "{backend}"
        );
        assert!(
            allowed(&services, "marc", "kdrive.folder:1002", "modify").await,
            "{backend}"
        );
        assert!(
            allowed(&services, "lea", "kdrive.folder:1001", "view").await,
            "{backend}"
        );
        assert!(
            !allowed(&services, "lea", "kdrive.folder:1001", "modify").await,
            "{backend}"
        );

        // The inheritance break keeps Studio's view grant out of Finance.
        assert!(
            !allowed(&services, "marc", "kdrive.folder:1003", "view").await,
            "{backend}"
        );
        assert!(
            allowed(&services, "theo", "kdrive.folder:1003", "manage").await,
            "{backend}"
        );

        // Payroll: the owner through Finance; Théo and Paul overridden.
        assert!(
            allowed(&services, "claire", "kdrive.folder:1004", "manage").await,
            "{backend}"
        );
        assert!(
            !allowed(&services, "theo", "kdrive.folder:1004", "view").await,
            "{backend}"
        );
        assert!(
            !allowed(&services, "paul", "kdrive.folder:1004", "view").await,
            "{backend}"
        );

        // kChat: no base level, administrators hold the highest level.
        assert!(
            allowed(&services, "hugo", "kchat.channel:design", "admin").await,
            "{backend}"
        );
        assert!(
            !allowed(&services, "sofia", "kchat.channel:design", "member").await,
            "{backend}"
        );
        assert!(
            allowed(&services, "ines", "kchat.channel:design", "admin").await,
            "{backend}"
        );
        services.stop().await;
    }
}

const SMALL: &str = "\
organizations:
  - name: small
    members:
      - { login: ann, role: owner }
      - { login: ben }
      - { login: cat }
      - { login: dan }
      - { login: eve }
    teams:
      - name: crew
        members: [ann, ben, cat, dan, eve]
    resources:
      - type: git.repository
        external_id: tools
        grants:
          - { team: crew, level: write }
          - { user: ben, level: admin }
          - { user: cat, level: admin }
          - { user: dan, level: admin }
          - { user: eve, level: admin }
";

#[tokio::test]
async fn removal_guard_refuses_large_prune() {
    for services in all_services().await {
        let folder = tempfile::tempdir().expect("folder");
        let full = write(folder.path(), "full.yaml", SMALL);
        services
            .apply(&full, SyncOptions::default())
            .await
            .0
            .expect("apply");

        // Dropping two of five individual grants removes 2 of 5 grants.
        let reduced_text = SMALL
            .replace("          - { user: dan, level: admin }\n", "")
            .replace("          - { user: eve, level: admin }\n", "");
        let reduced = write(folder.path(), "reduced.yaml", &reduced_text);

        let (without_prune, output, _) = services.apply(&reduced, SyncOptions::default()).await;
        let without_prune = without_prune.expect("apply without prune");
        assert!(without_prune.plan.is_empty(), "{output}");
        assert!(output.contains("kept unless you pass --prune"), "{output}");

        let prune = SyncOptions {
            prune: true,
            ..SyncOptions::default()
        };
        let (refused, output, _) = services.apply(&reduced, prune).await;
        let Err(CliError::Refused(message)) = refused else {
            panic!("{}: the prune was not refused: {output}", services.backend);
        };
        assert!(message.contains("2 of 5 grants"), "{message}");

        // Nothing was removed: the full file still matches.
        let (unchanged, output, _) = services.apply(&full, prune).await;
        assert!(unchanged.expect("apply full").plan.is_empty(), "{output}");

        let forced = SyncOptions {
            prune: true,
            force: true,
            ..SyncOptions::default()
        };
        let (removed, output, _) = services.apply(&reduced, forced).await;
        assert!(removed.expect("forced prune").applied, "{output}");
        let (after, output, _) = services.apply(&reduced, prune).await;
        assert!(after.expect("apply reduced").plan.is_empty(), "{output}");
        services.stop().await;
    }
}

#[tokio::test]
async fn prune_within_share_is_applied() {
    for services in all_services().await {
        let folder = tempfile::tempdir().expect("folder");
        let full = write(folder.path(), "full.yaml", SMALL);
        services
            .apply(&full, SyncOptions::default())
            .await
            .0
            .expect("apply");

        let reduced_text = SMALL.replace("          - { user: eve, level: admin }\n", "");
        let reduced = write(folder.path(), "reduced.yaml", &reduced_text);
        let prune = SyncOptions {
            prune: true,
            ..SyncOptions::default()
        };
        let (pruned, output, _) = services.apply(&reduced, prune).await;
        let pruned = pruned.expect("prune of one grant in five");
        assert!(pruned.applied, "{output}");
        assert!(
            output.contains("- grant on git.repository tools to user eve"),
            "{output}"
        );
        assert!(!allowed_in(&services, "small", "eve", "git.repository:tools", "admin").await);
        services.stop().await;
    }
}

async fn allowed_in(
    services: &Services,
    organization: &str,
    user: &str,
    resource: &str,
    permission: &str,
) -> bool {
    let args = CheckArgs {
        organization: organization.to_owned(),
        user: user.to_owned(),
        resource: resource.parse().expect("resource argument"),
        permission: permission.to_owned(),
    };
    let mut out = Vec::new();
    check(&services.endpoints, &args, OutputFormat::Table, &mut out)
        .await
        .expect("check")
}

#[tokio::test]
async fn malformed_manifest_applies_nothing() {
    for services in all_services().await {
        let folder = tempfile::tempdir().expect("folder");
        let broken = SMALL.replace(
            "      - { user: eve, level: admin }",
            "      - { user: eve, level: superuser }",
        );
        let path = write(folder.path(), "broken.yaml", &broken);

        let (result, _, _) = services.apply(&path, SyncOptions::default()).await;
        let Err(CliError::Files(diagnostics)) = result else {
            panic!("{}: the malformed file was accepted", services.backend);
        };
        let error = &diagnostics.errors[0];
        assert!(error.location.file.ends_with("broken.yaml"), "{error}");
        assert_eq!(error.location.line, 20, "{error}");
        assert!(error.message.contains("superuser"), "{error}");
        assert!(organization_names(&services).await.is_empty());
        services.stop().await;
    }
}

#[tokio::test]
async fn dry_run_applies_nothing() {
    for services in all_services().await {
        let options = SyncOptions {
            dry_run: true,
            ..SyncOptions::default()
        };
        let (report, output, _) = services.apply(&company(), options).await;
        let report = report.expect("dry run");
        assert!(!report.applied);
        assert!(output.contains("Dry run: nothing was applied."), "{output}");
        assert!(organization_names(&services).await.is_empty());
        services.stop().await;
    }
}

#[tokio::test]
async fn updates_reach_no_changes() {
    for services in all_services().await {
        services
            .apply(&company(), SyncOptions::default())
            .await
            .0
            .expect("first apply");

        // Rename a team and a mailbox through their former names, move and
        // re-describe things, change roles, leaders, expiries and grants.
        let original = std::fs::read_to_string(company()).expect("company.yaml");
        let changed = original
            .replace("      - name: Clients\n", "      - name: Accounts\n        previous_names: [Clients]\n")
            .replace("team: Clients", "team: Accounts")
            .replace(
                "        external_id: hello@lumen.example\n",
                "        external_id: contact@lumen.example\n        previous_external_ids: [hello@lumen.example]\n",
            )
            .replace("        description: Account management.\n        color: \"#1a73e8\"\n        parent: Studio\n",
                "        description: Clients and quotes.\n        color: \"#d93025\"\n")
            .replace("        display_name: Projects/Archive\n        parent: \"1001\"\n", "        display_name: Archive\n        inherits: false\n")
            .replace("      - login: marc\n        email: marc@lumen.example\n        display_name: Marc Petit\n",
                "      - login: marc\n        email: marc@lumen.example\n        display_name: Marc Petit\n        role: administrator\n")
            .replace("        leaders: [ines]\n", "        leaders: [ines, marc]\n")
            .replace("            expires: 2027-06-30\n", "            expires: 2027-08-31\n")
            .replace(
                "      - name: Finance\n",
                "      - name: Board\n        organization_role: collaborator\n        members: [paul]\n      - name: Finance\n        organization_role: administrator\n",
            )
            .replace("          - team: Studio\n            permissions: [read]\n", "          - team: Studio\n            permissions: [read, send]\n");
        assert_ne!(changed, original);
        let folder = tempfile::tempdir().expect("folder");
        let path = write(folder.path(), "company.yaml", &changed);

        let (report, output, _) = services.apply(&path, SyncOptions::default()).await;
        let report = report.expect("apply the changes");
        let organization = &report.plan.organizations[0];
        // Only Board is new: Accounts is Clients renamed.
        assert_eq!(organization.teams.added.len(), 1, "{output}");
        assert!(organization.resources.added.is_empty(), "{output}");
        assert!(output.contains("renamed from Clients"), "{output}");
        assert!(
            output.contains("renamed from hello@lumen.example"),
            "{output}"
        );
        assert!(output.contains("parent Studio → none"), "{output}");
        assert!(output.contains("parent 1001 → none"), "{output}");
        assert!(
            output.contains("organization role none → administrator"),
            "{output}"
        );
        assert!(
            output.contains("+ Board (members are collaborators)"),
            "{output}"
        );

        let (again, output, _) = services.apply(&path, SyncOptions::default()).await;
        assert!(
            again.expect("apply again").plan.is_empty(),
            "{}: {output}",
            services.backend
        );

        let allowed_send = allowed(
            &services,
            "marc",
            "mail.mailbox:contact@lumen.example",
            "send",
        )
        .await;
        assert!(allowed_send, "{}", services.backend);

        // Finance makes its members administrators, who hold the highest
        // kChat level everywhere.
        let theo_admin = allowed(&services, "theo", "kchat.channel:design", "admin").await;
        assert!(theo_admin, "{}", services.backend);
        services.stop().await;
    }
}

#[tokio::test]
async fn foreign_stored_token_is_dropped() {
    for services in all_services().await {
        services
            .apply(&company(), SyncOptions::default())
            .await
            .0
            .expect("apply");

        let store = services.endpoints.token_store();
        let foreign = workteams_domain::ConsistencyToken::new(
            uuid::Uuid::now_v7(),
            workteams_domain::Revision(5),
        );
        std::fs::write(store.path(), foreign.encode()).expect("write token");

        assert!(
            allowed(
                &services,
                "sofia",
                "mail.mailbox:hello@lumen.example",
                "send"
            )
            .await
        );
        assert_eq!(store.load(), None, "{}", services.backend);
        services.stop().await;
    }
}
