//! Reading a Peribolos organization configuration (the format of
//! kubernetes/org and Prow's `peribolos` tool) into the desired state.
//!
//! Two layouts are read:
//! - a folder with one `<org>/org.yaml` per organization, plus any number of
//!   `<org>/**/teams.yaml` files that add teams to that organization (the
//!   path may also be a single `<org>` folder);
//! - a single file with a top-level `orgs:` map from organization name to
//!   its configuration.
//!
//! The organization's name is the folder name or the `orgs:` key; the
//! `name:` field is its display name. `admins` become owners and `members`
//! collaborators. A team's `maintainers` are its leaders (and members), its
//! `members` are members, nested `teams:` are child teams and `previously`
//! lists former names. Every repository named in the organization's `repos`
//! or a team's `repos` becomes a `git.repository` resource named by the
//! repository, and a team's `repos` entries are team grants of the given
//! level.
//! `default_repository_permission` is the organization's base level on
//! repositories and owners hold the highest level, as on GitHub.
//!
//! GitHub requires every team member to be an organization member, but
//! configurations do not always list them: such a person is added to the
//! organization as a collaborator. A repository collaborator who is not a
//! member becomes an external member with an individual grant.
//!
//! Logins compare ignoring case, as GitHub's do, and keep the spelling first
//! met (files in name order, `org.yaml` first). Keys outside the Peribolos
//! schema are ignored with a warning.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use marked_yaml::Node;
use workteams_domain::text::{
    MAX_EXTERNAL_ID_CHARS, MAX_NAME_CHARS, check_description, check_login, check_name,
};
use workteams_domain::{MemberRole, MemberStatus, ResourceTypeDef, ResourceTypeRegistry};

use crate::desired::{
    Access, BaseLevel, DesiredGrant, DesiredMember, DesiredOrganization, DesiredResource,
    DesiredSettings, DesiredState, DesiredTeam, DesiredTeamMember, ResourceKey, SubjectName,
    TypeDefault, UserCollector, login_key, order_teams, organization_key, team_key,
};
use crate::manifest::Loaded;
use crate::yaml::{
    Diagnostics, Location, MappingView, Reader, SourceFile, UnknownKeys, parse_source,
};

/// The resource type repositories are imported as.
pub const REPOSITORY_TYPE: &str = "git.repository";

const FULL_CONFIG_KEYS: &[&str] = &["orgs"];
const ORGANIZATION_KEYS: &[&str] = &[
    "billing_email",
    "company",
    "email",
    "name",
    "description",
    "location",
    "has_organization_projects",
    "has_repository_projects",
    "default_repository_permission",
    "members_can_create_repositories",
    "teams",
    "members",
    "admins",
    "repos",
    "roles",
];
const TEAMS_FILE_KEYS: &[&str] = &["teams"];
const TEAM_KEYS: &[&str] = &[
    "description",
    "privacy",
    "members",
    "maintainers",
    "teams",
    "previously",
    "repos",
];
const REPOSITORY_KEYS: &[&str] = &[
    "description",
    "homepage",
    "private",
    "visibility",
    "has_issues",
    "has_projects",
    "has_wiki",
    "allow_squash_merge",
    "allow_merge_commit",
    "allow_rebase_merge",
    "squash_merge_commit_title",
    "squash_merge_commit_message",
    "default_branch",
    "archived",
    "previously",
    "collaborators",
    "on_create",
    "fork_from",
];
const PRIVACY_VALUES: &[&str] = &["closed", "secret"];

/// One organization's files: `org.yaml` (or the `orgs:` entry) first, then
/// the `teams.yaml` files.
struct OrganizationSources {
    name: String,
    name_location: Location,
    config: ConfigSource,
    teams_files: Vec<SourceFile>,
}

enum ConfigSource {
    /// A whole `org.yaml` file.
    File(SourceFile),
    /// One value of the `orgs:` map of a single file.
    Entry { file: Arc<str>, node: Node },
}

/// Reads a Peribolos configuration at `path`, a file or a folder.
pub fn load_peribolos(path: &Path, registry: &ResourceTypeRegistry) -> Result<Loaded, Diagnostics> {
    let mut diagnostics = Diagnostics::default();
    let file: Arc<str> = Arc::from(path.display().to_string());
    let repository_type = repository_type(registry, &file, &mut diagnostics)?;

    let sources = if path.is_dir() {
        folder_sources(path, &mut diagnostics)
    } else {
        read_source(path, &mut diagnostics)
            .map(|source| single_file_sources(&source, &mut diagnostics))
            .unwrap_or_default()
    };

    finish_state(sources, &repository_type, diagnostics)
}

