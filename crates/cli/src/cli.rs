//! The command tree of `workteams`, as clap derive definitions.

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use workteams_domain::MemberRole;

use crate::manifest::parse_time;
use crate::output::OutputFormat;
use crate::resolve::ResourceArg;

/// Default address of the directory, where `workteams up` starts it.
pub const DEFAULT_DIRECTORY_ADDRESS: &str = "127.0.0.1:50151";
/// Default address of the authorization sidecar, where `workteams up` starts it.
pub const DEFAULT_AUTHZ_ADDRESS: &str = "127.0.0.1:50152";
/// Default data folder, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./.workteams";

#[derive(Debug, Parser)]
#[command(
    name = "workteams",
    version,
    about = "Group an organization's people into teams and give teams access to resources.",
    long_about = "Group an organization's people into teams and give teams access to resources.\n\n\
                  `workteams up` starts the team directory and the authorization sidecar; the other \
                  commands talk to them over gRPC."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Address of the team directory (HOST:PORT or http://HOST:PORT).
    #[arg(long, global = true, env = "WORKTEAMS_DIRECTORY", value_name = "ADDRESS", default_value = DEFAULT_DIRECTORY_ADDRESS)]
    pub directory: String,

    /// Address of the authorization sidecar (HOST:PORT or http://HOST:PORT).
    #[arg(long, global = true, env = "WORKTEAMS_AUTHZ", value_name = "ADDRESS", default_value = DEFAULT_AUTHZ_ADDRESS)]
    pub authz: String,

    /// Folder of local state: the SQLite database that `up` creates, and the
    /// consistency token of the last write, which later reads wait for.
    #[arg(long, global = true, env = "WORKTEAMS_DATA_DIR", value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,

    /// Who makes the changes, recorded in the directory's audit log (for
    /// example a login, or a user id, which also fills `added_by` and
    /// `granted_by`). Only a directory without authentication records it;
    /// otherwise the token names the actor.
    #[arg(long, global = true, env = "WORKTEAMS_ACTOR", value_name = "ACTOR")]
    pub actor: Option<String>,

    /// File holding the bearer token (a JWT) sent to the directory. Without
    /// it, the WORKTEAMS_TOKEN variable is used, else the development token
    /// that `workteams up` keeps in the data folder.
    #[arg(long, global = true, env = "WORKTEAMS_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// File holding the service token (a JWT) sent to the sidecar, for a
    /// sidecar started with its own authentication settings. Without it,
    /// sidecar calls carry no token.
    #[arg(long, global = true, env = "WORKTEAMS_AUTHZ_TOKEN_FILE", value_name = "FILE")]
    pub authz_token_file: Option<PathBuf>,

    /// Time limit for one call to a service, in seconds.
    #[arg(
        long,
        global = true,
        env = "WORKTEAMS_TIMEOUT",
        value_name = "SECONDS",
        default_value_t = 120
    )]
    pub timeout: u64,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the team directory and the authorization sidecar in this process.
    Up(UpArgs),

    /// Sync organizations from a manifest: print the plan, then apply it.
    Apply(ApplyArgs),

    /// Sync organizations from another tool's configuration.
    #[command(subcommand)]
    Import(ImportCommand),

    /// Check whether a user has a permission on a resource, and why.
    /// Exits with 0 when allowed, 1 when denied, 2 on error.
    Check(CheckArgs),

    /// List the resources a user can use in an organization, and why.
    Access(AccessArgs),

    /// List the users who can use a resource, and why.
    Who(WhoArgs),

    /// List, show and create organizations, and manage their members.
    #[command(subcommand, name = "orgs")]
    Organizations(OrganizationsCommand),

    /// List, show and create users.
    #[command(subcommand)]
    Users(UsersCommand),

    /// List, show, create and remove teams.
    #[command(subcommand)]
    Teams(TeamsCommand),

    /// List, add and remove the members of a team.
    #[command(subcommand)]
    Members(MembersCommand),

    /// List the resources of an organization.
    #[command(subcommand)]
    Resources(ResourcesCommand),

    /// Give a team or a user access to a resource (replaces their grant on it).
    Grant(GrantArgs),

    /// Remove a team's or a user's grant on a resource.
    Revoke(RevokeArgs),

    /// Show the directory's revision and the sidecar's index.
    Status(OutputArgs),

    /// List the recorded changes of an organization, newest first.
    Audit(AuditArgs),
}

