//! Property test: on random directories, the index agrees with the
//! reference evaluator for every user, resource and permission, whether it
//! was loaded from a snapshot (in any order) or followed change batches.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use support::{at, now};
use workteams_domain::{
    Change, ChangeBatch, Combining, Entity, EntityKey, Member, MemberRole, MemberStatus,
    Membership, Organization, OrganizationId, OrganizationSettings, ResourceId, ResourceTypeDef,
    ResourceTypeDefault, ResourceTypeRegistry, Revision, Subject, TeamId, User, UserId,
};
use workteams_evaluation::reference::Directory;
use workteams_evaluation::{AccessEntry, AccessFilter, AccessPage, Index, PageRequest};

const ORGANIZATIONS: usize = 2;
const TYPES: [&str; 5] = [
    "kdrive.folder",
    "mail.mailbox",
    "kchat.channel",
    "git.repository",
    "wiki.page",
];

/// Builds a custom cumulative type whose grants propagate. The unordered variant
/// also compares external ids ignoring case.
fn wiki_page(permissions: &[&str], ordered_levels: bool) -> ResourceTypeDef {
    ResourceTypeDef {
        name: "wiki.page".to_owned(),
        permissions: permissions.iter().map(|name| (*name).to_owned()).collect(),
        ordered_levels,
        combining: Combining::Cumulative,
        grants_propagate: true,
        case_insensitive_external_ids: !ordered_levels,
        nestable: true,
    }
}

fn registry() -> ResourceTypeRegistry {
    ResourceTypeRegistry::with_builtins(vec![wiki_page(&["read", "comment", "edit"], true)])
        .expect("test types are valid")
}

/// Permission names a grant on each type may carry, including a name no
/// type defines.
fn permission_choice(resource_type: &str, choice: u8) -> Vec<String> {
    let options: &[&[&str]] = match resource_type {
        "kdrive.folder" => &[&["view"], &["modify"], &["manage"], &["bogus"]],
        "mail.mailbox" => &[
            &["read"],
            &["send", "restore"],
            &["read", "manage_rules"],
            &["bogus", "send"],
        ],
        "kchat.channel" => &[&["member"], &["admin"], &["member"], &["bogus"]],
        "git.repository" => &[&["read"], &["write"], &["admin"], &["triage"]],
        _ => &[&["read"], &["comment"], &["edit"], &["bogus"]],
    };
    options[usize::from(choice) % options.len()]
        .iter()
        .map(|name| (*name).to_owned())
        .collect()
}

fn expiry(code: u8) -> Option<DateTime<Utc>> {
    match code % 4 {
        0 => None,
        1 => Some(at(-10)),
        2 => Some(now()),
        _ => Some(at(10)),
    }
}

fn role(code: u8) -> MemberRole {
    [
        MemberRole::Owner,
        MemberRole::Administrator,
        MemberRole::Collaborator,
        MemberRole::External,
    ][usize::from(code) % 4]
}

/// Maps a role code to the organization role a team gives, for one team
/// in four.
fn team_role(code: u8) -> Option<MemberRole> {
    match code % 8 {
        0 => Some(MemberRole::Administrator),
        1 => Some(MemberRole::Collaborator),
        _ => None,
    }
}

#[derive(Debug, Clone)]
struct Recipe {
    /// Per user, per organization: role and whether active.
    members: Vec<[Option<(u8, bool)>; ORGANIZATIONS]>,
    /// Organization and a pick among earlier teams for the parent.
    /// Organization, a pick among earlier teams for the parent, and a role
    /// code.
    teams: Vec<(u8, Option<u8>, u8)>,
    memberships: Vec<(u8, u8, u8)>,
    /// Organization, type, parent pick, inherits.
    resources: Vec<(u8, u8, Option<u8>, bool)>,
    /// Resource, to a team, subject pick, permissions pick, no access, expiry.
    grants: Vec<(u8, bool, u8, u8, bool, u8)>,
    /// Organization, type, base level pick (none when out of range), administrators.
    defaults: Vec<(u8, u8, u8, bool)>,
    operations: Vec<Operation>,
    shuffle_seed: u64,
}

