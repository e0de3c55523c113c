//! `workteams import peribolos` against real servers: both layouts, renames
//! through `previously`, login case variants, warnings and errors, and the
//! whole kubernetes/org configuration checked account by account.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

use serde_yaml::Value;
use workteams_cli::error::CliError;
use workteams_cli::sync::SyncOptions;
use workteams_proto::authz::v1 as authz;
use workteams_proto::directory::v1 as proto;

use support::{Services, all_services, examples, write};

async fn team_id(services: &Services, organization: &str, team: &str) -> Option<String> {
    let mut directory = services.directory().await;
    let organization = directory
        .get_organization(proto::GetOrganizationRequest {
            lookup: Some(proto::get_organization_request::Lookup::Name(
                organization.to_owned(),
            )),
        })
        .await
        .expect("organization")
        .into_inner()
        .organization
        .expect("organization");
    let teams = directory
        .list_teams(proto::ListTeamsRequest {
            organization_id: organization.id,
            page_size: 1000,
            page_token: String::new(),
            parent_team_id: String::new(),
        })
        .await
        .expect("teams")
        .into_inner()
        .teams;
    teams
        .into_iter()
        .find(|found| found.name == team)
        .map(|found| found.id)
}

async fn user_logins(services: &Services) -> Vec<String> {
    let mut directory = services.directory().await;
    let users = directory
        .list_users(proto::ListUsersRequest {
            page_size: 1000,
            page_token: String::new(),
        })
        .await
        .expect("users")
        .into_inner()
        .users;
    users.into_iter().map(|user| user.login).collect()
}

const ORG: &str = "\
name: Example Org
default_repository_permission: read
admins: [Dev0042]
members: [dev0100]
teams:
  tools/maintainers:
    maintainers: [dev0042]
    members: [DEV0100, dev0200]
    privacy: closed
    repos:
      tools: write
";

#[tokio::test]
async fn previously_renames_same_team() {
    for services in all_services().await {
        let folder = tempfile::tempdir().expect("folder");
        write(folder.path(), "example/org.yaml", ORG);
        services
            .import(folder.path(), SyncOptions::default())
            .await
            .0
            .expect("import");
        let before = team_id(&services, "example", "tools/maintainers")
            .await
            .expect("team");

        let renamed = ORG.replace(
            "  tools/maintainers:\n",
            "  tools-maintainers:\n    previously: [tools/maintainers]\n",
        );
        write(folder.path(), "example/org.yaml", &renamed);
        let (report, output, _) = services.import(folder.path(), SyncOptions::default()).await;
        let report = report.expect("import with rename");
        assert!(
            output.contains("renamed from tools/maintainers"),
            "{output}"
        );
        assert!(report.plan.organizations[0].teams.added.is_empty());

        let after = team_id(&services, "example", "tools-maintainers").await;
        assert_eq!(
            after.as_deref(),
            Some(before.as_str()),
            "{}",
            services.backend
        );
        assert_eq!(
            team_id(&services, "example", "tools/maintainers").await,
            None
        );
        services.stop().await;
    }
}

#[tokio::test]
async fn login_case_variants_are_one_user() {
    for services in all_services().await {
        let folder = tempfile::tempdir().expect("folder");
        write(folder.path(), "example/org.yaml", ORG);
        services
            .import(folder.path(), SyncOptions::default())
            .await
            .0
            .expect("import");

        let logins = user_logins(&services).await;
        let mut sorted = logins.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            vec!["Dev0042", "dev0100", "dev0200"],
            "{}",
            services.backend
        );

        let (second, output, _) = services.import(folder.path(), SyncOptions::default()).await;
        assert!(second.expect("second import").plan.is_empty(), "{output}");
        assert_eq!(output.trim(), "No changes.");
        services.stop().await;
    }
}

#[tokio::test]
async fn unknown_keys_are_warned() {
    for services in all_services().await {
        let folder = tempfile::tempdir().expect("folder");
        let text = format!("{ORG}mascot: gopher\n");
        write(folder.path(), "example/org.yaml", &text);
        write(
            folder.path(),
            "example/sig/teams.yaml",
            "teams:\n  extra:\n    members: [dev0300]\n    slack_channel: x\n",
        );
        let (report, _, warnings) = services.import(folder.path(), SyncOptions::default()).await;
        let report = report.expect("import with unknown keys");
        assert!(report.applied);
        assert_eq!(report.warnings, 2, "{warnings}");
        assert!(
            warnings.contains("org.yaml:12:1: unknown key \"mascot\""),
            "{warnings}"
        );
        assert!(
            warnings.contains("teams.yaml:4:5: unknown key \"slack_channel\""),
            "{warnings}"
        );
        services.stop().await;
    }
}

