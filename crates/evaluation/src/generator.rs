//! A seeded generator of realistic directories, for benchmarks and load
//! tests (enabled by the `generator` feature).
//!
//! The shape is skewed the way team directories are. There are a few large
//! organizations and many small ones. Most people are in one to three teams
//! and a few in dozens, and popular teams are much larger than the rest.
//! Team trees are a few levels deep. kDrive folder trees are several levels
//! deep, with some inheritance breaks and individual overrides. Mailboxes,
//! channels and repositories are shared with teams and people, and a few
//! memberships and grants expire. The same configuration always produces
//! the same directory.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use workteams_domain::{
    Change, ChangeBatch, Entity, EntityKey, Grant, Member, MemberRole, MemberStatus, Membership,
    Organization, OrganizationId, OrganizationSettings, Resource, ResourceId, ResourceTypeDefault,
    ResourceTypeRegistry, Revision, Subject, Team, TeamId, User, UserId,
};

/// Sizes and seed of a generated directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneratorConfig {
    pub seed: u64,
    pub organizations: usize,
    pub users: usize,
    pub teams: usize,
    pub resources: usize,
    pub grants: usize,
}

impl GeneratorConfig {
    /// Returns a directory size that builds in milliseconds, for smoke runs.
    pub const fn small() -> Self {
        Self {
            seed: 7,
            organizations: 5,
            users: 2_000,
            teams: 200,
            resources: 20_000,
            grants: 20_000,
        }
    }

    /// Returns the size of 100,000 users, 10,000 teams, and 1,000,000
    /// resources and grants.
    pub const fn large() -> Self {
        Self {
            seed: 7,
            organizations: 50,
            users: 100_000,
            teams: 10_000,
            resources: 1_000_000,
            grants: 1_000_000,
        }
    }
}

/// A generated directory: its entities in snapshot order (parents before
/// children) and the ids that samplers draw from.
#[derive(Debug, Clone)]
pub struct GeneratedDirectory {
    pub types: ResourceTypeRegistry,
    pub entities: Vec<Entity>,
    /// The instant the directory is meant to be evaluated at; some
    /// memberships and grants expired before it and some expire after.
    pub now: DateTime<Utc>,
    pub organizations: Vec<OrganizationId>,
    /// Per organization, its members.
    pub users_by_organization: Vec<Vec<UserId>>,
    /// Per organization, its teams, parents before children.
    pub teams_by_organization: Vec<Vec<TeamId>>,
    /// Per organization, its resources.
    pub resources_by_organization: Vec<Vec<ResourceId>>,
    /// Per organization, the resource types of its resources, in the same
    /// order as `resources_by_organization`.
    pub resource_types_by_organization: Vec<Vec<&'static str>>,
    pub memberships: usize,
    pub grants: usize,
    /// Mean number of ancestors of a folder.
    pub mean_folder_depth: f64,
    seed: u64,
}

/// One access question: who, on what, which permission (an index into the
/// type's permission list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckSample {
    pub user: UserId,
    pub resource: ResourceId,
    pub permission_index: usize,
}

const FOLDER: &str = "kdrive.folder";
const MAILBOX: &str = "mail.mailbox";
const CHANNEL: &str = "kchat.channel";
const REPOSITORY: &str = "git.repository";

/// Picks an index in `0..len` with a strong bias towards small indexes,
/// so that the first teams and organizations are the popular ones.
fn skewed(rng: &mut ChaCha8Rng, len: usize) -> usize {
    let uniform: f64 = rng.random();
    ((uniform.powi(3) * len as f64) as usize).min(len.saturating_sub(1))
}

fn base_instant() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 16, 9, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// Draws an expiry for one in twenty memberships or grants, half of them
/// already past at `now`.
fn maybe_expiry(rng: &mut ChaCha8Rng, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if !rng.random_bool(0.05) {
        return None;
    }
    let days = rng.random_range(1..90);
    if rng.random_bool(0.5) {
        Some(now - Duration::days(days))
    } else {
        Some(now + Duration::days(days))
    }
}

struct Generator {
    rng: ChaCha8Rng,
    now: DateTime<Utc>,
    entities: Vec<Entity>,
    ids_made: u64,
}

impl Generator {
    /// Makes a UUIDv7, as the directory does, one millisecond after the last.
    fn uuid(&mut self) -> uuid::Uuid {
        self.ids_made += 1;
        let millis = self.now.timestamp_millis().unsigned_abs() - 86_400_000 + self.ids_made;
        uuid::Builder::from_unix_timestamp_millis(millis, &self.rng.random()).into_uuid()
    }
}