#[derive(Debug, Clone)]
enum Operation {
    /// Team, parent pick and role code.
    ReparentTeam(u8, Option<u8>, u8),
    DeleteTeam(u8),
    UpdateMembership(u8, u8, u8),
    DeleteMembership(u8),
    AddGrant(u8, bool, u8, u8, bool, u8),
    DeleteGrant(u8),
    MoveResource(u8, Option<u8>, bool),
    DeleteResource(u8),
    UpdateMember(u8, u8, u8, bool),
    DeleteMember(u8, u8),
    DeleteUser(u8),
    RedefineWikiPage(bool),
    ChangeDefaults(u8, u8, u8, bool),
}

fn operation() -> impl Strategy<Value = Operation> {
    let pick = || any::<u8>();
    prop_oneof![
        (pick(), proptest::option::of(pick()), pick())
            .prop_map(|(team, parent, role)| Operation::ReparentTeam(team, parent, role)),
        pick().prop_map(Operation::DeleteTeam),
        (pick(), pick(), pick())
            .prop_map(|(user, team, code)| Operation::UpdateMembership(user, team, code)),
        pick().prop_map(Operation::DeleteMembership),
        (pick(), any::<bool>(), pick(), pick(), any::<bool>(), pick())
            .prop_map(|(r, t, s, p, n, e)| Operation::AddGrant(r, t, s, p, n, e)),
        pick().prop_map(Operation::DeleteGrant),
        (pick(), proptest::option::of(pick()), any::<bool>()).prop_map(
            |(resource, parent, inherits)| Operation::MoveResource(resource, parent, inherits)
        ),
        pick().prop_map(Operation::DeleteResource),
        (pick(), pick(), pick(), any::<bool>())
            .prop_map(|(u, o, r, a)| Operation::UpdateMember(u, o, r, a)),
        (pick(), pick())
            .prop_map(|(user, organization)| Operation::DeleteMember(user, organization)),
        pick().prop_map(Operation::DeleteUser),
        any::<bool>().prop_map(Operation::RedefineWikiPage),
        (pick(), pick(), pick(), any::<bool>())
            .prop_map(|(o, t, b, a)| Operation::ChangeDefaults(o, t, b, a)),
    ]
}

fn recipe() -> impl Strategy<Value = Recipe> {
    let member = proptest::option::weighted(0.8, (any::<u8>(), proptest::bool::weighted(0.85)));
    (
        proptest::collection::vec([member.clone(), member], 1..8),
        proptest::collection::vec(
            (any::<u8>(), proptest::option::of(any::<u8>()), any::<u8>()),
            0..8,
        ),
        proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>()), 0..14),
        proptest::collection::vec(
            (
                any::<u8>(),
                any::<u8>(),
                proptest::option::weighted(0.7, any::<u8>()),
                proptest::bool::weighted(0.8),
            ),
            1..14,
        ),
        proptest::collection::vec(
            (
                any::<u8>(),
                any::<bool>(),
                any::<u8>(),
                any::<u8>(),
                proptest::bool::weighted(0.2),
                any::<u8>(),
            ),
            0..20,
        ),
        proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), any::<bool>()), 0..3),
        proptest::collection::vec(operation(), 0..12),
        any::<u64>(),
    )
        .prop_map(
            |(
                members,
                teams,
                memberships,
                resources,
                grants,
                defaults,
                operations,
                shuffle_seed,
            )| Recipe {
                members,
                teams,
                memberships,
                resources,
                grants,
                defaults,
                operations,
                shuffle_seed,
            },
        )
}

fn pick<T: Copy>(items: &[T], choice: u8) -> Option<T> {
    (!items.is_empty()).then(|| items[usize::from(choice) % items.len()])
}

/// Builds the directory a recipe describes: the initial entities, then one
/// change batch per operation, tracked in a reference directory.
struct Builder {
    state: Directory,
    organizations: Vec<OrganizationId>,
    users: Vec<UserId>,
    /// Teams in creation order; a team's parent always comes earlier.
    teams: Vec<TeamId>,
    /// Resources in creation order; a resource's parent always comes earlier.
    resources: Vec<ResourceId>,
}

impl Builder {
    fn organization_entity(&self, index: usize, defaults: Vec<ResourceTypeDefault>) -> Entity {
        Entity::Organization(Organization {
            id: self.organizations[index],
            name: format!("Org{index}"),
            display_name: format!("Org {index}"),
            settings: OrganizationSettings {
                leaders_manage_members: false,
                resource_type_defaults: defaults,
            },
            create_time: at(-100),
            update_time: at(-100),
            version: 1,
        })
    }

