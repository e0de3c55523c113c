//! Builds small directories for the tests, as entities that both the index
//! and the reference evaluator load.

#![allow(dead_code, clippy::expect_used)]

use chrono::{DateTime, TimeZone, Utc};
use workteams_domain::{
    Entity, Grant, Member, MemberRole, MemberStatus, Membership, Organization, OrganizationId,
    OrganizationSettings, Resource, ResourceId, ResourceTypeDefault, ResourceTypeRegistry, Subject,
    Team, TeamId, User, UserId,
};
use workteams_evaluation::Index;
use workteams_evaluation::reference::Directory;

pub fn registry() -> ResourceTypeRegistry {
    ResourceTypeRegistry::with_builtins(Vec::new()).expect("built-in types are valid")
}

pub fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + seconds, 0)
        .single()
        .expect("valid instant")
}

/// The instant the tests evaluate at, unless they say otherwise.
pub fn now() -> DateTime<Utc> {
    at(0)
}

#[derive(Default)]
pub struct World {
    pub entities: Vec<Entity>,
}

impl World {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn organization(&mut self, name: &str) -> OrganizationId {
        self.organization_with_defaults(name, Vec::new())
    }

    pub fn organization_with_defaults(
        &mut self,
        name: &str,
        defaults: Vec<ResourceTypeDefault>,
    ) -> OrganizationId {
        let id = OrganizationId::generate();
        self.entities.push(Entity::Organization(Organization {
            id,
            name: name.to_owned(),
            display_name: name.to_owned(),
            settings: OrganizationSettings {
                leaders_manage_members: false,
                resource_type_defaults: defaults,
            },
            create_time: at(-1000),
            update_time: at(-1000),
            version: 1,
        }));
        id
    }

    pub fn user(&mut self, login: &str) -> UserId {
        let id = UserId::generate();
        self.entities.push(Entity::User(User {
            id,
            login: login.to_owned(),
            email: Some(format!("{login}@example.test")),
            display_name: login.to_owned(),
            create_time: at(-1000),
            update_time: at(-1000),
            version: 1,
        }));
        id
    }

    pub fn member(
        &mut self,
        organization: OrganizationId,
        user: UserId,
        role: MemberRole,
        status: MemberStatus,
    ) {
        self.entities.push(Entity::Member(Member {
            organization_id: organization,
            user_id: user,
            role,
            status,
            create_time: at(-1000),
            update_time: at(-1000),
            version: 1,
        }));
    }

    /// A user who is an active collaborator of `organization`.
    pub fn collaborator(&mut self, organization: OrganizationId, login: &str) -> UserId {
        let user = self.user(login);
        self.member(
            organization,
            user,
            MemberRole::Collaborator,
            MemberStatus::Active,
        );
        user
    }

    pub fn team(&mut self, organization: OrganizationId, parent: Option<TeamId>) -> TeamId {
        let id = TeamId::generate();
        self.entities
            .push(Entity::Team(team(id, organization, parent)));
        id
    }

    pub fn membership(
        &mut self,
        team: TeamId,
        user: UserId,
        organization: OrganizationId,
        expire: Option<DateTime<Utc>>,
    ) {
        self.entities.push(Entity::Membership(Membership {
            team_id: team,
            user_id: user,
            organization_id: organization,
            added_by: None,
            add_time: at(-1000),
            expire_time: expire,
        }));
    }

    pub fn resource(
        &mut self,
        organization: OrganizationId,
        resource_type: &str,
        external_id: &str,
        parent: Option<ResourceId>,
        inherits: bool,
    ) -> ResourceId {
        let id = ResourceId::generate();
        self.entities.push(Entity::Resource(resource(
            id,
            organization,
            resource_type,
            external_id,
            parent,
            inherits,
        )));
        id
    }

    pub fn folder(
        &mut self,
        organization: OrganizationId,
        path: &str,
        parent: Option<ResourceId>,
    ) -> ResourceId {
        self.resource(organization, "kdrive.folder", path, parent, true)
    }

    pub fn grant(
        &mut self,
        organization: OrganizationId,
        resource: ResourceId,
        subject: Subject,
        permissions: &[&str],
        expire: Option<DateTime<Utc>>,
    ) {
        self.entities.push(Entity::Grant(grant(
            organization,
            resource,
            subject,
            permissions,
            false,
            expire,
        )));
    }

    pub fn no_access(&mut self, organization: OrganizationId, resource: ResourceId, user: UserId) {
        self.entities.push(Entity::Grant(grant(
            organization,
            resource,
            Subject::User(user),
            &[],
            true,
            None,
        )));
    }

    pub fn index(&self) -> Index {
        let mut index = Index::new(registry());
        for entity in &self.entities {
            index.apply_entity(entity.clone());
        }
        index
    }

    pub fn reference(&self) -> Directory {
        let mut directory = Directory::new(registry());
        for entity in &self.entities {
            directory.upsert(entity.clone());
        }
        directory
    }
}

pub fn team(id: TeamId, organization: OrganizationId, parent: Option<TeamId>) -> Team {
    team_with_role(id, organization, parent, None)
}

pub fn team_with_role(
    id: TeamId,
    organization: OrganizationId,
    parent: Option<TeamId>,
    organization_role: Option<MemberRole>,
) -> Team {
    Team {
        id,
        organization_id: organization,
        name: format!("team {id}"),
        description: String::new(),
        color: String::new(),
        parent_team_id: parent,
        leader_user_ids: Vec::new(),
        organization_role,
        create_time: at(-1000),
        update_time: at(-1000),
        version: 1,
    }
}

pub fn resource(
    id: ResourceId,
    organization: OrganizationId,
    resource_type: &str,
    external_id: &str,
    parent: Option<ResourceId>,
    inherits: bool,
) -> Resource {
    Resource {
        id,
        organization_id: organization,
        resource_type: resource_type.to_owned(),
        external_id: external_id.to_owned(),
        display_name: external_id.to_owned(),
        parent_resource_id: parent,
        inherits,
        create_time: at(-1000),
        update_time: at(-1000),
        version: 1,
    }
}

pub fn grant(
    organization: OrganizationId,
    resource: ResourceId,
    subject: Subject,
    permissions: &[&str],
    no_access: bool,
    expire: Option<DateTime<Utc>>,
) -> Grant {
    Grant {
        resource_id: resource,
        subject,
        organization_id: organization,
        permissions: permissions.iter().map(|name| (*name).to_owned()).collect(),
        no_access,
        expire_time: expire,
        granted_by: None,
        create_time: at(-1000),
        update_time: at(-1000),
    }
}
