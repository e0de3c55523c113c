//! `apply` and `import peribolos`: read a configuration, compare it with the
//! directory, print the plan, check the removal guard and apply.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use workteams_domain::{Combining, ResourceTypeDef, ResourceTypeRegistry};
use workteams_proto::directory::v1 as proto;
use crate::connect::DirectoryClient;

use crate::apply::apply_plan;
use crate::connect::{Endpoints, TokenTracker, call};
use crate::current::{CurrentState, convert_user, organization_from_snapshot};
use crate::desired::{DesiredState, login_key, organization_key};
use crate::error::CliError;
use crate::manifest::{Loaded, load_manifest};
use crate::peribolos::load_peribolos;
use crate::plan::{Plan, PlanOptions, compute_plan};
use crate::render::{count, render_plan};

/// How many user look-ups run at once while reading the current state.
const CONCURRENT_LOOKUPS: usize = 16;

/// Page size of `ListUsers` while reading the current state.
const USER_PAGE_SIZE: i32 = 1_000;

/// The file or folder the desired state is read from.
#[derive(Debug, Clone)]
pub enum Source {
    Manifest(PathBuf),
    Peribolos(PathBuf),
}

#[derive(Debug, Clone, Copy)]
pub struct SyncOptions {
    /// Print the plan without applying it.
    pub dry_run: bool,
    /// Remove what the directory contains and the configuration does not.
    pub prune: bool,
    /// Apply removals above the guard's share.
    pub force: bool,
    /// The largest share, in percent, of an organization's members, team
    /// memberships or grants one apply may remove without `force`.
    pub max_removal_percent: u32,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            prune: false,
            force: false,
            max_removal_percent: 20,
        }
    }
}

/// The outcome of a sync.
#[derive(Debug, Clone)]
pub struct SyncReport {
    pub plan: Plan,
    pub applied: bool,
    /// The newest consistency token of the applied writes.
    pub consistency_token: Option<String>,
    pub warnings: usize,
    pub read_time: Duration,
    pub apply_time: Duration,
}

/// Runs a sync, writing the plan and summary to `out` and warnings to `err`.
pub async fn run_sync(
    endpoints: &Endpoints,
    source: &Source,
    options: SyncOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<SyncReport, CliError> {
    let started = Instant::now();
    let directory = endpoints.directory().await?;
    let registry = fetch_registry(&directory).await?;

    let loaded = load_source(source, &registry)?;
    for warning in &loaded.warnings {
        write_line(err, &format!("warning: {warning}"))?;
    }

    let current = read_current_state(&directory, &loaded.state).await?;
    let read_time = started.elapsed();

    let plan = compute_plan(
        &loaded.state,
        &current,
        &registry,
        PlanOptions {
            prune: options.prune,
        },
    );
    write_text(out, &render_plan(&plan))?;

    let mut report = SyncReport {
        plan,
        applied: false,
        consistency_token: None,
        warnings: loaded.warnings.len(),
        read_time,
        apply_time: Duration::ZERO,
    };

    if options.prune && !options.force {
        let over = report.plan.removals_over(options.max_removal_percent);
        if !over.is_empty() {
            let mut message = String::from("the plan removes more than the allowed share:");
            for share in &over {
                message.push_str(&format!(
                    "\n  {}: {} of {} {} ({:.0} %, limit {} %)",
                    share.organization,
                    share.removed,
                    share.current,
                    share.kind,
                    share.percent(),
                    options.max_removal_percent
                ));
            }
            message.push_str(
                "\nnothing was applied; check the file, then pass --force or raise --max-removal-percent",
            );
            if options.dry_run {
                write_line(out, &format!("Note: without --dry-run, {message}"))?;
            } else {
                return Err(CliError::Refused(message));
            }
        }
    }

    if options.dry_run {
        write_line(out, "Dry run: nothing was applied.")?;
        return Ok(report);
    }
    if report.plan.is_empty() {
        return Ok(report);
    }

    let total = report.plan.upsert_count()
        + if options.prune {
            report.plan.removal_count()
        } else {
            0
        };
    let progress = progress_bar(total as u64);
    let apply_started = Instant::now();
    let (tokens, applied) =
        apply_plan(directory, &report.plan, &current, &registry, &progress).await;
    progress.finish_and_clear();
    report.apply_time = apply_started.elapsed();

    // Even a partly applied plan wrote something later reads must see.
    if let Some(token) = tokens.token() {
        endpoints.token_store().save(token)?;
        report.consistency_token = Some(token.to_owned());
    }
    applied.map_err(|error| CliError::PartlyApplied {
        source: Box::new(error),
    })?;
    report.applied = true;
    write_line(
        out,
        &format!(
            "Applied {} in {:.1} s.",
            count(total, "change"),
            report.apply_time.as_secs_f64()
        ),
    )?;
    Ok(report)
}

fn load_source(source: &Source, registry: &ResourceTypeRegistry) -> Result<Loaded, CliError> {
    let loaded = match source {
        Source::Manifest(path) => load_manifest(path, registry),
        Source::Peribolos(path) => load_peribolos(path, registry),
    };
    loaded.map_err(CliError::Files)
}

fn progress_bar(total: u64) -> ProgressBar {
    let progress = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} applying [{bar:40}] {pos}/{len} changes ({elapsed})",
    ) {
        progress.set_style(style.progress_chars("=> "));
    }
    progress
}