    fn member_entity(
        &self,
        user: UserId,
        organization: OrganizationId,
        role_code: u8,
        active: bool,
    ) -> Entity {
        Entity::Member(Member {
            organization_id: organization,
            user_id: user,
            role: role(role_code),
            status: if active {
                MemberStatus::Active
            } else {
                MemberStatus::Suspended
            },
            create_time: at(-100),
            update_time: at(-100),
            version: 1,
        })
    }

    fn team_organization(&self, team: TeamId) -> Option<OrganizationId> {
        self.state
            .teams
            .iter()
            .find(|t| t.id == team)
            .map(|t| t.organization_id)
    }

    fn resource_entity(&self, resource: ResourceId) -> Option<workteams_domain::Resource> {
        self.state
            .resources
            .iter()
            .find(|r| r.id == resource)
            .cloned()
    }

    /// Picks a parent for the resource at `position` among earlier resources of
    /// the same organization and a nestable type.
    fn resource_parent(
        &self,
        position: usize,
        organization: OrganizationId,
        resource_type: &str,
        choice: Option<u8>,
    ) -> Option<ResourceId> {
        let nestable = matches!(resource_type, "kdrive.folder" | "wiki.page");
        let candidates: Vec<ResourceId> = self.resources[..position]
            .iter()
            .filter_map(|id| self.resource_entity(*id))
            .filter(|r| {
                nestable && r.organization_id == organization && r.resource_type == resource_type
            })
            .map(|r| r.id)
            .collect();
        choice.and_then(|choice| pick(&candidates, choice))
    }

    fn team_parent(
        &self,
        position: usize,
        organization: OrganizationId,
        choice: Option<u8>,
    ) -> Option<TeamId> {
        let candidates: Vec<TeamId> = self.teams[..position]
            .iter()
            .copied()
            .filter(|team| self.team_organization(*team) == Some(organization))
            .collect();
        choice.and_then(|choice| pick(&candidates, choice))
    }

    fn grant_entity(
        &self,
        resource: u8,
        to_team: bool,
        subject: u8,
        permissions: u8,
        no_access: bool,
        expiry_code: u8,
    ) -> Option<Entity> {
        let resource = self.resource_entity(pick(&self.resources, resource)?)?;
        let subject = if to_team {
            let teams: Vec<TeamId> = self
                .teams
                .iter()
                .copied()
                .filter(|team| self.team_organization(*team) == Some(resource.organization_id))
                .collect();
            Subject::Team(pick(&teams, subject)?)
        } else {
            Subject::User(pick(&self.users, subject)?)
        };
        let no_access = no_access && matches!(subject, Subject::User(_));
        let mut grant = support::grant(
            resource.organization_id,
            resource.id,
            subject,
            &[],
            no_access,
            expiry(expiry_code),
        );
        if !no_access {
            grant.permissions = permission_choice(&resource.resource_type, permissions);
        }
        Some(Entity::Grant(grant))
    }

    fn membership_entity(&self, user: u8, team: u8, expiry_code: u8) -> Option<Entity> {
        let team = pick(&self.teams, team)?;
        Some(Entity::Membership(Membership {
            team_id: team,
            user_id: pick(&self.users, user)?,
            organization_id: self.team_organization(team)?,
            added_by: None,
            add_time: at(-100),
            expire_time: expiry(expiry_code),
        }))
    }

    fn defaults(
        &self,
        organization: usize,
        extra: &[(u8, u8, u8, bool)],
    ) -> Vec<ResourceTypeDefault> {
        extra
            .iter()
            .filter(|(org, ..)| usize::from(*org) % ORGANIZATIONS == organization)
            .map(|(_, resource_type, base, administrators)| {
                let resource_type = TYPES[usize::from(*resource_type) % TYPES.len()];
                let levels = permission_choice(resource_type, *base);
                ResourceTypeDefault {
                    resource_type: resource_type.to_owned(),
                    base_level: (*base < 200).then(|| levels[0].clone()),
                    administrators_get_highest_level: *administrators,
                }
            })
            .collect()
    }

