//! The seeded generator of realistic directories the benchmark measures.
//!
//! One organization, skewed like a real company. Most users sit in a few
//! large teams while a few belong to dozens, and teams nest a few levels
//! deep. kDrive folders form trees several levels deep with inheritance
//! breaks and individual overrides (some of them "no access"). Mailboxes
//! collect cumulative grants from several teams and people, chat channels get
//! the organization's base level, and a share of memberships and grants carry
//! an expiry, some already past. The same seed and size give the same
//! directory; only the timestamps follow `now`.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;
use workteams_domain::resource_type::builtin_resource_types;
use workteams_domain::{
    Entity, Grant, Member, MemberRole, MemberStatus, Membership, Organization, OrganizationId,
    OrganizationSettings, Resource, ResourceId, ResourceTypeDefault, ResourceTypeRegistry, Subject,
    Team, TeamId, User, UserId,
};

pub const FOLDER_TYPE: &str = "kdrive.folder";
pub const MAILBOX_TYPE: &str = "mail.mailbox";
pub const CHANNEL_TYPE: &str = "kchat.channel";
pub const REPOSITORY_TYPE: &str = "git.repository";

/// Deepest folder level the generator creates: a root is at depth 0.
pub const MAX_FOLDER_DEPTH: usize = 7;

/// How far in the past an expired membership or grant ended, and how far in
/// the future a live one ends: both far enough from `now` that no answer
/// changes while a run lasts.
const EXPIRED_AGO: Duration = Duration::days(3);
const EXPIRES_IN: Duration = Duration::days(30);

/// A named directory size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Size {
    /// For the smoke test: seconds at most.
    Tiny,
    Small,
    Medium,
    Large,
}

impl Size {
    pub const ALL: [Size; 4] = [Size::Tiny, Size::Small, Size::Medium, Size::Large];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Tiny => "tiny",
            Self::Small => "small",
            Self::Medium => "medium",
            Self::Large => "large",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|size| size.name() == text)
    }

    /// Users, teams and resources of the size.
    pub const fn shape(self) -> Shape {
        match self {
            Self::Tiny => Shape {
                users: 60,
                teams: 12,
                resources: 150,
            },
            Self::Small => Shape {
                users: 2_000,
                teams: 200,
                resources: 5_000,
            },
            Self::Medium => Shape {
                users: 20_000,
                teams: 2_000,
                resources: 100_000,
            },
            Self::Large => Shape {
                users: 100_000,
                teams: 10_000,
                resources: 1_000_000,
            },
        }
    }
}

/// Entity counts a directory is generated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub users: usize,
    pub teams: usize,
    pub resources: usize,
}

/// A generated directory as domain entities. Teams come after their parent
/// team and resources after their parent resource, so they can be created
/// in order.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub size: Size,
    pub seed: u64,
    /// The instant expiries were placed around.
    pub generated_at: DateTime<Utc>,
    pub registry: ResourceTypeRegistry,
    pub organization: Organization,
    pub users: Vec<User>,
    pub members: Vec<Member>,
    pub teams: Vec<Team>,
    pub memberships: Vec<Membership>,
    pub resources: Vec<Resource>,
    pub grants: Vec<Grant>,
}

impl Dataset {
    /// Returns every entity, in an order that creates parents before children.
    pub fn entities(&self) -> impl Iterator<Item = Entity> + '_ {
        let types = self
            .registry
            .iter()
            .map(|definition| Entity::ResourceType((**definition).clone()));
        types
            .chain(std::iter::once(Entity::Organization(
                self.organization.clone(),
            )))
            .chain(self.users.iter().cloned().map(Entity::User))
            .chain(self.members.iter().cloned().map(Entity::Member))
            .chain(self.teams.iter().cloned().map(Entity::Team))
            .chain(self.memberships.iter().cloned().map(Entity::Membership))
            .chain(self.resources.iter().cloned().map(Entity::Resource))
            .chain(self.grants.iter().cloned().map(Entity::Grant))
    }

    /// Memberships plus grants: the edges an index stores.
    pub fn edge_count(&self) -> usize {
        self.memberships.len() + self.grants.len()
    }
}