#[tokio::test]
async fn malformed_config_applies_nothing() {
    for services in all_services().await {
        let folder = tempfile::tempdir().expect("folder");
        write(folder.path(), "example/org.yaml", ORG);
        write(
            folder.path(),
            "example/sig/teams.yaml",
            "teams:\n  extra:\n    members: dev0300\n",
        );
        let (result, _, _) = services.import(folder.path(), SyncOptions::default()).await;
        let Err(CliError::Files(diagnostics)) = result else {
            panic!(
                "{}: the malformed configuration was accepted",
                services.backend
            );
        };
        let error = &diagnostics.errors[0];
        assert!(error.location.file.ends_with("sig/teams.yaml"), "{error}");
        assert_eq!(error.location.line, 3, "{error}");
        assert!(error.message.contains("must be a list"), "{error}");
        assert!(user_logins(&services).await.is_empty());
        services.stop().await;
    }
}

#[tokio::test]
async fn both_layouts_import_alike() {
    for services in all_services().await {
        let folder = tempfile::tempdir().expect("folder");
        write(folder.path(), "layout/example/org.yaml", ORG);
        let indented: String = ORG.lines().map(|line| format!("    {line}\n")).collect();
        let single = write(
            folder.path(),
            "single.yaml",
            &format!("orgs:\n  example:\n{indented}"),
        );

        services
            .import(&folder.path().join("layout"), SyncOptions::default())
            .await
            .0
            .expect("folder layout");
        let (report, output, _) = services.import(&single, SyncOptions::default()).await;
        assert!(
            report.expect("single-file layout").plan.is_empty(),
            "{output}"
        );
        services.stop().await;
    }
}

/// GitHub's repository levels, lowest first.
const LEVELS: [&str; 5] = ["read", "triage", "write", "maintain", "admin"];

fn level_rank(level: &str) -> Option<usize> {
    LEVELS.iter().position(|known| *known == level)
}

/// One team of the expected model: its parent and repository levels.
#[derive(Debug, Default)]
struct ExpectedTeam {
    parent: Option<String>,
    people: BTreeSet<String>,
    repositories: BTreeMap<String, usize>,
}

/// An organization as GitHub would see it, read independently of the
/// importer with plain `serde_yaml` values.
#[derive(Debug, Default)]
struct ExpectedOrganization {
    base: Option<usize>,
    admins: BTreeSet<String>,
    members: BTreeSet<String>,
    teams: BTreeMap<String, ExpectedTeam>,
    repositories: BTreeSet<String>,
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_sequence)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_lowercase)
                .collect()
        })
        .unwrap_or_default()
}

fn read_teams(
    value: Option<&Value>,
    parent: Option<&str>,
    organization: &mut ExpectedOrganization,
) {
    let Some(teams) = value.and_then(Value::as_mapping) else {
        return;
    };
    for (name, team) in teams {
        let name = name.as_str().expect("team name").to_lowercase();
        let mut expected = ExpectedTeam {
            parent: parent.map(str::to_owned),
            ..ExpectedTeam::default()
        };
        expected.people.extend(strings(team.get("maintainers")));
        expected.people.extend(strings(team.get("members")));
        if let Some(repositories) = team.get("repos").and_then(Value::as_mapping) {
            for (repository, level) in repositories {
                let repository = repository.as_str().expect("repository").to_lowercase();
                let rank = level_rank(level.as_str().expect("level")).expect("known level");
                organization.repositories.insert(repository.clone());
                expected.repositories.insert(repository, rank);
            }
        }
        organization.teams.insert(name.clone(), expected);
        read_teams(team.get("teams"), Some(&name), organization);
    }
}

fn teams_files(folder: &Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(folder).expect("folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            teams_files(&path, found);
        } else if path.file_name().is_some_and(|name| name == "teams.yaml") {
            found.push(path);
        }
    }
}

fn read_expected(config: &Path) -> BTreeMap<String, ExpectedOrganization> {
    let mut organizations = BTreeMap::new();
    for entry in std::fs::read_dir(config).expect("config folder") {
        let folder = entry.expect("entry").path();
        let org_file = folder.join("org.yaml");
        if !org_file.is_file() {
            continue;
        }
        let name = folder
            .file_name()
            .and_then(|name| name.to_str())
            .expect("folder name")
            .to_owned();
        let root: Value =
            serde_yaml::from_str(&std::fs::read_to_string(&org_file).expect("org.yaml"))
                .expect("YAML");

        let mut organization = ExpectedOrganization {
            base: root
                .get("default_repository_permission")
                .and_then(Value::as_str)
                .and_then(level_rank),
            ..ExpectedOrganization::default()
        };
        organization.admins.extend(strings(root.get("admins")));
        organization.members.extend(strings(root.get("members")));
        if let Some(repositories) = root.get("repos").and_then(Value::as_mapping) {
            for repository in repositories.keys() {
                organization
                    .repositories
                    .insert(repository.as_str().expect("repository").to_lowercase());
            }
        }
        read_teams(root.get("teams"), None, &mut organization);

        let mut files = Vec::new();
        teams_files(&folder, &mut files);
        for file in files {
            let teams: Value =
                serde_yaml::from_str(&std::fs::read_to_string(&file).expect("teams.yaml"))
                    .expect("YAML");
            read_teams(teams.get("teams"), None, &mut organization);
        }
        organizations.insert(name, organization);
    }
    organizations
}