/// Generates the directory `config` describes.
pub fn generate(config: &GeneratorConfig) -> GeneratedDirectory {
    let now = base_instant();
    let mut generator = Generator {
        rng: ChaCha8Rng::seed_from_u64(config.seed),
        now,
        entities: Vec::with_capacity(config.users * 3 + config.resources + config.grants),
        ids_made: 0,
    };
    let organizations = config.organizations.max(1);

    let organization_ids: Vec<OrganizationId> = (0..organizations)
        .map(|position| {
            let id = OrganizationId::from_uuid(generator.uuid());
            let defaults = organization_defaults(&mut generator.rng);
            generator.entities.push(Entity::Organization(Organization {
                id,
                name: format!("Org-{position}"),
                display_name: format!("Organization {position}"),
                settings: OrganizationSettings {
                    leaders_manage_members: position % 2 == 0,
                    resource_type_defaults: defaults,
                },
                create_time: now,
                update_time: now,
                version: 1,
            }));
            id
        })
        .collect();

    let users_by_organization = generate_users(&mut generator, config, &organization_ids);
    let teams_by_organization = generate_teams(
        &mut generator,
        config,
        &organization_ids,
        &users_by_organization,
    );
    let memberships = generate_memberships(
        &mut generator,
        &organization_ids,
        &users_by_organization,
        &teams_by_organization,
    );
    let (resources_by_organization, resource_types_by_organization, grants, mean_folder_depth) =
        generate_resources(
            &mut generator,
            config,
            &organization_ids,
            &users_by_organization,
            &teams_by_organization,
        );

    GeneratedDirectory {
        types: ResourceTypeRegistry::with_builtins(Vec::new()).unwrap_or_default(),
        entities: generator.entities,
        now,
        organizations: organization_ids,
        users_by_organization,
        teams_by_organization,
        resources_by_organization,
        resource_types_by_organization,
        memberships,
        grants,
        mean_folder_depth,
        seed: config.seed,
    }
}

/// Draws channel and repository defaults for about half of the
/// organizations.
fn organization_defaults(rng: &mut ChaCha8Rng) -> Vec<ResourceTypeDefault> {
    let mut defaults = Vec::new();
    if rng.random_bool(0.5) {
        defaults.push(ResourceTypeDefault {
            resource_type: CHANNEL.to_owned(),
            base_level: Some("member".to_owned()),
            administrators_get_highest_level: true,
        });
    }
    if rng.random_bool(0.3) {
        defaults.push(ResourceTypeDefault {
            resource_type: REPOSITORY.to_owned(),
            base_level: Some("read".to_owned()),
            administrators_get_highest_level: rng.random_bool(0.5),
        });
    }
    defaults
}

fn generate_users(
    generator: &mut Generator,
    config: &GeneratorConfig,
    organizations: &[OrganizationId],
) -> Vec<Vec<UserId>> {
    let now = generator.now;
    let mut users_by_organization = vec![Vec::new(); organizations.len()];
    for position in 0..config.users {
        let id = UserId::from_uuid(generator.uuid());
        let organization = if position < organizations.len() {
            position
        } else {
            skewed(&mut generator.rng, organizations.len())
        };
        generator.entities.push(Entity::User(User {
            id,
            login: format!("User.{position}"),
            email: Some(format!("user.{position}@org-{organization}.example")),
            display_name: format!("User {position}"),
            create_time: now,
            update_time: now,
            version: 1,
        }));

        let members = &users_by_organization[organization];
        let role = match (members.is_empty(), generator.rng.random_range(0..100)) {
            (true, _) => MemberRole::Owner,
            (false, 0..2) => MemberRole::Administrator,
            (false, 2..10) => MemberRole::External,
            _ => MemberRole::Collaborator,
        };
        let status = if generator.rng.random_bool(0.02) {
            MemberStatus::Suspended
        } else {
            MemberStatus::Active
        };
        generator.entities.push(Entity::Member(Member {
            organization_id: organizations[organization],
            user_id: id,
            role,
            status,
            create_time: now,
            update_time: now,
            version: 1,
        }));
        users_by_organization[organization].push(id);
    }
    users_by_organization
}