    fn build(recipe: &Recipe) -> (Vec<Entity>, Vec<Vec<Change>>, Directory) {
        let mut builder = Builder {
            state: Directory::new(registry()),
            organizations: (0..ORGANIZATIONS)
                .map(|_| OrganizationId::generate())
                .collect(),
            users: Vec::new(),
            teams: Vec::new(),
            resources: Vec::new(),
        };
        let mut initial = Vec::new();
        let mut add = |builder: &mut Builder, entity: Entity| {
            builder.state.upsert(entity.clone());
            initial.push(entity);
        };

        for organization in 0..ORGANIZATIONS {
            let entity = builder.organization_entity(
                organization,
                builder.defaults(organization, &recipe.defaults),
            );
            add(&mut builder, entity);
        }
        for (position, memberships) in recipe.members.iter().enumerate() {
            let user = UserId::generate();
            builder.users.push(user);
            add(
                &mut builder,
                Entity::User(User {
                    id: user,
                    login: format!("User{position}"),
                    email: Some(format!("user{position}@Example.test")),
                    display_name: format!("User {position}"),
                    create_time: at(-100),
                    update_time: at(-100),
                    version: 1,
                }),
            );
            for (organization, member) in memberships.iter().enumerate() {
                if let Some((role_code, active)) = member {
                    let entity = builder.member_entity(
                        user,
                        builder.organizations[organization],
                        *role_code,
                        *active,
                    );
                    add(&mut builder, entity);
                }
            }
        }
        for (position, (organization, parent, role_code)) in recipe.teams.iter().enumerate() {
            let organization = builder.organizations[usize::from(*organization) % ORGANIZATIONS];
            let team = TeamId::generate();
            let parent = builder.team_parent(position, organization, *parent);
            builder.teams.push(team);
            add(
                &mut builder,
                Entity::Team(support::team_with_role(
                    team,
                    organization,
                    parent,
                    team_role(*role_code),
                )),
            );
        }
        for (user, team, code) in &recipe.memberships {
            if let Some(entity) = builder.membership_entity(*user, *team, *code) {
                add(&mut builder, entity);
            }
        }
        for (position, (organization, resource_type, parent, inherits)) in
            recipe.resources.iter().enumerate()
        {
            let organization = builder.organizations[usize::from(*organization) % ORGANIZATIONS];
            let resource_type = TYPES[usize::from(*resource_type) % TYPES.len()];
            let resource = ResourceId::generate();
            builder.resources.push(resource);
            let parent = builder.resource_parent(position, organization, resource_type, *parent);
            add(
                &mut builder,
                Entity::Resource(support::resource(
                    resource,
                    organization,
                    resource_type,
                    &format!("Res{position}"),
                    parent,
                    *inherits,
                )),
            );
        }
        for (resource, to_team, subject, permissions, no_access, code) in &recipe.grants {
            if let Some(entity) = builder.grant_entity(
                *resource,
                *to_team,
                *subject,
                *permissions,
                *no_access,
                *code,
            ) {
                add(&mut builder, entity);
            }
        }

        let batches = recipe
            .operations
            .iter()
            .map(|operation| {
                let changes = builder.changes_for(operation);
                for change in &changes {
                    builder.state.apply_change(change);
                }
                changes
            })
            .collect();
        (initial, batches, builder.state)
    }

