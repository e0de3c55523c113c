//! Helpers shared by the storage behaviour tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use workteams_domain::command::{NewOrganization, NewUser};
use workteams_domain::{Organization, OrganizationSettings, ResourceTypeRegistry, User};
use workteams_storage::testing::TestDatabase;
use workteams_storage::{IdempotencyKey, RequestContext, Store};

/// A connected store on a test database, with the built-in resource types.
pub struct Fixture {
    pub database: TestDatabase,
    pub store: Store,
}

impl Fixture {
    pub async fn cleanup(self) {
        drop(self.store);
        self.database.cleanup().await;
    }
}

/// One fixture per configured backend.
pub async fn fixtures() -> Vec<Fixture> {
    let mut fixtures = Vec::new();
    for database in TestDatabase::all().await {
        let store = database.store().await;
        let registry = ResourceTypeRegistry::with_builtins(Vec::new()).unwrap();
        store.sync_resource_types(&RequestContext::system(), &registry).await.unwrap();
        fixtures.push(Fixture { database, store });
    }
    fixtures
}

pub fn context() -> RequestContext {
    RequestContext {
        actor: Some("tester".to_owned()),
        request_id: Some("request-1".to_owned()),
        traceparent: None,
        idempotency: None,
        method: Some(TEST_METHOD.to_owned()),
    }
}

/// The RPC method that [`context`] names.
pub const TEST_METHOD: &str = "/workteams.directory.v1.DirectoryService/Test";

pub fn idempotent(key: &str, fingerprint: &[u8]) -> RequestContext {
    RequestContext {
        idempotency: Some(IdempotencyKey {
            key: key.to_owned(),
            fingerprint: fingerprint.to_vec(),
        }),
        ..context()
    }
}

pub async fn organization(store: &Store, name: &str) -> Organization {
    store
        .create_organization(
            &context(),
            NewOrganization {
                name: name.to_owned(),
                display_name: String::new(),
                settings: OrganizationSettings::default(),
                owner_user_id: None,
            },
        )
        .await
        .unwrap()
        .value
}

pub async fn user(store: &Store, login: &str) -> User {
    store
        .create_user(
            &context(),
            NewUser {
                login: login.to_owned(),
                email: Some(format!("{login}@example.com")),
                display_name: String::new(),
            },
        )
        .await
        .unwrap()
        .value
}

pub async fn member(store: &Store, organization: &Organization, user: &User, role: workteams_domain::MemberRole) {
    store
        .add_member(
            &context(),
            workteams_domain::command::NewMember {
                organization_id: organization.id,
                member: workteams_domain::command::MemberSpec {
                    user_id: user.id,
                    role,
                    status: workteams_domain::MemberStatus::Active,
                },
            },
        )
        .await
        .unwrap();
}

/// A team with the given members and no leaders or grants.
pub async fn team(
    store: &Store,
    organization: &Organization,
    name: &str,
    parent: Option<workteams_domain::TeamId>,
    members: &[&User],
) -> workteams_domain::Team {
    store
        .create_team(
            &context(),
            workteams_domain::command::NewTeam {
                organization_id: organization.id,
                name: name.to_owned(),
                description: String::new(),
                color: String::new(),
                parent_team_id: parent,
                members: members
                    .iter()
                    .map(|user| workteams_domain::command::NewTeamMember {
                        user_id: user.id,
                        expire_time: None,
                    })
                    .collect(),
                leader_user_ids: Vec::new(),
                grants: Vec::new(),
                added_by: None,
            },
        )
        .await
        .unwrap()
        .value
}

pub async fn resource(
    store: &Store,
    organization: &Organization,
    resource_type: &str,
    external_id: &str,
    parent: Option<workteams_domain::ResourceId>,
) -> workteams_domain::Resource {
    store
        .create_resource(
            &context(),
            organization.id,
            workteams_domain::command::NewResource {
                resource_type: resource_type.to_owned(),
                external_id: external_id.to_owned(),
                display_name: String::new(),
                parent: parent.map(workteams_domain::command::ResourceParent::Id),
                inherits: true,
            },
        )
        .await
        .unwrap()
        .value
}

/// The changes of the batches after `from`, flattened.
pub async fn changes_since(store: &Store, from: workteams_domain::ConsistencyToken) -> Vec<workteams_domain::Change> {
    store
        .changes_after(from, None, 10_000)
        .await
        .unwrap()
        .into_iter()
        .flat_map(|batch| batch.changes)
        .collect()
}

pub fn field_of(error: &workteams_storage::StoreError) -> String {
    use workteams_storage::StoreError;
    match error {
        StoreError::Validation(validation) => validation.field.clone(),
        StoreError::NotFound { field, .. }
        | StoreError::AlreadyExists { field, .. }
        | StoreError::FailedPrecondition { field, .. } => field.clone(),
        other => format!("{other:?}"),
    }
}