/// Generates teams in proportion to each organization's members, two in five
/// nested under a recent team of the same organization.
fn generate_teams(
    generator: &mut Generator,
    config: &GeneratorConfig,
    organizations: &[OrganizationId],
    users_by_organization: &[Vec<UserId>],
) -> Vec<Vec<TeamId>> {
    let now = generator.now;
    let total_users = users_by_organization
        .iter()
        .map(Vec::len)
        .sum::<usize>()
        .max(1);
    let mut teams_by_organization = Vec::with_capacity(organizations.len());
    for (organization, users) in users_by_organization.iter().enumerate() {
        let count = (config.teams * users.len()).div_ceil(total_users).max(1);
        let mut teams: Vec<TeamId> = Vec::with_capacity(count);
        let mut depths: Vec<usize> = Vec::with_capacity(count);
        for position in 0..count {
            let id = TeamId::from_uuid(generator.uuid());
            let parent = if position > 0 && generator.rng.random_bool(0.4) {
                let recent = position.saturating_sub(20);
                let candidate = generator.rng.random_range(recent..position);
                (depths[candidate] < 5).then_some(candidate)
            } else {
                None
            };
            depths.push(parent.map_or(0, |parent| depths[parent] + 1));
            generator.entities.push(Entity::Team(Team {
                id,
                organization_id: organizations[organization],
                name: format!("Team {position}"),
                description: String::new(),
                color: String::new(),
                parent_team_id: parent.map(|parent| teams[parent]),
                leader_user_ids: Vec::new(),
                organization_role: match generator.rng.random_range(0..100) {
                    0 => Some(MemberRole::Administrator),
                    1..3 => Some(MemberRole::Collaborator),
                    _ => None,
                },
                create_time: now,
                update_time: now,
                version: 1,
            }));
            teams.push(id);
        }
        teams_by_organization.push(teams);
    }
    teams_by_organization
}

/// Generates memberships: most users join one to three teams, a quarter four
/// to eight, and one in fifty twenty to forty. Popular teams are picked far
/// more often.
fn generate_memberships(
    generator: &mut Generator,
    organizations: &[OrganizationId],
    users_by_organization: &[Vec<UserId>],
    teams_by_organization: &[Vec<TeamId>],
) -> usize {
    let now = generator.now;
    let mut count = 0;
    for (organization, users) in users_by_organization.iter().enumerate() {
        let teams = &teams_by_organization[organization];
        for user in users {
            let wanted = match generator.rng.random_range(0..100) {
                0..2 => generator.rng.random_range(20..=40),
                2..27 => generator.rng.random_range(4..=8),
                _ => generator.rng.random_range(1..=3),
            };
            let mut chosen: Vec<usize> = Vec::with_capacity(wanted);
            for _ in 0..wanted.min(teams.len()) {
                let team = skewed(&mut generator.rng, teams.len());
                if !chosen.contains(&team) {
                    chosen.push(team);
                }
            }
            for team in chosen {
                let expire_time = maybe_expiry(&mut generator.rng, now);
                generator.entities.push(Entity::Membership(Membership {
                    team_id: teams[team],
                    user_id: *user,
                    organization_id: organizations[organization],
                    added_by: None,
                    add_time: now,
                    expire_time,
                }));
                count += 1;
            }
        }
    }
    count
}

