//! The command implementations, on top of the library modules.

pub mod access;
pub mod admin;
pub mod up;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use tracing::Instrument;

use crate::cli::{
    Cli, Command, GlobalArgs, ImportCommand, MembersCommand, OrganizationsCommand,
    ResourcesCommand, SubjectArgs, TeamsCommand, UsersCommand,
};
use crate::connect::Endpoints;
use crate::error::CliError;
use crate::sync::{Source, SyncOptions, run_sync};

/// Exit status of a `check` that denies access.
pub const EXIT_DENIED: u8 = 1;
/// Exit status of any command that fails.
pub const EXIT_ERROR: u8 = 2;

pub fn endpoints(global: &GlobalArgs) -> Result<Endpoints, CliError> {
    let environment_token = std::env::var(crate::connect::TOKEN_VARIABLE).ok();
    let token = crate::connect::find_token(
        global.token_file.as_deref(),
        environment_token.as_deref(),
        &global.data_dir,
    )?;
    let authz_token = crate::connect::find_authz_token(global.authz_token_file.as_deref())?;

    Ok(Endpoints {
        directory: global.directory.clone(),
        authz: global.authz.clone(),
        timeout: Duration::from_secs(global.timeout.max(1)),
        data_dir: global.data_dir.clone(),
        token,
        authz_token,
    })
}

fn sync_options(args: &crate::cli::SyncArgs) -> SyncOptions {
    SyncOptions {
        dry_run: args.dry_run,
        prune: args.prune,
        force: args.force,
        max_removal_percent: args.max_removal_percent,
    }
}

fn subject(args: &SubjectArgs) -> Result<admin::SubjectArg, CliError> {
    match (&args.team, &args.user) {
        (Some(team), None) => Ok(admin::SubjectArg::Team(team.clone())),
        (None, Some(user)) => Ok(admin::SubjectArg::User(user.clone())),
        _ => Err(CliError::Usage(
            "give exactly one of --team and --user".to_owned(),
        )),
    }
}

/// Target of the command span. The binary's default log filter enables it
/// by name, so that the span, and the trace context sent with every call,
/// exist while other info events stay hidden.
pub const COMMAND_SPAN_TARGET: &str = "workteams_cli::command";

/// Runs one command inside a `command` span, writing results to `out` and
/// warnings to `err`. With span export on, every call the command makes
/// carries the span's trace context, so the services' spans join its trace.
pub async fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> Result<ExitCode, CliError> {
    let name = format!("workteams {}", command_name(&cli.command));
    let span = tracing::info_span!(target: COMMAND_SPAN_TARGET, "command", otel.name = name);
    run_command(cli, out, err).instrument(span).await
}

/// Returns the subcommand's name as typed, such as `apply` or `teams`.
pub fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Up(_) => "up",
        Command::Apply(_) => "apply",
        Command::Import(_) => "import",
        Command::Check(_) => "check",
        Command::Access(_) => "access",
        Command::Who(_) => "who",
        Command::Organizations(_) => "orgs",
        Command::Users(_) => "users",
        Command::Teams(_) => "teams",
        Command::Members(_) => "members",
        Command::Resources(_) => "resources",
        Command::Grant(_) => "grant",
        Command::Revoke(_) => "revoke",
        Command::Status(_) => "status",
        Command::Audit(_) => "audit",
    }
}