/// Computes the level GitHub gives `account` on `repository`: the highest of the
/// base level (for members), admin (for admins) and the grants of every
/// team the account is in and of those teams' ancestors.
fn expected_level(
    organization: &ExpectedOrganization,
    account: &str,
    repository: &str,
) -> Option<usize> {
    let in_teams: Vec<&String> = organization
        .teams
        .iter()
        .filter(|(_, team)| team.people.contains(account))
        .map(|(name, _)| name)
        .collect();
    let member = organization.admins.contains(account)
        || organization.members.contains(account)
        || !in_teams.is_empty();
    if !member {
        return None;
    }

    let mut level = organization.base;
    if organization.admins.contains(account) {
        level = Some(LEVELS.len() - 1);
    }
    for team in in_teams {
        let mut cursor = Some(team.clone());
        while let Some(name) = cursor {
            let team = &organization.teams[&name];
            if let Some(rank) = team.repositories.get(repository) {
                level = level.max(Some(*rank));
            }
            cursor = team.parent.clone();
        }
    }
    level
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_account_every_repository() {
    let config = examples().join("peribolos-kubernetes/config");
    let expected = read_expected(&config);
    let accounts: BTreeSet<String> = expected
        .values()
        .flat_map(|organization| {
            organization
                .admins
                .iter()
                .chain(organization.members.iter())
                .chain(
                    organization
                        .teams
                        .values()
                        .flat_map(|team| team.people.iter()),
                )
                .cloned()
                .collect::<Vec<_>>()
        })
        .collect();

    for services in all_services().await {
        let started = Instant::now();
        let (report, output, _) = services.import(&config, SyncOptions::default()).await;
        let report = report.expect("import of kubernetes/org");
        let import_time = started.elapsed();
        println!(
            "{}: imported kubernetes/org in {:.1} s (read {:.1} s, apply {:.1} s, {} changes)",
            services.backend,
            import_time.as_secs_f64(),
            report.read_time.as_secs_f64(),
            report.apply_time.as_secs_f64(),
            report.plan.upsert_count()
        );
        assert!(report.applied, "{output}");
        let token = report.consistency_token.clone().expect("consistency token");

        let mut checks = Vec::new();
        let mut wanted = Vec::new();
        for (organization_name, organization) in &expected {
            for repository in &organization.repositories {
                for account in &accounts {
                    checks.push(authz::CheckAccessRequest {
                        user: Some(authz::UserRef {
                            kind: Some(authz::user_ref::Kind::Login(account.clone())),
                        }),
                        resource: Some(authz::ResourceRef {
                            kind: Some(authz::resource_ref::Kind::Key(authz::ResourceKey {
                                organization: Some(authz::OrganizationRef {
                                    kind: Some(authz::organization_ref::Kind::Name(
                                        organization_name.clone(),
                                    )),
                                }),
                                resource_type: "git.repository".to_owned(),
                                external_id: repository.clone(),
                            })),
                        }),
                        permission: "read".to_owned(),
                        consistency: None,
                    });
                    wanted.push((
                        organization_name.as_str(),
                        repository.as_str(),
                        account.as_str(),
                        expected_level(organization, account, repository),
                    ));
                }
            }
        }

        let started = Instant::now();
        let mut authz_client = services.authz().await;
        let mut mismatches = Vec::new();
        for (chunk, wanted) in checks.chunks(10_000).zip(wanted.chunks(10_000)) {
            let response = authz_client
                .batch_check_access(authz::BatchCheckAccessRequest {
                    checks: chunk.to_vec(),
                    consistency: Some(authz::Consistency {
                        requirement: Some(authz::consistency::Requirement::AtLeastAsFresh(
                            token.clone(),
                        )),
                    }),
                })
                .await
                .expect("batch check")
                .into_inner();
            assert_eq!(response.results.len(), chunk.len());
            for (result, (organization, repository, account, level)) in
                response.results.iter().zip(wanted)
            {
                let held = level_rank(&result.level);
                if held != *level || result.allowed != level.is_some() {
                    mismatches.push(format!(
                        "{organization}/{repository} {account}: expected {:?}, the sidecar says {:?} (allowed {})",
                        level.map(|rank| LEVELS[rank]),
                        result.level,
                        result.allowed
                    ));
                }
            }
        }
        println!(
            "{}: {} checks ({} accounts) in {:.1} s",
            services.backend,
            checks.len(),
            accounts.len(),
            started.elapsed().as_secs_f64()
        );
        assert!(
            mismatches.is_empty(),
            "{}: {} mismatches, first ones:\n{}",
            services.backend,
            mismatches.len(),
            mismatches
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );

        let (second, output, _) = services.import(&config, SyncOptions::default()).await;
        assert!(second.expect("second import").plan.is_empty(), "{output}");
        services.stop().await;
    }
}