/// Generates the directory of `size` from `seed`, with expiries around `now`.
pub fn generate(size: Size, seed: u64, now: DateTime<Utc>) -> Dataset {
    let mut generator = Generator::new(seed, now);
    let shape = size.shape();

    let organization = generator.organization();
    let (users, members) = generator.users(&organization, shape.users);
    let teams = generator.teams(&organization, shape.teams);
    let memberships = generator.memberships(&organization, &users, &teams);
    let resources = generator.resources(&organization, &users, shape.resources);
    // Every user is a member, so grants to users never leave the organization.
    let grants = generator.grants(&organization, &users, &teams, &resources);

    let registry =
        ResourceTypeRegistry::with_builtins(Vec::new()).unwrap_or_else(|_| unreachable_registry());
    Dataset {
        size,
        seed,
        generated_at: now,
        registry,
        organization,
        users,
        members,
        teams,
        memberships,
        resources,
        grants,
    }
}

/// Builds the registry of built-in types without failing: they always
/// validate, and `generate` stays infallible without an `expect`.
fn unreachable_registry() -> ResourceTypeRegistry {
    let mut registry = ResourceTypeRegistry::default();
    for definition in builtin_resource_types() {
        let _ = registry.insert(definition);
    }
    registry
}

struct Generator {
    rng: ChaCha8Rng,
    now: DateTime<Utc>,
    /// Milliseconds of the next generated UUIDv7; increases so ids sort in
    /// creation order like real ones.
    next_id_millis: u64,
}

