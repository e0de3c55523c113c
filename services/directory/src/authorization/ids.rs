//! The ids a request names, collected with their request fields.

use workteams_domain::command::{
    GrantChange, NewResource, NewTeam, ResourceLookup, ResourceParent,
};
use workteams_domain::{OrganizationId, ResourceId, Subject, TeamId};

/// One id a request names, of an entity that belongs to an organization.
#[derive(Debug, Clone, Copy)]
pub(super) enum NamedId {
    Organization(OrganizationId),
    Team(TeamId),
    Resource(ResourceId),
}

impl std::fmt::Display for NamedId {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Organization(id) => id.fmt(formatter),
            Self::Team(id) => id.fmt(formatter),
            Self::Resource(id) => id.fmt(formatter),
        }
    }
}

/// The ids a request names that belong to an organization, each with its
/// request field, in request order: the first one names the organization
/// that a denial for mixed organizations reports the others against.
#[derive(Debug, Default, Clone)]
pub struct Ids {
    pub(super) named: Vec<(String, NamedId)>,
}

impl Ids {
    pub fn organization(field: &str, id: OrganizationId) -> Self {
        Self::default().and_organization(field, id)
    }

    pub fn team(field: &str, id: TeamId) -> Self {
        Self::default().and_team(field, id)
    }

    pub fn resource(field: &str, id: ResourceId) -> Self {
        Self::default().and_resource(field, id)
    }

    pub fn and_organization(mut self, field: &str, id: OrganizationId) -> Self {
        self.named
            .push((field.to_owned(), NamedId::Organization(id)));
        self
    }

    pub fn and_team(mut self, field: &str, id: TeamId) -> Self {
        self.named.push((field.to_owned(), NamedId::Team(id)));
        self
    }

    pub fn and_resource(mut self, field: &str, id: ResourceId) -> Self {
        self.named.push((field.to_owned(), NamedId::Resource(id)));
        self
    }

    pub fn and_optional_team(self, field: &str, id: Option<TeamId>) -> Self {
        match id {
            Some(id) => self.and_team(field, id),
            None => self,
        }
    }

    pub fn and_optional_resource(self, field: &str, id: Option<ResourceId>) -> Self {
        match id {
            Some(id) => self.and_resource(field, id),
            None => self,
        }
    }

    /// Adds a grant subject when it is a team. Users belong to no single
    /// organization, so the store checks that they are members of it.
    pub fn and_subject(self, field: &str, subject: Subject) -> Self {
        match subject {
            Subject::Team(team_id) => self.and_team(field, team_id),
            Subject::User(_) => self,
        }
    }

    pub fn and_optional_subject(self, field: &str, subject: Option<Subject>) -> Self {
        match subject {
            Some(subject) => self.and_subject(field, subject),
            None => self,
        }
    }

    /// Collects the resource a lookup names by id, or the organization it
    /// searches.
    pub fn of_resource_lookup(lookup: &ResourceLookup) -> Self {
        match lookup {
            ResourceLookup::Id(id) => Self::resource("id", *id),
            ResourceLookup::Key {
                organization_id, ..
            } => Self::organization("key.organization_id", *organization_id),
        }
    }

    /// Adds the resources and team subjects of a grant batch.
    pub fn and_grant_changes(mut self, changes: &[GrantChange]) -> Self {
        for (index, change) in changes.iter().enumerate() {
            self = self
                .and_resource(
                    &format!("changes[{index}].resource_id"),
                    change.resource_id(),
                )
                .and_subject(
                    &format!("changes[{index}].subject.team_id"),
                    change.subject(),
                );
        }
        self
    }

    /// Adds the parents of new resources given by id; a parent given by
    /// external id is looked up inside the organization by the store.
    pub fn and_resource_parents<'r>(
        mut self,
        prefix: &str,
        resources: impl IntoIterator<Item = &'r NewResource>,
    ) -> Self {
        for (index, resource) in resources.into_iter().enumerate() {
            if let Some(ResourceParent::Id(parent_id)) = resource.parent {
                let field = if prefix == "resource" {
                    "resource.parent_resource_id".to_owned()
                } else {
                    format!("{prefix}[{index}].parent_resource_id")
                };
                self = self.and_resource(&field, parent_id);
            }
        }
        self
    }

    /// Adds the parent team and the resources of a new team's grants.
    pub fn of_new_team(team: &NewTeam) -> Self {
        let mut ids = Self::organization("organization_id", team.organization_id)
            .and_optional_team("parent_team_id", team.parent_team_id);
        for (index, grant) in team.grants.iter().enumerate() {
            ids = ids.and_resource(&format!("grants[{index}].resource_id"), grant.resource_id);
        }
        ids
    }
}