/// Parses and checks the text of a single-file Peribolos configuration (a
/// top-level `orgs:` map); `name` is the file name used in messages.
pub fn parse_peribolos(
    name: &str,
    text: &str,
    registry: &ResourceTypeRegistry,
) -> Result<Loaded, Diagnostics> {
    let mut diagnostics = Diagnostics::default();
    let repository_type = repository_type(registry, &Arc::from(name), &mut diagnostics)?;

    let sources = match parse_source(name, text) {
        Ok(source) => single_file_sources(&source, &mut diagnostics),
        Err(error) => {
            diagnostics.errors.push(error);
            Vec::new()
        }
    };

    finish_state(sources, &repository_type, diagnostics)
}

fn repository_type(
    registry: &ResourceTypeRegistry,
    file: &Arc<str>,
    diagnostics: &mut Diagnostics,
) -> Result<ResourceTypeDef, Diagnostics> {
    if let Some(definition) = registry.get(REPOSITORY_TYPE) {
        return Ok((**definition).clone());
    }
    diagnostics.error(
        Location::whole_file(file),
        format!("the directory has no {REPOSITORY_TYPE} resource type to import repositories as"),
    );
    Err(std::mem::take(diagnostics))
}

fn finish_state(
    sources: Vec<OrganizationSources>,
    repository_type: &ResourceTypeDef,
    mut diagnostics: Diagnostics,
) -> Result<Loaded, Diagnostics> {
    if diagnostics.has_errors() {
        return Err(diagnostics);
    }

    let state = build_state(sources, repository_type, &mut diagnostics);
    if diagnostics.has_errors() {
        Err(diagnostics)
    } else {
        Ok(Loaded {
            state,
            warnings: diagnostics.warnings,
        })
    }
}

fn read_source(path: &Path, diagnostics: &mut Diagnostics) -> Option<SourceFile> {
    let name = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            diagnostics.error(
                Location::whole_file(&Arc::from(name)),
                format!("cannot read the file: {error}"),
            );
            return None;
        }
    };
    match parse_source(&name, &text) {
        Ok(source) => Some(source),
        Err(error) => {
            diagnostics.errors.push(error);
            None
        }
    }
}

fn single_file_sources(source: &SourceFile, diagnostics: &mut Diagnostics) -> Vec<OrganizationSources> {
    let mut reader = Reader::new(&source.name, diagnostics);
    let Some(root) = reader.mapping(&source.root, "the configuration") else {
        return Vec::new();
    };
    if let Some(mapping) = root.node() {
        reader.check_keys(
            mapping,
            "the configuration",
            FULL_CONFIG_KEYS,
            UnknownKeys::Warn,
        );
    }
    let Some(orgs) = root.get("orgs") else {
        let location = Location::whole_file(&source.name);
        reader.error(
            location,
            "no top-level `orgs:` map; pass a folder of <org>/org.yaml files or a file with `orgs:`",
        );
        return Vec::new();
    };
    let Some(orgs) = reader.mapping(orgs, "orgs") else {
        return Vec::new();
    };

    orgs.entries()
        .into_iter()
        .map(|(name, node)| OrganizationSources {
            name: name.as_str().to_owned(),
            name_location: reader.span_location(name.span()),
            config: ConfigSource::Entry {
                file: Arc::clone(&source.name),
                node: node.clone(),
            },
            teams_files: Vec::new(),
        })
        .collect()
}

fn folder_sources(path: &Path, diagnostics: &mut Diagnostics) -> Vec<OrganizationSources> {
    let organization_folders: Vec<PathBuf> = if path.join("org.yaml").is_file() {
        vec![path.to_path_buf()]
    } else {
        let entries = match sorted_entries(path) {
            Ok(entries) => entries,
            Err(error) => {
                let file: Arc<str> = Arc::from(path.display().to_string());
                diagnostics.error(
                    Location::whole_file(&file),
                    format!("cannot list the folder: {error}"),
                );
                return Vec::new();
            }
        };
        let folders: Vec<PathBuf> = entries
            .into_iter()
            .filter(|entry| entry.is_dir() && entry.join("org.yaml").is_file())
            .collect();
        if folders.is_empty() {
            let file: Arc<str> = Arc::from(path.display().to_string());
            diagnostics.error(
                Location::whole_file(&file),
                "no organization found: expected org.yaml here or in its subfolders (<org>/org.yaml)",
            );
        }
        folders
    };

    let mut sources = Vec::with_capacity(organization_folders.len());
    for folder in organization_folders {
        let Some(name) = folder_name(&folder) else {
            let file: Arc<str> = Arc::from(folder.display().to_string());
            diagnostics.error(
                Location::whole_file(&file),
                "the folder name is not valid UTF-8",
            );
            continue;
        };
        let Some(config) = read_source(&folder.join("org.yaml"), diagnostics) else {
            continue;
        };

        let mut teams_paths = Vec::new();
        collect_teams_files(&folder, &mut teams_paths, diagnostics);
        let teams_files = teams_paths
            .iter()
            .filter_map(|teams_path| read_source(teams_path, diagnostics))
            .collect();

        sources.push(OrganizationSources {
            name,
            name_location: Location::whole_file(&config.name),
            config: ConfigSource::File(config),
            teams_files,
        });
    }
    sources
}