/// Reads the resource types the directory has in force.
pub async fn fetch_registry(
    directory: &DirectoryClient,
) -> Result<ResourceTypeRegistry, CliError> {
    let response = call(
        directory,
        "listing resource types",
        proto::ListResourceTypesRequest {},
        |mut client, request| async move { client.list_resource_types(request).await },
    )
    .await?;

    let mut registry = ResourceTypeRegistry::default();
    for resource_type in response.resource_types {
        let name = resource_type.name.clone();
        registry
            .insert(convert_resource_type(resource_type)?)
            .map_err(|error| CliError::Protocol(format!("resource type {name}: {error}")))?;
    }
    Ok(registry)
}

pub fn convert_resource_type(
    resource_type: proto::ResourceType,
) -> Result<ResourceTypeDef, CliError> {
    let proto::ResourceType {
        name,
        permissions,
        ordered_levels,
        combining,
        grants_propagate,
        case_insensitive_external_ids,
        nestable,
    } = resource_type;
    let combining = match proto::GrantCombining::try_from(combining) {
        Ok(proto::GrantCombining::IndividualPrecedence) => Combining::IndividualPrecedence,
        Ok(proto::GrantCombining::Cumulative) => Combining::Cumulative,
        _ => {
            return Err(CliError::Protocol(format!(
                "resource type {name} has the unknown combining rule {combining}"
            )));
        }
    };
    Ok(ResourceTypeDef {
        name,
        permissions,
        ordered_levels,
        combining,
        grants_propagate,
        case_insensitive_external_ids,
        nestable,
    })
}

/// Reads what the directory holds for the organizations and users of
/// `desired`: one snapshot export per existing organization, and a look-up
/// of every user no snapshot mentioned.
pub async fn read_current_state(
    directory: &DirectoryClient,
    desired: &DesiredState,
) -> Result<CurrentState, CliError> {
    let mut state = CurrentState::default();
    let mut tokens = TokenTracker::default();

    for organization in &desired.organizations {
        let request = proto::GetOrganizationRequest {
            lookup: Some(proto::get_organization_request::Lookup::Name(
                organization.name.clone(),
            )),
        };
        let action = format!("reading organization {}", organization.name);
        let found = call(
            directory,
            &action,
            request,
            |mut client, request| async move { client.get_organization(request).await },
        )
        .await;
        let id = match found {
            Ok(response) => match response.organization {
                Some(found) => found.id,
                None => continue,
            },
            Err(error) if error.code() == Some(tonic::Code::NotFound) => continue,
            Err(error) => return Err(error),
        };

        let entities = export_snapshot(directory, &id, &mut tokens).await?;
        if let Some(current) = organization_from_snapshot(entities, &mut state)? {
            state
                .organizations
                .insert(organization_key(&organization.name), current);
        }
    }

    let missing: Vec<String> = desired
        .users
        .iter()
        .filter(|user| !state.users.contains_key(&login_key(&user.login)))
        .map(|user| user.login.clone())
        .collect();
    find_users(directory, missing, &mut state).await?;

    state.consistency_token = tokens.token().map(str::to_owned);
    Ok(state)
}