    fn changes_for(&self, operation: &Operation) -> Vec<Change> {
        let upsert = |entity: Entity| vec![Change::Upserted(entity)];
        let deleted = |key: EntityKey| Change::Deleted {
            key,
            organization_id: None,
        };
        match *operation {
            Operation::ReparentTeam(team, parent, role_code) => {
                let Some(position) = pick(&(0..self.teams.len()).collect::<Vec<_>>(), team) else {
                    return Vec::new();
                };
                let Some(mut entity) = self
                    .state
                    .teams
                    .iter()
                    .find(|t| t.id == self.teams[position])
                    .cloned()
                else {
                    return Vec::new();
                };
                entity.parent_team_id = self.team_parent(position, entity.organization_id, parent);
                entity.organization_role = team_role(role_code);
                upsert(Entity::Team(entity))
            }
            Operation::DeleteTeam(team) => {
                let Some(team) = pick(&self.teams, team) else {
                    return Vec::new();
                };
                let mut changes: Vec<Change> = self
                    .state
                    .memberships
                    .iter()
                    .filter(|m| m.team_id == team)
                    .map(|m| {
                        deleted(EntityKey::Membership {
                            team_id: team,
                            user_id: m.user_id,
                        })
                    })
                    .collect();
                changes.extend(
                    self.state
                        .grants
                        .iter()
                        .filter(|g| g.subject == Subject::Team(team))
                        .map(|g| deleted(EntityKey::Grant(g.key()))),
                );
                changes.push(deleted(EntityKey::Team(team)));
                changes
            }
            Operation::UpdateMembership(user, team, code) => self
                .membership_entity(user, team, code)
                .map(upsert)
                .unwrap_or_default(),
            Operation::DeleteMembership(choice) => {
                let keys: Vec<(TeamId, UserId)> = self
                    .state
                    .memberships
                    .iter()
                    .map(|m| (m.team_id, m.user_id))
                    .collect();
                pick(&keys, choice)
                    .map(|(team_id, user_id)| {
                        vec![deleted(EntityKey::Membership { team_id, user_id })]
                    })
                    .unwrap_or_default()
            }
            Operation::AddGrant(resource, to_team, subject, permissions, no_access, code) => self
                .grant_entity(resource, to_team, subject, permissions, no_access, code)
                .map(upsert)
                .unwrap_or_default(),
            Operation::DeleteGrant(choice) => {
                let keys: Vec<_> = self.state.grants.iter().map(|g| g.key()).collect();
                pick(&keys, choice)
                    .map(|key| vec![deleted(EntityKey::Grant(key))])
                    .unwrap_or_default()
            }
            Operation::MoveResource(resource, parent, inherits) => {
                let Some(position) = pick(&(0..self.resources.len()).collect::<Vec<_>>(), resource)
                else {
                    return Vec::new();
                };
                let Some(mut entity) = self.resource_entity(self.resources[position]) else {
                    return Vec::new();
                };
                entity.parent_resource_id = self.resource_parent(
                    position,
                    entity.organization_id,
                    &entity.resource_type,
                    parent,
                );
                entity.inherits = inherits;
                entity.external_id = format!("Moved{position}");
                upsert(Entity::Resource(entity))
            }
            Operation::DeleteResource(resource) => {
                let Some(resource) = pick(&self.resources, resource) else {
                    return Vec::new();
                };
                let mut changes: Vec<Change> = self
                    .state
                    .grants
                    .iter()
                    .filter(|g| g.resource_id == resource)
                    .map(|g| deleted(EntityKey::Grant(g.key())))
                    .collect();
                changes.push(deleted(EntityKey::Resource(resource)));
                changes
            }
            Operation::UpdateMember(user, organization, role_code, active) => {
                let Some(user) = pick(&self.users, user) else {
                    return Vec::new();
                };
                let organization = self.organizations[usize::from(organization) % ORGANIZATIONS];
                upsert(self.member_entity(user, organization, role_code, active))
            }
            Operation::DeleteMember(user, organization) => {
                let Some(user_id) = pick(&self.users, user) else {
                    return Vec::new();
                };
                let organization_id = self.organizations[usize::from(organization) % ORGANIZATIONS];
                vec![deleted(EntityKey::Member {
                    organization_id,
                    user_id,
                })]
            }
            Operation::DeleteUser(user) => {
                let Some(user) = pick(&self.users, user) else {
                    return Vec::new();
                };
                let mut changes: Vec<Change> = self
                    .state
                    .members
                    .iter()
                    .filter(|m| m.user_id == user)
                    .map(|m| {
                        deleted(EntityKey::Member {
                            organization_id: m.organization_id,
                            user_id: user,
                        })
                    })
                    .collect();
                changes.extend(
                    self.state
                        .memberships
                        .iter()
                        .filter(|m| m.user_id == user)
                        .map(|m| {
                            deleted(EntityKey::Membership {
                                team_id: m.team_id,
                                user_id: user,
                            })
                        }),
                );
                changes.extend(
                    self.state
                        .grants
                        .iter()
                        .filter(|g| g.subject == Subject::User(user))
                        .map(|g| deleted(EntityKey::Grant(g.key()))),
                );
                changes.push(deleted(EntityKey::User(user)));
                changes
            }
            Operation::RedefineWikiPage(ordered) => {
                let definition = if ordered {
                    wiki_page(&["comment", "read", "edit", "publish"], true)
                } else {
                    wiki_page(&["read", "edit"], false)
                };
                upsert(Entity::ResourceType(definition))
            }
            Operation::ChangeDefaults(organization, resource_type, base, administrators) => {
                let organization = usize::from(organization) % ORGANIZATIONS;
                let defaults = if base % 5 == 0 {
                    Vec::new()
                } else {
                    self.defaults(
                        organization,
                        &[(organization as u8, resource_type, base, administrators)],
                    )
                };
                upsert(self.organization_entity(organization, defaults))
            }
        }
    }
}