async fn run_command(
    cli: Cli,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitCode, CliError> {
    let endpoints = endpoints(&cli.global)?;
    if let Some(actor) = &cli.global.actor {
        crate::connect::set_actor(actor)?;
    }
    match cli.command {
        Command::Up(args) => up::up(&cli.global, &args, out).await?,
        Command::Apply(args) => {
            let source = Source::Manifest(args.file);
            run_sync(&endpoints, &source, sync_options(&args.sync), out, err).await?;
        }
        Command::Import(ImportCommand::Peribolos { path, sync }) => {
            run_sync(
                &endpoints,
                &Source::Peribolos(path),
                sync_options(&sync),
                out,
                err,
            )
            .await?;
        }
        Command::Check(args) => {
            let check = access::CheckArgs {
                organization: args.org,
                user: args.user,
                resource: args.resource,
                permission: args.permission,
            };
            let allowed = access::check(&endpoints, &check, args.output.output, out).await?;
            if !allowed {
                return Ok(ExitCode::from(EXIT_DENIED));
            }
        }
        Command::Access(args) => {
            access::access(
                &endpoints,
                &args.org,
                &args.user,
                args.resource_type.as_deref(),
                args.output.output,
                out,
            )
            .await?;
        }
        Command::Who(args) => {
            access::who(
                &endpoints,
                &args.org,
                &args.resource,
                args.output.output,
                out,
            )
            .await?;
        }
        Command::Organizations(command) => match command {
            OrganizationsCommand::List(output) => {
                admin::organizations_list(&endpoints, output.output, out).await?
            }
            OrganizationsCommand::Show { org, output } => {
                admin::organizations_show(&endpoints, &org, output.output, out).await?;
            }
            OrganizationsCommand::Create { name, display_name } => {
                admin::organizations_create(&endpoints, &name, display_name.as_deref(), out)
                    .await?;
            }
            OrganizationsCommand::AddMember { org, user, role } => {
                admin::organizations_add_member(&endpoints, &org, &user, role.into(), out).await?;
            }
            OrganizationsCommand::RemoveMember { org, user } => {
                admin::organizations_remove_member(&endpoints, &org, &user, out).await?;
            }
        },
        Command::Users(command) => match command {
            UsersCommand::List { org, output } => {
                admin::users_list(&endpoints, org.as_deref(), output.output, out).await?;
            }
            UsersCommand::Show { user, output } => {
                admin::users_show(&endpoints, &user, output.output, out).await?
            }
            UsersCommand::Create {
                login,
                email,
                display_name,
            } => {
                admin::users_create(
                    &endpoints,
                    &login,
                    email.as_deref(),
                    display_name.as_deref(),
                    out,
                )
                .await?;
            }
        },
        Command::Teams(command) => match command {
            TeamsCommand::List { org, output } => {
                admin::teams_list(&endpoints, &org, output.output, out).await?
            }
            TeamsCommand::Show { org, team, output } => {
                admin::teams_show(&endpoints, &org, &team, output.output, out).await?;
            }
            TeamsCommand::Create {
                org,
                name,
                parent,
                description,
                color,
            } => {
                let team = admin::NewTeam {
                    organization: &org,
                    name: &name,
                    parent: parent.as_deref(),
                    description: description.as_deref(),
                    color: color.as_deref(),
                };
                admin::teams_create(&endpoints, team, out).await?;
            }
            TeamsCommand::Delete { org, team } => {
                admin::teams_delete(&endpoints, &org, &team, out).await?
            }
        },
        Command::Members(command) => match command {
            MembersCommand::List {
                org,
                team,
                descendants,
                output,
            } => {
                admin::members_list(&endpoints, &org, &team, descendants, output.output, out)
                    .await?
            }
            MembersCommand::Add {
                org,
                team,
                users,
                expires,
            } => admin::members_add(&endpoints, &org, &team, &users, expires, out).await?,
            MembersCommand::Remove { org, team, users } => {
                admin::members_remove(&endpoints, &org, &team, &users, out).await?;
            }
        },
        Command::Resources(ResourcesCommand::List {
            org,
            resource_type,
            output,
        }) => {
            admin::resources_list(
                &endpoints,
                &org,
                resource_type.as_deref(),
                output.output,
                out,
            )
            .await?
        }
        Command::Grant(args) => {
            let subject = subject(&args.subject)?;
            let grant = admin::GrantArgs {
                organization: &args.org,
                resource: &args.resource,
                subject: &subject,
                permissions: &args.permission,
                no_access: args.no_access,
                expires: args.expires,
            };
            admin::grant(&endpoints, grant, out).await?;
        }
        Command::Revoke(args) => {
            let subject = subject(&args.subject)?;
            admin::revoke(&endpoints, &args.org, &args.resource, &subject, out).await?;
        }
        Command::Status(output) => admin::status(&endpoints, output.output, out).await?,
        Command::Audit(args) => {
            admin::audit(
                &endpoints,
                &args.org,
                args.actor.as_deref(),
                args.limit,
                args.output.output,
                out,
            )
            .await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