/// Resources and types by organization, the grant count and the mean folder
/// depth.
type GeneratedResources = (Vec<Vec<ResourceId>>, Vec<Vec<&'static str>>, usize, f64);

/// Generates resources in proportion to each organization's members (three
/// in five folders, then mailboxes, channels and repositories), and grants
/// spread over them.
fn generate_resources(
    generator: &mut Generator,
    config: &GeneratorConfig,
    organizations: &[OrganizationId],
    users_by_organization: &[Vec<UserId>],
    teams_by_organization: &[Vec<TeamId>],
) -> GeneratedResources {
    let now = generator.now;
    let total_users = users_by_organization
        .iter()
        .map(Vec::len)
        .sum::<usize>()
        .max(1);
    let mut resources_by_organization = Vec::with_capacity(organizations.len());
    let mut types_by_organization = Vec::with_capacity(organizations.len());
    let mut grant_count = 0;
    let mut folder_depth_sum = 0_usize;
    let mut folder_count = 0_usize;

    for (organization, users) in users_by_organization.iter().enumerate() {
        let count = (config.resources * users.len())
            .div_ceil(total_users)
            .max(1);
        let grants_wanted = (config.grants * users.len()).div_ceil(total_users);
        let mut resources: Vec<ResourceId> = Vec::with_capacity(count);
        let mut types: Vec<&'static str> = Vec::with_capacity(count);
        let mut folders: Vec<(usize, usize)> = Vec::new();

        for position in 0..count {
            let id = ResourceId::from_uuid(generator.uuid());
            let resource_type = match generator.rng.random_range(0..100) {
                0..60 => FOLDER,
                60..80 => MAILBOX,
                80..90 => CHANNEL,
                _ => REPOSITORY,
            };
            let (parent, inherits) = if resource_type == FOLDER {
                // A new root one time in ten, otherwise a child of a
                // recent folder, at most six levels below its root.
                let parent = if folders.is_empty() || generator.rng.random_bool(0.1) {
                    None
                } else {
                    let recent = folders.len().saturating_sub(50);
                    let (candidate, depth) =
                        folders[generator.rng.random_range(recent..folders.len())];
                    (depth < 6).then_some((candidate, depth))
                };
                let depth = parent.map_or(0, |(_, depth)| depth + 1);
                folders.push((position, depth));
                folder_depth_sum += depth;
                folder_count += 1;
                (
                    parent.map(|(candidate, _)| resources[candidate]),
                    parent.is_none() || !generator.rng.random_bool(0.05),
                )
            } else {
                (None, true)
            };
            let external_id = match resource_type {
                FOLDER => format!("/Shared/{position}"),
                MAILBOX => format!("Box.{position}@Org-{organization}.example"),
                CHANNEL => format!("channel-{position}"),
                _ => format!("org-{organization}/Repo-{position}"),
            };
            generator.entities.push(Entity::Resource(Resource {
                id,
                organization_id: organizations[organization],
                resource_type: resource_type.to_owned(),
                external_id,
                display_name: String::new(),
                parent_resource_id: parent,
                inherits,
                create_time: now,
                update_time: now,
                version: 1,
            }));
            resources.push(id);
            types.push(resource_type);
        }

        grant_count += generate_grants(
            generator,
            organizations[organization],
            grants_wanted,
            &resources,
            &types,
            users,
            &teams_by_organization[organization],
        );
        resources_by_organization.push(resources);
        types_by_organization.push(types);
    }
    let mean_folder_depth = folder_depth_sum as f64 / folder_count.max(1) as f64;
    (
        resources_by_organization,
        types_by_organization,
        grant_count,
        mean_folder_depth,
    )
}

fn generate_grants(
    generator: &mut Generator,
    organization: OrganizationId,
    wanted: usize,
    resources: &[ResourceId],
    types: &[&'static str],
    users: &[UserId],
    teams: &[TeamId],
) -> usize {
    let now = generator.now;
    let mut seen = std::collections::HashSet::with_capacity(wanted);
    let mut count = 0;
    for _ in 0..wanted {
        let position = generator.rng.random_range(0..resources.len());
        let resource_type = types[position];
        let to_team = !users.is_empty()
            && match resource_type {
                FOLDER => generator.rng.random_bool(0.6),
                MAILBOX => generator.rng.random_bool(0.4),
                _ => generator.rng.random_bool(0.8),
            };
        let subject = if to_team || users.is_empty() {
            Subject::Team(teams[skewed(&mut generator.rng, teams.len())])
        } else {
            Subject::User(users[generator.rng.random_range(0..users.len())])
        };
        if !seen.insert((position, subject)) {
            continue;
        }

        let no_access = resource_type == FOLDER
            && matches!(subject, Subject::User(_))
            && generator.rng.random_bool(0.1);
        let permissions: Vec<String> = if no_access {
            Vec::new()
        } else {
            let names: &[&str] = match resource_type {
                FOLDER => &["view", "modify", "manage"],
                MAILBOX => &["read", "send", "manage_rules", "restore"],
                CHANNEL => &["member", "admin"],
                _ => &["read", "triage", "write", "maintain", "admin"],
            };
            let first = generator.rng.random_range(0..names.len());
            let mut chosen = vec![names[first].to_owned()];
            if resource_type == MAILBOX && generator.rng.random_bool(0.5) {
                chosen.push(names[(first + 1) % names.len()].to_owned());
            }
            chosen
        };
        generator.entities.push(Entity::Grant(Grant {
            resource_id: resources[position],
            subject,
            organization_id: organization,
            permissions,
            no_access,
            expire_time: maybe_expiry(&mut generator.rng, now),
            granted_by: None,
            create_time: now,
            update_time: now,
        }));
        count += 1;
    }
    count
}

impl GeneratedDirectory {
    /// Draws access questions uniformly over resources, each asked by a
    /// member of the resource's organization.
    pub fn sample_checks(&self, seed: u64, count: usize) -> Vec<CheckSample> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ seed);
        let weights: Vec<usize> = self
            .resources_by_organization
            .iter()
            .map(Vec::len)
            .collect();
        let total: usize = weights.iter().sum();
        let mut samples = Vec::with_capacity(count);
        while samples.len() < count && total > 0 {
            let mut target = rng.random_range(0..total);
            let organization = weights
                .iter()
                .position(|weight| {
                    if target < *weight {
                        true
                    } else {
                        target -= weight;
                        false
                    }
                })
                .unwrap_or(0);
            let users = &self.users_by_organization[organization];
            if users.is_empty() {
                continue;
            }
            let resource = target;
            let permissions = match self.resource_types_by_organization[organization][resource] {
                FOLDER => 3,
                MAILBOX => 8,
                CHANNEL => 2,
                _ => 5,
            };
            samples.push(CheckSample {
                user: users[rng.random_range(0..users.len())],
                resource: self.resources_by_organization[organization][resource],
                permission_index: rng.random_range(0..permissions),
            });
        }
        samples
    }

    /// Builds a small committed transaction against this directory: four new
    /// team grants, four memberships, the removal of one individual grant
    /// (which may not exist) and one team moved to the top level.
    pub fn sample_batch(&self, seed: u64, revision: Revision) -> ChangeBatch {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ seed.rotate_left(17));
        let organization = skewed(&mut rng, self.organizations.len());
        let organization_id = self.organizations[organization];
        let users = &self.users_by_organization[organization];
        let teams = &self.teams_by_organization[organization];
        let resources = &self.resources_by_organization[organization];
        let mut changes = Vec::new();

        for _ in 0..4 {
            let resource = rng.random_range(0..resources.len());
            let team = teams[rng.random_range(0..teams.len())];
            let permission = match self.resource_types_by_organization[organization][resource] {
                FOLDER => "view",
                CHANNEL => "member",
                _ => "read",
            };
            changes.push(Change::Upserted(Entity::Grant(Grant {
                resource_id: resources[resource],
                subject: Subject::Team(team),
                organization_id,
                permissions: vec![permission.to_owned()],
                no_access: false,
                expire_time: None,
                granted_by: None,
                create_time: self.now,
                update_time: self.now,
            })));
        }
        if !users.is_empty() {
            for _ in 0..4 {
                changes.push(Change::Upserted(Entity::Membership(Membership {
                    team_id: teams[rng.random_range(0..teams.len())],
                    user_id: users[rng.random_range(0..users.len())],
                    organization_id,
                    added_by: None,
                    add_time: self.now,
                    expire_time: None,
                })));
            }
            let user = users[rng.random_range(0..users.len())];
            changes.push(Change::Deleted {
                key: EntityKey::Grant(workteams_domain::GrantKey {
                    resource_id: resources[rng.random_range(0..resources.len())],
                    subject: Subject::User(user),
                }),
                organization_id: Some(organization_id),
            });
        }
        let moved = teams[rng.random_range(0..teams.len())];
        changes.push(Change::Upserted(Entity::Team(Team {
            id: moved,
            organization_id,
            name: "Moved team".to_owned(),
            description: String::new(),
            color: String::new(),
            parent_team_id: None,
            leader_user_ids: Vec::new(),
            organization_role: None,
            create_time: self.now,
            update_time: self.now,
            version: 2,
        })));

        ChangeBatch {
            revision,
            changes,
            actor: None,
            request_id: None,
            traceparent: None,
            commit_time: self.now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic() {
        let config = GeneratorConfig {
            users: 300,
            teams: 30,
            resources: 1_000,
            grants: 1_000,
            ..GeneratorConfig::small()
        };
        assert_eq!(generate(&config).entities, generate(&config).entities);
    }

    #[test]
    fn generated_sizes_match_config() {
        let config = GeneratorConfig::small();
        let directory = generate(&config);
        let users: usize = directory.users_by_organization.iter().map(Vec::len).sum();
        let resources: usize = directory
            .resources_by_organization
            .iter()
            .map(Vec::len)
            .sum();
        assert_eq!(users, config.users);
        assert!(resources >= config.resources);
        assert!(directory.grants > config.grants * 9 / 10);
    }
}