/// Lists the entities of a reference directory in an order scrambled by
/// `seed`.
fn shuffled_entities(directory: &Directory, seed: u64) -> Vec<Entity> {
    let mut entities: Vec<Entity> = directory
        .organizations
        .iter()
        .cloned()
        .map(Entity::Organization)
        .chain(directory.users.iter().cloned().map(Entity::User))
        .chain(directory.members.iter().cloned().map(Entity::Member))
        .chain(directory.teams.iter().cloned().map(Entity::Team))
        .chain(
            directory
                .memberships
                .iter()
                .cloned()
                .map(Entity::Membership),
        )
        .chain(directory.resources.iter().cloned().map(Entity::Resource))
        .chain(directory.grants.iter().cloned().map(Entity::Grant))
        .chain(
            directory
                .types
                .iter()
                .map(|definition| Entity::ResourceType((**definition).clone())),
        )
        .collect();
    // A xorshift sequence gives every entity a sort key.
    let mut state = seed | 1;
    let mut keyed: Vec<(u64, Entity)> = entities
        .drain(..)
        .map(|entity| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state, entity)
        })
        .collect();
    keyed.sort_by_key(|(key, _)| *key);
    keyed.into_iter().map(|(_, entity)| entity).collect()
}

fn batch(revision: i64, changes: Vec<Change>) -> ChangeBatch {
    ChangeBatch {
        revision: Revision(revision),
        changes,
        actor: None,
        request_id: None,
        traceparent: None,
        commit_time: now(),
    }
}

/// Collects every user and resource the recipe ever created, plus an
/// unknown one.
fn subjects(initial: &[Entity], batches: &[Vec<Change>]) -> (Vec<UserId>, Vec<ResourceId>) {
    let mut users = vec![UserId::generate()];
    let mut resources = vec![ResourceId::generate()];
    let upserted = batches.iter().flatten().filter_map(|change| match change {
        Change::Upserted(entity) => Some(entity),
        Change::Deleted { .. } => None,
    });
    for entity in initial.iter().chain(upserted) {
        match entity {
            Entity::User(user) if !users.contains(&user.id) => users.push(user.id),
            Entity::Resource(resource) if !resources.contains(&resource.id) => {
                resources.push(resource.id)
            }
            _ => {}
        }
    }
    (users, resources)
}

/// Checks the lookups by name, login, e-mail and external id against the
/// entities of the reference directory.
fn assert_lookups(label: &str, index: &Index, reference: &Directory) {
    for organization in &reference.organizations {
        assert_eq!(
            index.organization_by_name(&organization.name.to_lowercase()),
            Some(organization.id),
            "{label}: organization name"
        );
    }
    for user in &reference.users {
        assert_eq!(
            index.user_by_login(&user.login.to_uppercase()),
            Some(user.id),
            "{label}: login"
        );
        if let Some(email) = &user.email {
            assert_eq!(
                index.user_by_email(&email.to_lowercase()),
                Some(user.id),
                "{label}: e-mail"
            );
        }
    }
    for resource in &reference.resources {
        let case_insensitive = reference
            .types
            .get(&resource.resource_type)
            .is_some_and(|definition| definition.case_insensitive_external_ids);
        let shouted = resource.external_id.to_uppercase();
        let expected_when_shouted = case_insensitive.then_some(resource.id);
        assert_eq!(
            index.resource_by_key(
                resource.organization_id,
                &resource.resource_type,
                &resource.external_id
            ),
            Some(resource.id),
            "{label}: external id"
        );
        assert_eq!(
            index.resource_by_key(resource.organization_id, &resource.resource_type, &shouted),
            expected_when_shouted,
            "{label}: external id in capitals"
        );
    }
}