#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// Organization name or id.
    #[arg(long, env = "WORKTEAMS_ORG", value_name = "ORG")]
    pub org: String,

    /// Only changes made by this actor.
    #[arg(long, value_name = "ACTOR")]
    pub actor: Option<String>,

    /// Largest number of events to list.
    #[arg(long, value_name = "COUNT", default_value_t = 50)]
    pub limit: usize,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// Database URL (sqlite://PATH or postgres://...). Without it, a SQLite
    /// database is created under the data folder.
    #[arg(long, env = "WORKTEAMS_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,

    /// Address and port the directory listens on.
    #[arg(long, value_name = "ADDRESS", default_value = DEFAULT_DIRECTORY_ADDRESS)]
    pub directory_listen: SocketAddr,

    /// Address and port the authorization sidecar listens on.
    #[arg(long, value_name = "ADDRESS", default_value = DEFAULT_AUTHZ_ADDRESS)]
    pub authz_listen: SocketAddr,
}

#[derive(Debug, Clone, Args)]
pub struct SyncArgs {
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Also remove members, teams, memberships, resources and grants that the
    /// directory contains and the file does not list.
    #[arg(long)]
    pub prune: bool,

    /// Apply a pruning plan even when it removes more than
    /// --max-removal-percent of an organization's members, team memberships
    /// or grants.
    #[arg(long)]
    pub force: bool,

    /// Largest share of an organization's members, team memberships or grants
    /// one pruning apply may remove without --force, in percent.
    #[arg(long, value_name = "PERCENT", default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub max_removal_percent: u32,
}

#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    /// The manifest to apply (YAML; see examples/company.yaml).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,

    #[command(flatten)]
    pub sync: SyncArgs,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import a Peribolos configuration: a folder of <org>/org.yaml files
    /// (with <org>/**/teams.yaml) or one file with a top-level `orgs:` map.
    Peribolos {
        /// The folder or file to import.
        #[arg(value_name = "PATH")]
        path: PathBuf,

        #[command(flatten)]
        sync: SyncArgs,
    },
}

#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Organization name or id.
    #[arg(long, env = "WORKTEAMS_ORG", value_name = "ORG")]
    pub org: String,

    /// User login, e-mail address or id.
    #[arg(long, value_name = "USER")]
    pub user: String,

    /// The resource as TYPE:EXTERNAL_ID, for example git.repository:kubernetes.
    #[arg(long, value_name = "TYPE:EXTERNAL_ID")]
    pub resource: ResourceArg,

    /// The permission to check, for example read or modify.
    #[arg(long, value_name = "PERMISSION")]
    pub permission: String,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Clone, Args)]
pub struct AccessArgs {
    /// Organization name or id.
    #[arg(long, env = "WORKTEAMS_ORG", value_name = "ORG")]
    pub org: String,

    /// User login, e-mail address or id.
    #[arg(long, value_name = "USER")]
    pub user: String,

    /// Only resources of this type, for example kdrive.folder.
    #[arg(long = "type", value_name = "TYPE")]
    pub resource_type: Option<String>,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Clone, Args)]
pub struct WhoArgs {
    /// Organization name or id.
    #[arg(long, env = "WORKTEAMS_ORG", value_name = "ORG")]
    pub org: String,