fn folder_name(folder: &Path) -> Option<String> {
    let absolute = if folder.file_name().is_some() {
        folder.to_path_buf()
    } else {
        std::fs::canonicalize(folder).ok()?
    };
    absolute.file_name()?.to_str().map(str::to_owned)
}

fn sorted_entries(folder: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut entries = std::fs::read_dir(folder)?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<std::io::Result<Vec<_>>>()?;
    entries.sort();
    Ok(entries)
}

/// Collects every `teams.yaml` under `folder`, depth first in name order.
fn collect_teams_files(folder: &Path, found: &mut Vec<PathBuf>, diagnostics: &mut Diagnostics) {
    let entries = match sorted_entries(folder) {
        Ok(entries) => entries,
        Err(error) => {
            let file: Arc<str> = Arc::from(folder.display().to_string());
            diagnostics.error(
                Location::whole_file(&file),
                format!("cannot list the folder: {error}"),
            );
            return;
        }
    };
    for entry in entries {
        if entry.is_dir() {
            collect_teams_files(&entry, found, diagnostics);
        } else if entry.file_name().is_some_and(|name| name == "teams.yaml") {
            found.push(entry);
        }
    }
}

/// The content of one organization's files, before it becomes a
/// [`DesiredOrganization`].
struct OrganizationBuilder<'r> {
    repository_type: &'r ResourceTypeDef,
    name: String,
    display_name: Option<String>,
    base_level: BaseLevel,
    /// Role by folded login, with the login's spelling and where it was met.
    members: BTreeMap<String, (String, MemberRole, Location)>,
    member_order: Vec<String>,
    teams: Vec<DesiredTeam>,
    team_names: HashMap<String, Location>,
    repositories: Vec<DesiredResource>,
    repository_names: HashMap<ResourceKey, Location>,
    grants: Vec<DesiredGrant>,
    grant_keys: HashSet<(ResourceKey, SubjectName)>,
}

fn build_state(
    sources: Vec<OrganizationSources>,
    repository_type: &ResourceTypeDef,
    diagnostics: &mut Diagnostics,
) -> DesiredState {
    let mut users = UserCollector::default();
    let mut organizations = Vec::with_capacity(sources.len());
    let mut seen_organizations: HashMap<String, Location> = HashMap::new();

    for source in sources {
        if let Err(error) = check_name("organization name", &source.name, MAX_NAME_CHARS) {
            diagnostics.error(source.name_location.clone(), error.to_string());
            continue;
        }
        let key = organization_key(&source.name);
        if let Some(first) = seen_organizations.get(&key) {
            diagnostics.error(
                source.name_location.clone(),
                format!(
                    "organization {} is declared twice (first at {first})",
                    source.name
                ),
            );
            continue;
        }
        seen_organizations.insert(key, source.name_location.clone());

        let mut builder = OrganizationBuilder {
            repository_type,
            name: source.name.clone(),
            display_name: None,
            base_level: BaseLevel::Keep,
            members: BTreeMap::new(),
            member_order: Vec::new(),
            teams: Vec::new(),
            team_names: HashMap::new(),
            repositories: Vec::new(),
            repository_names: HashMap::new(),
            grants: Vec::new(),
            grant_keys: HashSet::new(),
        };

        let origin = match &source.config {
            ConfigSource::File(file) => {
                let mut reader = Reader::new(&file.name, diagnostics);
                builder.read_config(&mut reader, &file.root, &mut users);
                Location::whole_file(&file.name)
            }
            ConfigSource::Entry { file, node } => {
                let mut reader = Reader::new(file, diagnostics);
                builder.read_config(&mut reader, node, &mut users);
                reader.location(node)
            }
        };
        for teams_file in &source.teams_files {
            let mut reader = Reader::new(&teams_file.name, diagnostics);
            builder.read_teams_file(&mut reader, &teams_file.root, &mut users);
        }

        organizations.push(builder.finish(origin, diagnostics));
    }

    DesiredState {
        users: users.into_users(),
        organizations,
    }
}