fn assert_agrees(
    label: &str,
    index: &Index,
    reference: &Directory,
    users: &[UserId],
    resources: &[ResourceId],
) {
    assert_lookups(label, index, reference);
    for instant in [at(-10), now(), at(10)] {
        for user in users {
            for resource in resources {
                let expected = reference.evaluate(*user, *resource, instant);
                assert_eq!(
                    index.evaluate(*user, *resource, instant),
                    expected,
                    "{label}: evaluate"
                );
                assert_eq!(
                    index.effective_permissions(*user, *resource, instant),
                    expected.permissions,
                    "{label}: effective permissions"
                );
                for permission in 0..8 {
                    assert_eq!(
                        index.check(*user, *resource, permission, instant),
                        expected.allows(permission),
                        "{label}: check of permission {permission}"
                    );
                }
            }
            let expected_listing =
                reference.list_user_access(*user, &AccessFilter::default(), instant);
            assert_eq!(
                index.list_user_access(*user, &AccessFilter::default(), instant),
                expected_listing,
                "{label}: user listing"
            );
            for size in LISTING_PAGE_SIZES {
                let paged = read_pages(
                    size,
                    |entry| entry.resource_id,
                    |page| {
                        index.list_user_access_page(*user, &AccessFilter::default(), instant, page)
                    },
                );
                assert_eq!(
                    paged, expected_listing,
                    "{label}: user listing in pages of {size}"
                );
            }
        }
        for resource in resources {
            let expected_listing = reference.list_resource_access(*resource, instant);
            assert_eq!(
                index.list_resource_access(*resource, instant),
                expected_listing,
                "{label}: resource listing"
            );
            for size in LISTING_PAGE_SIZES {
                let paged = read_pages(
                    size,
                    |entry| entry.user_id,
                    |page| index.list_resource_access_page(*resource, instant, page),
                );
                assert_eq!(
                    paged, expected_listing,
                    "{label}: resource listing in pages of {size}"
                );
            }
        }
    }
}

/// Page sizes the listings are also read in: one entry, and a size that
/// rarely divides a listing evenly.
const LISTING_PAGE_SIZES: [usize; 2] = [1, 3];

/// Reads a listing page by page, each page starting after the last entry
/// of the one before, and checks that exactly the pages with a successor
/// report one and are full.
fn read_pages<Id: Copy + Ord + std::fmt::Debug>(
    size: usize,
    listed_id: impl Fn(&AccessEntry) -> Id,
    mut read_page: impl FnMut(PageRequest<Id>) -> AccessPage,
) -> Vec<AccessEntry> {
    let mut entries = Vec::new();
    let mut after = None;
    loop {
        let page = read_page(PageRequest { after, size });
        assert!(page.entries.len() <= size, "a page is larger than {size}");
        if let (Some(after), Some(first)) = (after, page.entries.first()) {
            assert!(listed_id(first) > after, "a page repeats {after:?}");
        }
        if page.more {
            assert_eq!(
                page.entries.len(),
                size,
                "a page with a successor is not full"
            );
        }

        after = page.entries.last().map(&listed_id);
        entries.extend(page.entries);
        if !page.more {
            return entries;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn index_agrees_with_reference(recipe in recipe()) {
        let (initial, batches, final_state) = Builder::build(&recipe);
        let (users, resources) = subjects(&initial, &batches);

        let mut followed = Index::new(registry());
        for entity in &initial {
            followed.apply_entity(entity.clone());
        }
        let initial_copy = followed.clone();
        for (position, changes) in batches.iter().enumerate() {
            followed.apply_batch(&batch(position as i64 + 2, changes.clone()));
        }

        let mut loaded = Index::new(registry());
        for entity in shuffled_entities(&final_state, recipe.shuffle_seed) {
            loaded.apply_entity(entity);
        }

        let mut initial_state = Directory::new(registry());
        for entity in &initial {
            initial_state.upsert(entity.clone());
        }

        assert_agrees("loaded snapshot", &loaded, &final_state, &users, &resources);
        assert_agrees("followed batches", &followed, &final_state, &users, &resources);
        assert_agrees("clone taken before the batches", &initial_copy, &initial_state, &users, &resources);
        prop_assert_eq!(followed.stats(), loaded.stats());
    }
}