    /// The resource as TYPE:EXTERNAL_ID.
    #[arg(long, value_name = "TYPE:EXTERNAL_ID")]
    pub resource: ResourceArg,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum OrganizationsCommand {
    /// List every organization.
    List(OutputArgs),

    /// Show an organization and its settings.
    Show {
        /// Organization name or id.
        #[arg(value_name = "ORG")]
        org: String,

        #[command(flatten)]
        output: OutputArgs,
    },

    /// Create an organization.
    Create {
        /// Unique organization name.
        #[arg(value_name = "NAME")]
        name: String,

        /// Name shown to people; defaults to NAME.
        #[arg(long, value_name = "TEXT")]
        display_name: Option<String>,
    },

    /// Add a user to an organization, or change their role.
    AddMember {
        /// Organization name or id.
        #[arg(long, env = "WORKTEAMS_ORG", value_name = "ORG")]
        org: String,

        /// User login, e-mail address or id.
        #[arg(value_name = "USER")]
        user: String,

        /// The member's role.
        #[arg(long, value_enum, default_value_t = RoleArg::Collaborator)]
        role: RoleArg,
    },

    /// Remove a user from an organization, with their team memberships and
    /// individual grants there.
    RemoveMember {
        /// Organization name or id.
        #[arg(long, env = "WORKTEAMS_ORG", value_name = "ORG")]
        org: String,

        /// User login, e-mail address or id.
        #[arg(value_name = "USER")]
        user: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Owner,
    Administrator,
    Collaborator,
    External,
}

impl From<RoleArg> for MemberRole {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Owner => Self::Owner,
            RoleArg::Administrator => Self::Administrator,
            RoleArg::Collaborator => Self::Collaborator,
            RoleArg::External => Self::External,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List every user, or with --org the organization's members and roles.
    List {
        /// Organization name or id.
        #[arg(long, env = "WORKTEAMS_ORG", value_name = "ORG")]
        org: Option<String>,

        #[command(flatten)]
        output: OutputArgs,
    },

    /// Show a user and the teams they are in.
    Show {
        /// User login, e-mail address or id.
        #[arg(value_name = "USER")]
        user: String,

        #[command(flatten)]
        output: OutputArgs,
    },

    /// Create a user.
    Create {
        /// Unique login (letters, digits, '-', '_' and '.').
        #[arg(value_name = "LOGIN")]
        login: String,

        /// E-mail address.
        #[arg(long, value_name = "ADDRESS")]
        email: Option<String>,

        /// Name shown to people.
        #[arg(long, value_name = "TEXT")]
        display_name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TeamsCommand {
    /// List the teams of an organization.
    List {
        /// Organization name or id.
        #[arg(long, env = "WORKTEAMS_ORG", value_name = "ORG")]
        org: String,

        #[command(flatten)]
        output: OutputArgs,
    },

    /// Show a team with its members and grants.
    Show {
        /// Organization name or id.
        #[arg(long, env = "WORKTEAMS_ORG", value_name = "ORG")]
        org: String,

        /// Team name or id.
        #[arg(value_name = "TEAM")]
        team: String,

        #[command(flatten)]
        output: OutputArgs,
    },

    /// Create a team.
    Create {
        /// Organization name or id.
        #[arg(long, env = "WORKTEAMS_ORG", value_name = "ORG")]
        org: String,

        /// Team name, unique in the organization; may contain '/'.
        #[arg(value_name = "NAME")]
        name: String,

        /// Parent team name or id.
        #[arg(long, value_name = "TEAM")]
        parent: Option<String>,

        #[arg(long, value_name = "TEXT")]
        description: Option<String>,

        /// Hex color such as #1a73e8.
        #[arg(long, value_name = "COLOR")]
        color: Option<String>,
    },

    /// Remove a team with its memberships and grants; its child teams move
    /// to its parent.
    Delete {
        /// Organization name or id.
        #[arg(long, env = "WORKTEAMS_ORG", value_name = "ORG")]
        org: String,

        /// Team name or id.
        #[arg(value_name = "TEAM")]
        team: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum MembersCommand {
    /// List the members of a team.
    List {
        /// Organization name or id.
        #[arg(long, env = "WORKTEAMS_ORG", value_name = "ORG")]
        org: String,

        /// Team name or id.
        #[arg(value_name = "TEAM")]
        team: String,

        /// Also list the members of every descendant team.
        #[arg(long)]
        descendants: bool,

        #[command(flatten)]
        output: OutputArgs,
    },

    /// Add users to a team (they must be members of the organization).
    Add {
        /// Organization name or id.
        #[arg(long, env = "WORKTEAMS_ORG", value_name = "ORG")]
        org: String,

        /// Team name or id.
        #[arg(value_name = "TEAM")]
        team: String,

        /// User logins, e-mail addresses or ids.
        #[arg(value_name = "USER", required = true)]
        users: Vec<String>,

        /// End of the membership: a date (midnight UTC) or an RFC 3339 time.
        #[arg(long, value_name = "TIME", value_parser = parse_time_arg)]
        expires: Option<DateTime<Utc>>,
    },

    /// Remove users from a team.
    Remove {
        /// Organization name or id.
        #[arg(long, env = "WORKTEAMS_ORG", value_name = "ORG")]
        org: String,

        /// Team name or id.
        #[arg(value_name = "TEAM")]
        team: String,

        /// User logins, e-mail addresses or ids.
        #[arg(value_name = "USER", required = true)]
        users: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ResourcesCommand {
    /// List the resources of an organization.
    List {
        /// Organization name or id.
        #[arg(long, env = "WORKTEAMS_ORG", value_name = "ORG")]
        org: String,

        /// Only resources of this type.
        #[arg(long = "type", value_name = "TYPE")]
        resource_type: Option<String>,

        #[command(flatten)]
        output: OutputArgs,
    },
}

#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("subject").required(true).args(["team", "user"])))]
pub struct SubjectArgs {
    /// The team, by name or id.
    #[arg(long, value_name = "TEAM")]
    pub team: Option<String>,

    /// The user, by login, e-mail address or id.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
}

#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("access").required(true).args(["permission", "no_access"])))]
pub struct GrantArgs {
    /// Organization name or id.
    #[arg(long, env = "WORKTEAMS_ORG", value_name = "ORG")]
    pub org: String,

    /// The resource as TYPE:EXTERNAL_ID.
    #[arg(long, value_name = "TYPE:EXTERNAL_ID")]
    pub resource: ResourceArg,

    #[command(flatten)]
    pub subject: SubjectArgs,

    /// A permission to give; repeat for several. For types with ordered
    /// levels give exactly one level, which implies the lower ones.
    #[arg(long, value_name = "PERMISSION")]
    pub permission: Vec<String>,

    /// An explicit "no access" for a user, which overrides team grants on
    /// types where individual grants take precedence.
    #[arg(long, conflicts_with = "team")]
    pub no_access: bool,

    /// End of the grant: a date (midnight UTC) or an RFC 3339 time.
    #[arg(long, value_name = "TIME", value_parser = parse_time_arg)]
    pub expires: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Args)]
pub struct RevokeArgs {
    /// Organization name or id.
    #[arg(long, env = "WORKTEAMS_ORG", value_name = "ORG")]
    pub org: String,

    /// The resource as TYPE:EXTERNAL_ID.
    #[arg(long, value_name = "TYPE:EXTERNAL_ID")]
    pub resource: ResourceArg,

    #[command(flatten)]
    pub subject: SubjectArgs,
}

fn parse_time_arg(text: &str) -> Result<DateTime<Utc>, String> {
    parse_time(text).ok_or_else(|| {
        format!("{text:?} is not a date or time; write 2026-12-31 or 2026-12-31T18:00:00Z")
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn check_parses_resource() {
        let cli = Cli::try_parse_from([
            "workteams",
            "check",
            "--org",
            "kubernetes",
            "--user",
            "dev0001",
            "--resource",
            "git.repository:api",
            "--permission",
            "write",
        ])
        .unwrap();
        let Command::Check(args) = cli.command else {
            panic!("not a check");
        };
        assert_eq!(args.resource.external_id, "api");
    }

    #[test]
    fn grant_needs_a_subject() {
        let parsed = Cli::try_parse_from([
            "workteams",
            "grant",
            "--org",
            "acme",
            "--resource",
            "kdrive.folder:1",
            "--permission",
            "view",
        ]);
        assert!(parsed.is_err());
    }

    #[test]
    fn removal_share_is_bounded() {
        let parsed = Cli::try_parse_from([
            "workteams",
            "apply",
            "-f",
            "x.yaml",
            "--max-removal-percent",
            "101",
        ]);
        assert!(parsed.is_err());
    }
}