impl OrganizationBuilder<'_> {
    fn read_config(&mut self, reader: &mut Reader<'_>, node: &Node, users: &mut UserCollector) {
        let what = format!("organization {}", self.name);
        let Some(config) = reader.mapping(node, &what) else {
            return;
        };
        if let Some(mapping) = config.node() {
            reader.check_keys(mapping, &what, ORGANIZATION_KEYS, UnknownKeys::Warn);
        }

        if let Some(node) = config.get("name")
            && let Some(Some(display_name)) = reader.optional_string(node, "name")
        {
            match check_name("name", &display_name, MAX_NAME_CHARS) {
                Ok(()) => self.display_name = Some(display_name),
                Err(error) => {
                    let location = reader.location(node);
                    reader.error(location, error.to_string());
                }
            }
        }
        if let Some(node) = config.get("default_repository_permission") {
            self.read_default_permission(reader, node);
        }
        if let Some(node) = config.get("roles") {
            let location = reader.location(node);
            reader.warn(
                location,
                "organization roles have no equivalent in Work Teams and are not imported",
            );
        }

        if let Some(node) = config.get("admins") {
            for (login, location) in reader.string_list(node, "admins") {
                self.add_member(reader, users, &login, MemberRole::Owner, &location);
            }
        }
        if let Some(node) = config.get("members") {
            for (login, location) in reader.string_list(node, "members") {
                self.add_member(reader, users, &login, MemberRole::Collaborator, &location);
            }
        }
        if let Some(node) = config.get("teams") {
            self.read_teams(reader, node, None, users);
        }
        if let Some(node) = config.get("repos") {
            self.read_repositories(reader, node, users);
        }
        self.check_bool_settings(reader, config);
    }

    /// Checks the types of the org settings that are accepted but not used,
    /// so a malformed file is rejected as Peribolos would reject it.
    fn check_bool_settings(&self, reader: &mut Reader<'_>, config: MappingView<'_>) {
        for key in [
            "has_organization_projects",
            "has_repository_projects",
            "members_can_create_repositories",
        ] {
            if let Some(node) = config.get(key) {
                reader.boolean(node, key);
            }
        }
        for key in [
            "billing_email",
            "company",
            "email",
            "description",
            "location",
        ] {
            if let Some(node) = config.get(key) {
                reader.optional_string(node, key);
            }
        }
    }

    fn read_default_permission(&mut self, reader: &mut Reader<'_>, node: &Node) {
        let Some(level) = reader.string(node, "default_repository_permission") else {
            return;
        };
        if level == "none" {
            self.base_level = BaseLevel::None;
        } else if self.repository_type.permission_index(&level).is_some() {
            self.base_level = BaseLevel::Level(level);
        } else {
            let location = reader.location(node);
            reader.error(
                location,
                format!(
                    "default_repository_permission: unknown level {level:?}; valid: none, {}",
                    self.repository_type.permissions.join(", ")
                ),
            );
        }
    }

    fn read_teams_file(&mut self, reader: &mut Reader<'_>, root: &Node, users: &mut UserCollector) {
        let Some(root) = reader.mapping(root, "the teams file") else {
            return;
        };
        if let Some(mapping) = root.node() {
            reader.check_keys(
                mapping,
                "a teams.yaml file",
                TEAMS_FILE_KEYS,
                UnknownKeys::Warn,
            );
        }
        if let Some(node) = root.get("teams") {
            self.read_teams(reader, node, None, users);
        }
    }

    fn add_member(
        &mut self,
        reader: &mut Reader<'_>,
        users: &mut UserCollector,
        login: &str,
        role: MemberRole,
        location: &Location,
    ) -> Option<String> {
        if let Err(error) = check_login("login", login) {
            reader.error(location.clone(), error.to_string());
            return None;
        }
        let spelling = users.add(reader.diagnostics, login, None, None, location);
        let key = login_key(login);
        match self.members.get_mut(&key) {
            None => {
                self.members
                    .insert(key.clone(), (spelling.clone(), role, location.clone()));
                self.member_order.push(key);
            }
            Some((_, existing, first)) => {
                if *existing == MemberRole::Owner && role == MemberRole::Collaborator {
                    reader.warn(
                        location.clone(),
                        format!("{login} is listed in both admins (at {first}) and members; kept as an admin"),
                    );
                } else if role < *existing {
                    *existing = role;
                }
            }
        }
        Some(spelling)
    }

    /// Makes sure a person named in a team or as a collaborator belongs to
    /// the organization, adding them with `role` if not.
    fn ensure_member(
        &mut self,
        reader: &mut Reader<'_>,
        users: &mut UserCollector,
        login: &str,
        role: MemberRole,
        location: &Location,
    ) -> Option<String> {
        if let Err(error) = check_login("login", login) {
            reader.error(location.clone(), error.to_string());
            return None;
        }
        let key = login_key(login);
        match self.members.get_mut(&key) {
            Some((_, existing, _)) => {
                if role < *existing {
                    *existing = role;
                }
                Some(users.add(reader.diagnostics, login, None, None, location))
            }
            None => self.add_member(reader, users, login, role, location),
        }
    }

    fn read_teams(
        &mut self,
        reader: &mut Reader<'_>,
        node: &Node,
        parent: Option<&str>,
        users: &mut UserCollector,
    ) {
        let Some(teams) = reader.mapping(node, "teams") else {
            return;
        };
        for (name, team_node) in teams.entries() {
            let location = reader.span_location(name.span());
            let name = name.as_str().to_owned();
            self.read_team(reader, &name, location, team_node, parent, users);
        }
    }

    fn read_team(
        &mut self,
        reader: &mut Reader<'_>,
        name: &str,
        origin: Location,
        node: &Node,
        parent: Option<&str>,
        users: &mut UserCollector,
    ) {
        let what = format!("team {name}");
        if let Err(error) = check_name("team name", name, MAX_NAME_CHARS) {
            reader.error(origin, error.to_string());
            return;
        }
        let Some(team) = reader.mapping(node, &what) else {
            return;
        };
        if let Some(mapping) = team.node() {
            reader.check_keys(mapping, &what, TEAM_KEYS, UnknownKeys::Warn);
        }

        let previous_names: Vec<String> = match team.get("previously") {
            Some(node) => reader
                .string_list(node, &format!("{what}: previously"))
                .into_iter()
                .filter_map(|(previous, location)| {
                    match check_name("previously", &previous, MAX_NAME_CHARS) {
                        Ok(()) => Some(previous),
                        Err(error) => {
                            reader.error(location, error.to_string());
                            None
                        }
                    }
                })
                .collect(),
            None => Vec::new(),
        };
        if !self.claim_team_names(reader, name, &previous_names, &origin) {
            return;
        }

        let description = match team.get("description") {
            Some(node) => match reader.optional_string(node, &format!("{what}: description")) {
                Some(Some(description)) => match check_description("description", &description) {
                    Ok(()) => Some(description),
                    Err(error) => {
                        let location = reader.location(node);
                        reader.error(location, error.to_string());
                        None
                    }
                },
                _ => None,
            },
            None => None,
        };
        if let Some(node) = team.get("privacy")
            && let Some(privacy) = reader.string(node, &format!("{what}: privacy"))
            && !PRIVACY_VALUES.contains(&privacy.as_str())
        {
            let location = reader.location(node);
            reader.error(
                location,
                format!("{what}: privacy must be closed or secret, not {privacy:?}"),
            );
        }

        let mut members: Vec<DesiredTeamMember> = Vec::new();
        let mut leaders: Vec<String> = Vec::new();
        let mut member_keys: HashSet<String> = HashSet::new();
        if let Some(node) = team.get("maintainers") {
            for (login, location) in reader.string_list(node, &format!("{what}: maintainers")) {
                let Some(login) =
                    self.ensure_member(reader, users, &login, MemberRole::Collaborator, &location)
                else {
                    continue;
                };
                if member_keys.insert(login_key(&login)) {
                    members.push(DesiredTeamMember {
                        login: login.clone(),
                        expire_time: None,
                    });
                    leaders.push(login);
                }
            }
        }
        if let Some(node) = team.get("members") {
            for (login, location) in reader.string_list(node, &format!("{what}: members")) {
                let Some(login) =
                    self.ensure_member(reader, users, &login, MemberRole::Collaborator, &location)
                else {
                    continue;
                };
                if member_keys.insert(login_key(&login)) {
                    members.push(DesiredTeamMember {
                        login,
                        expire_time: None,
                    });
                }
            }
        }

        if let Some(node) = team.get("repos") {
            self.read_team_grants(reader, node, name, &what);
        }

        self.teams.push(DesiredTeam {
            name: name.to_owned(),
            previous_names,
            description,
            color: None,
            parent: parent.map(str::to_owned),
            organization_role: None,
            leaders,
            members,
            origin,
        });

        if let Some(node) = team.get("teams") {
            self.read_teams(reader, node, Some(name), users);
        }
    }

    /// Reserves a team's name and former names in the organization; false
    /// (with an error) when another team already uses one of them.
    fn claim_team_names(
        &mut self,
        reader: &mut Reader<'_>,
        name: &str,
        previous: &[String],
        origin: &Location,
    ) -> bool {
        let mut free = true;
        for claimed in std::iter::once(name).chain(previous.iter().map(String::as_str)) {
            if let Some(first) = self.team_names.get(&team_key(claimed)) {
                reader.error(
                    origin.clone(),
                    format!("team name {claimed} is already used by the team declared at {first}"),
                );
                free = false;
            }
        }
        if free {
            for claimed in std::iter::once(name).chain(previous.iter().map(String::as_str)) {
                self.team_names.insert(team_key(claimed), origin.clone());
            }
        }
        free
    }

    fn read_team_grants(&mut self, reader: &mut Reader<'_>, node: &Node, team: &str, what: &str) {
        let Some(repos) = reader.mapping(node, &format!("{what}: repos")) else {
            return;
        };
        for (repository, level_node) in repos.entries() {
            let location = reader.span_location(repository.span());
            let repository = repository.as_str().to_owned();
            let Some(external_id) = self.ensure_repository(reader, &repository, &location) else {
                continue;
            };
            let Some(access) =
                self.read_level(reader, level_node, &format!("{what}: repos.{repository}"))
            else {
                continue;
            };
            self.add_grant(
                reader,
                external_id,
                SubjectName::Team(team.to_owned()),
                access,
                location,
            );
        }
    }

    fn read_repositories(
        &mut self,
        reader: &mut Reader<'_>,
        node: &Node,
        users: &mut UserCollector,
    ) {
        let Some(repos) = reader.mapping(node, "repos") else {
            return;
        };
        for (repository, settings_node) in repos.entries() {
            let location = reader.span_location(repository.span());
            let repository = repository.as_str().to_owned();
            let what = format!("repos.{repository}");
            let Some(settings) = reader.mapping(settings_node, &what) else {
                continue;
            };
            if let Some(mapping) = settings.node() {
                reader.check_keys(mapping, &what, REPOSITORY_KEYS, UnknownKeys::Warn);
            }

            let Some(external_id) = self.ensure_repository(reader, &repository, &location) else {
                continue;
            };
            if let Some(node) = settings.get("previously") {
                let previous = reader.string_list(node, &format!("{what}.previously"));
                self.add_previous_repository_names(reader, &external_id, previous);
            }
            if let Some(node) = settings.get("collaborators") {
                let Some(collaborators) = reader.mapping(node, &format!("{what}.collaborators"))
                else {
                    continue;
                };
                for (login, level_node) in collaborators.entries() {
                    let login_location = reader.span_location(login.span());
                    let Some(access) = self.read_level(
                        reader,
                        level_node,
                        &format!("{what}.collaborators.{}", login.as_str()),
                    ) else {
                        continue;
                    };
                    let Some(login) = self.ensure_member(
                        reader,
                        users,
                        login.as_str(),
                        MemberRole::External,
                        &login_location,
                    ) else {
                        continue;
                    };
                    self.add_grant(
                        reader,
                        external_id.clone(),
                        SubjectName::User(login),
                        access,
                        login_location,
                    );
                }
            }
        }
    }

    /// Declares a repository once (names compare ignoring case); returns the
    /// spelling in force.
    fn ensure_repository(
        &mut self,
        reader: &mut Reader<'_>,
        repository: &str,
        location: &Location,
    ) -> Option<String> {
        if let Err(error) = check_name("repository", repository, MAX_EXTERNAL_ID_CHARS) {
            reader.error(location.clone(), error.to_string());
            return None;
        }
        let key = ResourceKey::new(self.repository_type, repository);
        if self.repository_names.contains_key(&key) {
            let existing = self
                .repositories
                .iter()
                .find(|resource| {
                    ResourceKey::new(self.repository_type, &resource.external_id) == key
                })
                .map(|resource| resource.external_id.clone());
            // A former name of another repository.
            return existing.or_else(|| {
                reader.error(
                    location.clone(),
                    format!(
                        "repository {repository} is listed as the former name of another repository"
                    ),
                );
                None
            });
        }
        self.repository_names.insert(key, location.clone());
        self.repositories.push(DesiredResource {
            resource_type: REPOSITORY_TYPE.to_owned(),
            external_id: repository.to_owned(),
            previous_external_ids: Vec::new(),
            display_name: None,
            parent: None,
            inherits: true,
            origin: location.clone(),
        });
        Some(repository.to_owned())
    }

    fn add_previous_repository_names(
        &mut self,
        reader: &mut Reader<'_>,
        external_id: &str,
        previous: Vec<(String, Location)>,
    ) {
        for (name, location) in previous {
            if let Err(error) = check_name("previously", &name, MAX_EXTERNAL_ID_CHARS) {
                reader.error(location, error.to_string());
                continue;
            }
            let key = ResourceKey::new(self.repository_type, &name);
            if let Some(first) = self.repository_names.get(&key) {
                reader.error(
                    location,
                    format!("repository name {name} is already used at {first}"),
                );
                continue;
            }
            self.repository_names.insert(key, location);
            if let Some(resource) = self
                .repositories
                .iter_mut()
                .find(|resource| resource.external_id == external_id)
            {
                resource.previous_external_ids.push(name);
            }
        }
    }

    fn read_level(&self, reader: &mut Reader<'_>, node: &Node, what: &str) -> Option<Access> {
        let level = reader.string(node, what)?;
        match self
            .repository_type
            .parse_grant_permissions(what, std::slice::from_ref(&level))
        {
            Ok(set) => Some(Access::Permissions(set)),
            Err(_) => {
                let location = reader.location(node);
                reader.error(
                    location,
                    format!(
                        "{what}: unknown permission {level:?}; valid: {}",
                        self.repository_type.permissions.join(", ")
                    ),
                );
                None
            }
        }
    }

    fn add_grant(
        &mut self,
        reader: &mut Reader<'_>,
        external_id: String,
        subject: SubjectName,
        access: Access,
        origin: Location,
    ) {
        let folded_subject = match &subject {
            SubjectName::Team(name) => SubjectName::Team(team_key(name)),
            SubjectName::User(login) => SubjectName::User(login_key(login)),
        };
        let key = (
            ResourceKey::new(self.repository_type, &external_id),
            folded_subject,
        );
        if !self.grant_keys.insert(key) {
            reader.error(
                origin,
                format!("repository {external_id} is listed twice for the same team or user"),
            );
            return;
        }
        self.grants.push(DesiredGrant {
            resource_type: REPOSITORY_TYPE.to_owned(),
            external_id,
            subject,
            access,
            expire_time: None,
            origin,
        });
    }

    fn finish(self, origin: Location, diagnostics: &mut Diagnostics) -> DesiredOrganization {
        let members = self
            .member_order
            .iter()
            .filter_map(|key| self.members.get(key))
            .map(|(login, role, location)| DesiredMember {
                login: login.clone(),
                role: *role,
                status: MemberStatus::Active,
                origin: location.clone(),
            })
            .collect();

        let mut resource_type_defaults = BTreeMap::new();
        resource_type_defaults.insert(
            REPOSITORY_TYPE.to_owned(),
            Some(TypeDefault {
                base_level: self.base_level,
                administrators_get_highest_level: true,
            }),
        );
        let settings = DesiredSettings {
            leaders_manage_members: None,
            resource_type_defaults,
            remove_unlisted_defaults: false,
        };

        DesiredOrganization {
            display_name: self.display_name.unwrap_or_else(|| self.name.clone()),
            name: self.name,
            settings,
            members,
            teams: order_teams(self.teams, diagnostics),
            resources: self.repositories,
            grants: self.grants,
            origin,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::fs;

    use super::*;

    fn registry() -> ResourceTypeRegistry {
        ResourceTypeRegistry::with_builtins(Vec::new()).unwrap()
    }

    fn write(root: &Path, relative: &str, text: &str) {
        let path = root.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    const ORG: &str = "\
name: Example Org
default_repository_permission: read
billing_email: someone@example.org
admins: [Alice]
members: [bob, BOB]
teams:
  parent/team:
    maintainers: [alice]
    members: [carol]
    privacy: closed
    previously: [old-parent]
    repos:
      api: write
    teams:
      child:
        members: [dave]
        repos:
          API: admin
";

    #[test]
    fn folder_layout_reads_org_and_teams() {
        let folder = tempfile::tempdir().unwrap();
        write(folder.path(), "example/org.yaml", ORG);
        write(
            folder.path(),
            "example/sig-x/teams.yaml",
            "teams:\n  extra:\n    members: [erin]\n",
        );
        let loaded = load_peribolos(folder.path(), &registry()).unwrap();

        let organization = &loaded.state.organizations[0];
        assert_eq!(organization.name, "example");
        assert_eq!(organization.display_name, "Example Org");
        let teams: Vec<&str> = organization
            .teams
            .iter()
            .map(|team| team.name.as_str())
            .collect();
        assert_eq!(teams, vec!["parent/team", "child", "extra"]);
        assert_eq!(organization.teams[1].parent.as_deref(), Some("parent/team"));
        assert_eq!(organization.resources.len(), 1);
        assert_eq!(organization.grants.len(), 2);
    }

    #[test]
    fn roles_and_collaborators_map() {
        let folder = tempfile::tempdir().unwrap();
        write(folder.path(), "example/org.yaml", ORG);
        let loaded = load_peribolos(folder.path(), &registry()).unwrap();
        let members = &loaded.state.organizations[0].members;
        let summary: Vec<(&str, MemberRole)> = members
            .iter()
            .map(|member| (member.login.as_str(), member.role))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("Alice", MemberRole::Owner),
                ("bob", MemberRole::Collaborator),
                ("carol", MemberRole::Collaborator),
                ("dave", MemberRole::Collaborator),
            ]
        );
    }

    #[test]
    fn maintainers_lead_and_belong() {
        let folder = tempfile::tempdir().unwrap();
        write(folder.path(), "example/org.yaml", ORG);
        let loaded = load_peribolos(folder.path(), &registry()).unwrap();
        let team = &loaded.state.organizations[0].teams[0];
        assert_eq!(team.leaders, vec!["Alice".to_owned()]);
        assert_eq!(team.members.len(), 2);
        assert_eq!(team.previous_names, vec!["old-parent".to_owned()]);
    }

    #[test]
    fn single_file_layout_uses_keys() {
        let folder = tempfile::tempdir().unwrap();
        let indented: String = ORG.lines().map(|line| format!("    {line}\n")).collect();
        write(
            folder.path(),
            "config.yaml",
            &format!("orgs:\n  example:\n{indented}"),
        );
        let loaded = load_peribolos(&folder.path().join("config.yaml"), &registry()).unwrap();
        assert_eq!(loaded.state.organizations[0].name, "example");
        assert_eq!(loaded.state.organizations[0].teams.len(), 2);
    }

    #[test]
    fn text_entry_point_matches_file() {
        let indented: String = ORG.lines().map(|line| format!("    {line}\n")).collect();
        let text = format!("orgs:\n  example:\n{indented}");
        let folder = tempfile::tempdir().unwrap();
        write(folder.path(), "config.yaml", &text);

        let path = folder.path().join("config.yaml");

        let from_file = load_peribolos(&path, &registry()).unwrap();
        let from_text = parse_peribolos(&path.display().to_string(), &text, &registry()).unwrap();
        assert_eq!(format!("{:?}", from_text.state), format!("{:?}", from_file.state));

        let errors = parse_peribolos("config.yaml", "orgs: [", &registry()).unwrap_err();
        assert!(errors.has_errors());
    }

    #[test]
    fn unknown_keys_are_warnings() {
        let folder = tempfile::tempdir().unwrap();
        write(
            folder.path(),
            "example/org.yaml",
            "admins: [a]\nfavourite_color: blue\nteams:\n  t:\n    slack: x\n",
        );
        let loaded = load_peribolos(folder.path(), &registry()).unwrap();
        assert_eq!(loaded.warnings.len(), 2);
        assert_eq!(loaded.warnings[0].location.line, 2);
        assert!(loaded.warnings[0].message.contains("favourite_color"));
        assert!(loaded.warnings[1].message.contains("slack"));
    }

    #[test]
    fn bad_level_is_an_error() {
        let folder = tempfile::tempdir().unwrap();
        write(
            folder.path(),
            "example/org.yaml",
            "teams:\n  t:\n    repos:\n      api: push\n",
        );
        let errors = load_peribolos(folder.path(), &registry())
            .unwrap_err()
            .errors;
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].location.line, 4);
        assert!(errors[0].location.file.ends_with("org.yaml"));
    }

    #[test]
    fn duplicate_team_across_files() {
        let folder = tempfile::tempdir().unwrap();
        write(folder.path(), "example/org.yaml", "teams:\n  t: {}\n");
        write(folder.path(), "example/x/teams.yaml", "teams:\n  T: {}\n");
        let errors = load_peribolos(folder.path(), &registry())
            .unwrap_err()
            .errors;
        assert!(errors[0].message.contains("already used"), "{}", errors[0]);
        assert!(errors[0].location.file.ends_with("teams.yaml"));
    }

    #[test]
    fn default_permission_none_means_no_base() {
        let folder = tempfile::tempdir().unwrap();
        write(
            folder.path(),
            "example/org.yaml",
            "default_repository_permission: none\n",
        );
        let loaded = load_peribolos(folder.path(), &registry()).unwrap();
        let defaults = &loaded.state.organizations[0]
            .settings
            .resource_type_defaults;
        let default = defaults[REPOSITORY_TYPE].as_ref().unwrap();
        assert_eq!(default.base_level, BaseLevel::None);
        assert!(default.administrators_get_highest_level);
    }

    #[test]
    fn single_org_folder_is_accepted() {
        let folder = tempfile::tempdir().unwrap();
        write(folder.path(), "solo/org.yaml", "admins: [a]\n");
        let loaded = load_peribolos(&folder.path().join("solo"), &registry()).unwrap();
        assert_eq!(loaded.state.organizations[0].name, "solo");
    }

    #[test]
    fn bad_privacy_is_rejected() {
        let folder = tempfile::tempdir().unwrap();
        write(
            folder.path(),
            "example/org.yaml",
            "teams:\n  t:\n    privacy: public\n",
        );
        assert!(load_peribolos(folder.path(), &registry()).is_err());
    }

    #[test]
    fn kubernetes_example_reads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/peribolos-kubernetes/config");
        let loaded = load_peribolos(&path, &registry()).unwrap();
        assert_eq!(loaded.state.organizations.len(), 8);
        let teams: usize = loaded
            .state
            .organizations
            .iter()
            .map(|organization| organization.teams.len())
            .sum();
        assert_eq!(teams, 766);
    }
}