impl Generator {
    fn new(seed: u64, now: DateTime<Utc>) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            now,
            // A fixed epoch keeps ids identical across runs of one seed.
            next_id_millis: 1_767_225_600_000,
        }
    }

    fn uuid_v7(&mut self) -> Uuid {
        self.next_id_millis += 1;
        let random: [u8; 10] = self.rng.random();
        uuid::Builder::from_unix_timestamp_millis(self.next_id_millis, &random).into_uuid()
    }

    /// Draws an edge's expiry: none for most edges, else past or future.
    fn expiry(&mut self, share_with_expiry: f64) -> Option<DateTime<Utc>> {
        if !self.rng.random_bool(share_with_expiry) {
            return None;
        }
        if self.rng.random_bool(0.5) {
            Some(self.now - EXPIRED_AGO)
        } else {
            Some(self.now + EXPIRES_IN)
        }
    }

    fn organization(&mut self) -> Organization {
        let settings = OrganizationSettings {
            leaders_manage_members: true,
            resource_type_defaults: vec![
                ResourceTypeDefault {
                    resource_type: CHANNEL_TYPE.to_owned(),
                    base_level: Some("member".to_owned()),
                    administrators_get_highest_level: true,
                },
                ResourceTypeDefault {
                    resource_type: REPOSITORY_TYPE.to_owned(),
                    base_level: None,
                    administrators_get_highest_level: true,
                },
            ],
        };
        Organization {
            id: OrganizationId::from_uuid(self.uuid_v7()),
            name: "bench-company".to_owned(),
            display_name: "Bench Company".to_owned(),
            settings,
            create_time: self.now,
            update_time: self.now,
            version: 1,
        }
    }

    fn users(&mut self, organization: &Organization, count: usize) -> (Vec<User>, Vec<Member>) {
        let mut users = Vec::with_capacity(count);
        let mut members = Vec::with_capacity(count);
        for position in 0..count {
            let user = User {
                id: UserId::from_uuid(self.uuid_v7()),
                login: format!("user{position:06}"),
                email: Some(format!("user{position:06}@bench.example.com")),
                display_name: format!("User {position}"),
                create_time: self.now,
                update_time: self.now,
                version: 1,
            };
            let role = match (position, self.rng.random_range(0..1_000)) {
                (0, _) => MemberRole::Owner,
                (_, 0..10) => MemberRole::Administrator,
                (_, 10..60) => MemberRole::External,
                _ => MemberRole::Collaborator,
            };
            let status = if position > 0 && self.rng.random_bool(0.01) {
                MemberStatus::Suspended
            } else {
                MemberStatus::Active
            };
            members.push(Member {
                organization_id: organization.id,
                user_id: user.id,
                role,
                status,
                create_time: self.now,
                update_time: self.now,
                version: 1,
            });
            users.push(user);
        }
        (users, members)
    }

    /// Teams as a forest: about one team in ten is a department at the top,
    /// the others hang under an earlier team, at most four levels deep.
    fn teams(&mut self, organization: &Organization, count: usize) -> Vec<Team> {
        const MAX_TEAM_DEPTH: usize = 3;
        let mut teams: Vec<Team> = Vec::with_capacity(count);
        let mut depths: Vec<usize> = Vec::with_capacity(count);
        for position in 0..count {
            let parent = if position == 0 || self.rng.random_bool(0.1) {
                None
            } else {
                let candidate = self.rng.random_range(0..position);
                (depths[candidate] < MAX_TEAM_DEPTH).then_some(candidate)
            };
            depths.push(parent.map_or(0, |parent| depths[parent] + 1));
            teams.push(Team {
                id: TeamId::from_uuid(self.uuid_v7()),
                organization_id: organization.id,
                name: format!("team-{position:05}"),
                description: String::new(),
                color: String::new(),
                parent_team_id: parent.map(|parent| teams[parent].id),
                leader_user_ids: Vec::new(),
                organization_role: None,
                create_time: self.now,
                update_time: self.now,
                version: 1,
            });
        }
        teams
    }

    /// Memberships skewed twice: team popularity follows a Zipf law, so a
    /// few teams hold most users, and users join 1 to 3 teams, some 4 to 10,
    /// and one in fifty joins dozens.
    fn memberships(
        &mut self,
        organization: &Organization,
        users: &[User],
        teams: &[Team],
    ) -> Vec<Membership> {
        let popularity = Zipf::new(teams.len(), 1.0);
        let mut memberships = Vec::new();
        for user in users {
            let wanted = match self.rng.random_range(0..100) {
                0..80 => self.rng.random_range(1..=3),
                80..98 => self.rng.random_range(4..=10),
                _ => self.rng.random_range(20..=60),
            };
            let wanted = wanted.min(teams.len());
            let mut chosen = HashSet::with_capacity(wanted);
            // Zipf draws repeat the head often; bound the attempts.
            for _ in 0..wanted * 8 {
                if chosen.len() == wanted {
                    break;
                }
                chosen.insert(popularity.sample(&mut self.rng));
            }
            let mut chosen: Vec<usize> = chosen.into_iter().collect();
            chosen.sort_unstable();
            for team in chosen {
                memberships.push(Membership {
                    team_id: teams[team].id,
                    user_id: user.id,
                    organization_id: organization.id,
                    added_by: None,
                    add_time: self.now,
                    expire_time: self.expiry(0.05),
                });
            }
        }
        memberships
    }

    /// Resources: 70 % kDrive folders in trees of about forty folders, 15 %
    /// mailboxes, 10 % chat channels and 5 % git repositories.
    fn resources(
        &mut self,
        organization: &Organization,
        users: &[User],
        count: usize,
    ) -> Vec<Resource> {
        let folders = count * 70 / 100;
        let mailboxes = count * 15 / 100;
        let channels = count * 10 / 100;
        let repositories = count - folders - mailboxes - channels;
        let mut resources: Vec<Resource> = Vec::with_capacity(count);

        let mut tree_start = 0;
        let mut depths: Vec<usize> = Vec::with_capacity(folders);
        let mut parents: Vec<Option<usize>> = Vec::with_capacity(folders);
        for position in 0..folders {
            let starts_tree = position == 0 || self.rng.random_bool(1.0 / 40.0);
            if starts_tree {
                tree_start = position;
            }
            let parent = if starts_tree {
                None
            } else {
                // Prefer recent folders so trees grow deep, not only wide.
                let span = position - tree_start;
                let back = self.rng.random_range(0..span.min(6));
                let mut candidate = position - 1 - back;
                while depths[candidate] >= MAX_FOLDER_DEPTH {
                    match parents[candidate] {
                        Some(parent) => candidate = parent,
                        None => break,
                    }
                }
                Some(candidate)
            };
            let depth = parent.map_or(0, |parent| depths[parent] + 1);
            depths.push(depth);
            parents.push(parent);
            let inherits = parent.is_none() || !self.rng.random_bool(0.03);
            let id = ResourceId::from_uuid(self.uuid_v7());
            resources.push(Resource {
                id,
                organization_id: organization.id,
                resource_type: FOLDER_TYPE.to_owned(),
                external_id: format!("/drive/{tree_start}/{position}"),
                display_name: format!("Folder {position}"),
                parent_resource_id: parent.map(|parent: usize| resources[parent].id),
                inherits,
                create_time: self.now,
                update_time: self.now,
                version: 1,
            });
        }

        for position in 0..mailboxes {
            let external_id = match users.get(position) {
                Some(user) if position % 3 != 0 => format!("{}@bench.example.com", user.login),
                _ => format!("shared-{position:06}@bench.example.com"),
            };
            resources.push(self.flat_resource(organization, MAILBOX_TYPE, external_id, position));
        }
        for position in 0..channels {
            let external_id = format!("channel-{position:06}");
            resources.push(self.flat_resource(organization, CHANNEL_TYPE, external_id, position));
        }
        for position in 0..repositories {
            let external_id = format!("repository-{position:06}");
            resources.push(self.flat_resource(
                organization,
                REPOSITORY_TYPE,
                external_id,
                position,
            ));
        }
        resources
    }

    fn flat_resource(
        &mut self,
        organization: &Organization,
        resource_type: &str,
        external_id: String,
        position: usize,
    ) -> Resource {
        Resource {
            id: ResourceId::from_uuid(self.uuid_v7()),
            organization_id: organization.id,
            resource_type: resource_type.to_owned(),
            display_name: format!("{resource_type} {position}"),
            external_id,
            parent_resource_id: None,
            inherits: true,
            create_time: self.now,
            update_time: self.now,
            version: 1,
        }
    }

    fn grants(
        &mut self,
        organization: &Organization,
        users: &[User],
        teams: &[Team],
        resources: &[Resource],
    ) -> Vec<Grant> {
        let team_popularity = Zipf::new(teams.len(), 0.6);
        let mut grants = Vec::with_capacity(resources.len());
        let mut subjects: HashSet<Subject> = HashSet::new();

        for (position, resource) in resources.iter().enumerate() {
            subjects.clear();
            let mut planned: Vec<(Subject, Vec<&'static str>, bool)> = Vec::new();
            let team = |generator: &mut Self| {
                Subject::Team(teams[team_popularity.sample(&mut generator.rng)].id)
            };
            let user = |generator: &mut Self| {
                Subject::User(users[generator.rng.random_range(0..users.len())].id)
            };

            match resource.resource_type.as_str() {
                FOLDER_TYPE => {
                    let is_root = resource.parent_resource_id.is_none();
                    let team_grants = if is_root {
                        self.rng.random_range(1..=3)
                    } else {
                        usize::from(self.rng.random_bool(0.35))
                    };
                    for _ in 0..team_grants {
                        let level = self.folder_level();
                        planned.push((team(self), vec![level], false));
                    }
                    if !is_root && self.rng.random_bool(0.06) {
                        let no_access = self.rng.random_bool(0.25);
                        let levels = if no_access {
                            Vec::new()
                        } else {
                            vec![self.folder_level()]
                        };
                        planned.push((user(self), levels, no_access));
                    }
                }
                MAILBOX_TYPE => {
                    // The mailbox's owner, or the first user for a shared one.
                    let owner = users
                        .get(position % users.len().max(1))
                        .map_or_else(|| user(self), |owner| Subject::User(owner.id));
                    planned.push((
                        owner,
                        vec!["read", "send", "manage_rules", "manage_signatures"],
                        false,
                    ));
                    for _ in 0..self.rng.random_range(0..=2) {
                        let permissions = if self.rng.random_bool(0.5) {
                            vec!["read"]
                        } else {
                            vec!["read", "send"]
                        };
                        planned.push((team(self), permissions, false));
                    }
                    if self.rng.random_bool(0.2) {
                        planned.push((user(self), vec!["read", "restore"], false));
                    }
                }
                CHANNEL_TYPE => {
                    for _ in 0..self.rng.random_range(1..=2) {
                        let level = if self.rng.random_bool(0.8) {
                            "member"
                        } else {
                            "admin"
                        };
                        planned.push((team(self), vec![level], false));
                    }
                    if self.rng.random_bool(0.1) {
                        planned.push((user(self), vec!["admin"], false));
                    }
                }
                _ => {
                    for _ in 0..self.rng.random_range(1..=3) {
                        let level = ["read", "triage", "write", "maintain", "admin"]
                            [self.rng.random_range(0..5)];
                        planned.push((team(self), vec![level], false));
                    }
                }
            }

            for (subject, permissions, no_access) in planned {
                if !subjects.insert(subject) {
                    continue;
                }
                grants.push(Grant {
                    resource_id: resource.id,
                    subject,
                    organization_id: organization.id,
                    permissions: permissions.into_iter().map(str::to_owned).collect(),
                    no_access,
                    expire_time: self.expiry(0.03),
                    granted_by: None,
                    create_time: self.now,
                    update_time: self.now,
                });
            }
        }
        grants
    }

    fn folder_level(&mut self) -> &'static str {
        match self.rng.random_range(0..10) {
            0..6 => "view",
            6..9 => "modify",
            _ => "manage",
        }
    }
}