/// Adds the users with the given logins that exist to `state`. A small
/// directory is read with a few `ListUsers` pages. When paging would take
/// more calls than looking each login up, the rest are looked up one by one.
async fn find_users(
    directory: &DirectoryClient,
    missing: Vec<String>,
    state: &mut CurrentState,
) -> Result<(), CliError> {
    if missing.is_empty() {
        return Ok(());
    }

    let max_pages = missing.len().div_ceil(CONCURRENT_LOOKUPS).max(1);
    let mut listed = Vec::new();
    let mut page_token = String::new();
    let mut complete = false;
    for _ in 0..max_pages {
        let request = proto::ListUsersRequest {
            page_size: USER_PAGE_SIZE,
            page_token: page_token.clone(),
        };
        let response = call(
            directory,
            "listing users",
            request,
            |mut client, request| async move { client.list_users(request).await },
        )
        .await?;
        listed.extend(response.users);
        if response.next_page_token.is_empty() {
            complete = true;
            break;
        }
        page_token = response.next_page_token;
    }

    let wanted: std::collections::HashSet<String> =
        missing.iter().map(|login| login_key(login)).collect();
    for user in listed {
        if wanted.contains(&login_key(&user.login)) {
            state.add_user(convert_user(user)?);
        }
    }
    if complete {
        return Ok(());
    }

    let still_missing: Vec<String> = missing
        .into_iter()
        .filter(|login| !state.users.contains_key(&login_key(login)))
        .collect();
    let found: Vec<Option<proto::User>> =
        futures::stream::iter(still_missing.into_iter().map(|login| {
            let directory = directory.clone();
            async move { lookup_user(&directory, login).await }
        }))
        .buffer_unordered(CONCURRENT_LOOKUPS)
        .try_collect()
        .await?;
    for user in found.into_iter().flatten() {
        state.add_user(convert_user(user)?);
    }
    Ok(())
}

async fn lookup_user(
    directory: &DirectoryClient,
    login: String,
) -> Result<Option<proto::User>, CliError> {
    let request = proto::GetUserRequest {
        lookup: Some(proto::get_user_request::Lookup::Login(login.clone())),
    };
    let action = format!("looking up user {login}");
    match call(
        directory,
        &action,
        request,
        |mut client, request| async move { client.get_user(request).await },
    )
    .await
    {
        Ok(response) => Ok(response.user),
        Err(error) if error.code() == Some(tonic::Code::NotFound) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Reads every entity of one organization's snapshot.
pub async fn export_snapshot(
    directory: &DirectoryClient,
    organization_id: &str,
    tokens: &mut TokenTracker,
) -> Result<Vec<proto::Entity>, CliError> {
    let action = "exporting a snapshot";
    let request = proto::ExportSnapshotRequest {
        organization_id: organization_id.to_owned(),
    };
    let mut stream = call(
        directory,
        action,
        request,
        |mut client, request| async move { client.export_snapshot(request).await },
    )
    .await?;

    let mut entities = Vec::new();
    let mut finished = false;
    while let Some(message) = stream
        .message()
        .await
        .map_err(|status| CliError::rpc(action, status))?
    {
        tokens.observe(&message.consistency_token);
        entities.extend(message.entities);
        if message.last {
            finished = true;
            break;
        }
    }
    if !finished {
        return Err(CliError::Protocol(
            "the snapshot export ended before its last message".to_owned(),
        ));
    }
    Ok(entities)
}

fn write_text(out: &mut dyn Write, text: &str) -> Result<(), CliError> {
    out.write_all(text.as_bytes())
        .map_err(|error| CliError::io("standard output", error))
}

fn write_line(out: &mut dyn Write, text: &str) -> Result<(), CliError> {
    writeln!(out, "{text}").map_err(|error| CliError::io("standard output", error))
}