/// Draws ranks 0..n with probability proportional to 1 / (rank + 1)^exponent.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, exponent: f64) -> Self {
        let mut total = 0.0;
        let cumulative = (0..n.max(1))
            .map(|rank| {
                total += 1.0 / ((rank + 1) as f64).powf(exponent);
                total
            })
            .collect();
        Self { cumulative }
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let target = rng.random::<f64>() * total;
        self.cumulative
            .partition_point(|value| *value < target)
            .min(self.cumulative.len() - 1)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        generate(Size::Tiny, 7, Utc::now())
    }

    #[test]
    fn same_seed_same_ids() {
        let now = Utc::now();
        let first = generate(Size::Tiny, 7, now);
        let second = generate(Size::Tiny, 7, now);
        assert_eq!(first.grants, second.grants);
    }

    #[test]
    fn shape_is_respected() {
        let dataset = tiny();
        let shape = Size::Tiny.shape();
        assert_eq!(dataset.users.len(), shape.users);
        assert_eq!(dataset.teams.len(), shape.teams);
        assert_eq!(dataset.resources.len(), shape.resources);
    }

    #[test]
    fn parents_come_first() {
        let dataset = tiny();
        let mut seen = HashSet::new();
        for resource in &dataset.resources {
            if let Some(parent) = resource.parent_resource_id {
                assert!(
                    seen.contains(&parent),
                    "{} before its parent",
                    resource.external_id
                );
            }
            seen.insert(resource.id);
        }
    }

    #[test]
    fn folder_depth_is_bounded() {
        let dataset = generate(Size::Small, 3, Utc::now());
        let parents: std::collections::HashMap<_, _> = dataset
            .resources
            .iter()
            .map(|resource| (resource.id, resource.parent_resource_id))
            .collect();
        let deepest = dataset
            .resources
            .iter()
            .map(|resource| {
                let mut depth = 0;
                let mut current = resource.parent_resource_id;
                while let Some(parent) = current {
                    depth += 1;
                    current = parents[&parent];
                }
                depth
            })
            .max();
        assert!(deepest.is_some_and(|depth| (3..=MAX_FOLDER_DEPTH).contains(&depth)));
    }

    #[test]
    fn grants_are_unique_per_subject() {
        let dataset = tiny();
        let keys: HashSet<_> = dataset.grants.iter().map(Grant::key).collect();
        assert_eq!(keys.len(), dataset.grants.len());
    }

    #[test]
    fn grant_permissions_are_valid() {
        let dataset = tiny();
        for grant in &dataset.grants {
            let resource = dataset
                .resources
                .iter()
                .find(|resource| resource.id == grant.resource_id);
            let definition =
                resource.and_then(|resource| dataset.registry.get(&resource.resource_type));
            let parsed = definition.map(|definition| {
                definition.parse_grant_permissions("permissions", &grant.permissions)
            });
            assert!(matches!(parsed, Some(Ok(_))), "{grant:?}");
        }
    }
}
