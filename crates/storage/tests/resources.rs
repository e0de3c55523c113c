//! Resources and grants.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{context, field_of, fixtures, member, organization, resource, team, user};
use workteams_domain::command::{
    BatchCreateResources, BatchSetGrants, Etag, GrantChange, GrantSpec, NewResource, ResourceLookup, ResourceParent,
    ResourceUpdate,
};
use workteams_domain::{MemberRole, ResourceId, Subject};
use workteams_storage::{GrantFilter, PageRequest, ResourceFilter, StoreError};

fn new_resource(resource_type: &str, external_id: &str, parent: Option<ResourceParent>) -> NewResource {
    NewResource {
        resource_type: resource_type.to_owned(),
        external_id: external_id.to_owned(),
        display_name: String::new(),
        parent,
        inherits: true,
    }
}

fn grant(resource_id: ResourceId, subject: Subject, permissions: &[&str]) -> GrantSpec {
    GrantSpec {
        resource_id,
        subject,
        permissions: permissions.iter().map(|name| (*name).to_owned()).collect(),
        no_access: false,
        expire_time: None,
        granted_by: None,
    }
}

#[tokio::test]
async fn external_id_case_follows_type() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        resource(store, &acme, "mail.mailbox", "Ada@Acme.test", None).await;
        resource(store, &acme, "kdrive.folder", "Reports", None).await;

        let mailbox = store
            .create_resource(&context(), acme.id, new_resource("mail.mailbox", "ada@acme.TEST", None))
            .await
            .unwrap_err();
        let folder = store
            .create_resource(&context(), acme.id, new_resource("kdrive.folder", "reports", None))
            .await;
        let found = store
            .get_resource(&ResourceLookup::Key {
                organization_id: acme.id,
                resource_type: "mail.mailbox".to_owned(),
                external_id: "ADA@ACME.TEST".to_owned(),
            })
            .await
            .unwrap();

        assert_eq!(field_of(&mailbox), "resource.external_id");
        assert!(folder.is_ok(), "{folder:?}");
        assert_eq!(found.external_id, "Ada@Acme.test");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn unknown_type_is_rejected() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;

        let error = store
            .create_resource(&context(), acme.id, new_resource("fax.machine", "1", None))
            .await
            .unwrap_err();

        assert_eq!(field_of(&error), "resource.resource_type");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn parent_rules_for_resources() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let mailbox = resource(store, &acme, "mail.mailbox", "a@acme.test", None).await;
        let folder = resource(store, &acme, "kdrive.folder", "1", None).await;

        let not_nestable = store
            .create_resource(&context(), acme.id, new_resource("mail.mailbox", "b@acme.test", Some(ResourceParent::Id(mailbox.id))))
            .await
            .unwrap_err();
        let other_type = store
            .create_resource(&context(), acme.id, new_resource("kdrive.folder", "2", Some(ResourceParent::Id(mailbox.id))))
            .await
            .unwrap_err();
        let child = store
            .create_resource(&context(), acme.id, new_resource("kdrive.folder", "2", Some(ResourceParent::Id(folder.id))))
            .await
            .unwrap()
            .value;
        let cycle = store
            .update_resource(
                &context(),
                ResourceUpdate {
                    id: folder.id,
                    display_name: None,
                    external_id: None,
                    parent_resource_id: Some(Some(child.id)),
                    inherits: None,
                    etag: None,
                },
            )
            .await
            .unwrap_err();

        assert_eq!(field_of(&not_nestable), "resource.parent_resource_id");
        assert!(matches!(other_type, StoreError::FailedPrecondition { .. }), "{other_type:?}");
        assert_eq!(child.parent_resource_id, Some(folder.id));
        assert_eq!(field_of(&cycle), "parent_resource_id");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn batch_resources_resolve_parent_external_ids() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;

        let written = store
            .batch_create_resources(
                &context(),
                BatchCreateResources {
                    organization_id: acme.id,
                    resources: vec![
                        new_resource("kdrive.folder", "root", None),
                        new_resource("kdrive.folder", "child", Some(ResourceParent::ExternalId("root".to_owned()))),
                    ],
                },
            )
            .await
            .unwrap();
        let failed = store
            .batch_create_resources(
                &context(),
                BatchCreateResources {
                    organization_id: acme.id,
                    resources: vec![
                        new_resource("kdrive.folder", "fresh", None),
                        new_resource("kdrive.folder", "orphan", Some(ResourceParent::ExternalId("missing".to_owned()))),
                    ],
                },
            )
            .await
            .unwrap_err();
        let fresh = store
            .get_resource(&ResourceLookup::Key {
                organization_id: acme.id,
                resource_type: "kdrive.folder".to_owned(),
                external_id: "fresh".to_owned(),
            })
            .await;

        assert_eq!(written.value[1].parent_resource_id, Some(written.value[0].id));
        assert_eq!(field_of(&failed), "resources[1].parent_external_id");
        assert!(fresh.is_err(), "a failed batch must write nothing");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn resource_with_children_not_deleted() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let ada = user(store, "ada").await;
        member(store, &acme, &ada, MemberRole::Collaborator).await;
        let root = resource(store, &acme, "kdrive.folder", "root", None).await;
        let child = resource(store, &acme, "kdrive.folder", "child", Some(root.id)).await;
        store.grant_access(&context(), grant(child.id, Subject::User(ada.id), &["view"])).await.unwrap();

        let blocked = store.delete_resource(&context(), root.id, None).await.unwrap_err();
        let stale = store.delete_resource(&context(), child.id, Some(Etag(9))).await.unwrap_err();
        store.delete_resource(&context(), child.id, Some(Etag(child.version))).await.unwrap();
        let grants = store
            .list_grants(
                &GrantFilter {
                    organization_id: acme.id,
                    resource_id: None,
                    subject: None,
                },
                &PageRequest::default(),
            )
            .await
            .unwrap();

        assert!(matches!(blocked, StoreError::FailedPrecondition { .. }), "{blocked:?}");
        assert!(matches!(stale, StoreError::Aborted { .. }), "{stale:?}");
        assert!(grants.items.is_empty());
        store.delete_resource(&context(), root.id, None).await.unwrap();
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn resources_listed_with_filters() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let root = resource(store, &acme, "kdrive.folder", "root", None).await;
        let child = resource(store, &acme, "kdrive.folder", "child", Some(root.id)).await;
        resource(store, &acme, "mail.mailbox", "a@acme.test", None).await;
        let filter = |resource_type: Option<&str>, parent| ResourceFilter {
            organization_id: acme.id,
            resource_type: resource_type.map(str::to_owned),
            parent_resource_id: parent,
        };

        let all = store.list_resources(&filter(None, None), &PageRequest::default()).await.unwrap();
        let folders = store.list_resources(&filter(Some("kdrive.folder"), None), &PageRequest::default()).await.unwrap();
        let children = store.list_resources(&filter(None, Some(root.id)), &PageRequest::default()).await.unwrap();

        assert_eq!(all.items.len(), 3);
        assert_eq!(folders.items.len(), 2);
        assert_eq!(children.items, vec![child]);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn grant_validation_rules() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let other = organization(store, "Other").await;
        let ada = user(store, "ada").await;
        let eve = user(store, "eve").await;
        member(store, &acme, &ada, MemberRole::Collaborator).await;
        let foreign_team = team(store, &other, "Foreign", None, &[]).await;
        let folder = resource(store, &acme, "kdrive.folder", "1", None).await;

        let two_levels = store
            .grant_access(&context(), grant(folder.id, Subject::User(ada.id), &["view", "manage"]))
            .await
            .unwrap_err();
        let unknown = store
            .grant_access(&context(), grant(folder.id, Subject::User(ada.id), &["fly"]))
            .await
            .unwrap_err();
        let outsider = store
            .grant_access(&context(), grant(folder.id, Subject::User(eve.id), &["view"]))
            .await
            .unwrap_err();
        let foreign = store
            .grant_access(&context(), grant(folder.id, Subject::Team(foreign_team.id), &["view"]))
            .await
            .unwrap_err();
        let missing = store
            .grant_access(&context(), grant(ResourceId::generate(), Subject::User(ada.id), &["view"]))
            .await
            .unwrap_err();
        let mut team_no_access = grant(folder.id, Subject::Team(foreign_team.id), &[]);
        team_no_access.no_access = true;
        let team_no_access = store.grant_access(&context(), team_no_access).await.unwrap_err();

        assert_eq!(field_of(&two_levels), "permissions");
        assert_eq!(field_of(&unknown), "permissions[0]");
        assert_eq!(field_of(&outsider), "subject.user_id");
        assert_eq!(field_of(&foreign), "subject.team_id");
        assert!(matches!(missing, StoreError::NotFound { .. }), "{missing:?}");
        assert_eq!(field_of(&team_no_access), "no_access");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn grant_replaces_and_revokes() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let ada = user(store, "ada").await;
        member(store, &acme, &ada, MemberRole::Collaborator).await;
        let folder = resource(store, &acme, "kdrive.folder", "1", None).await;

        let first = store.grant_access(&context(), grant(folder.id, Subject::User(ada.id), &["view"])).await.unwrap();
        let replaced = store.grant_access(&context(), grant(folder.id, Subject::User(ada.id), &["manage"])).await.unwrap();
        let repeated = store.grant_access(&context(), grant(folder.id, Subject::User(ada.id), &["manage"])).await.unwrap();
        let revoked = store.revoke_access(&context(), folder.id, Subject::User(ada.id)).await.unwrap();
        let revoked_again = store.revoke_access(&context(), folder.id, Subject::User(ada.id)).await.unwrap();

        assert_eq!(replaced.value.permissions, vec!["manage".to_owned()]);
        assert_eq!(replaced.value.create_time, first.value.create_time);
        assert_eq!(repeated.token, replaced.token);
        assert!(revoked.value);
        assert!(!revoked_again.value);
        assert_eq!(revoked_again.token, revoked.token);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn batch_grants_all_or_nothing() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let other = organization(store, "Other").await;
        let ada = user(store, "ada").await;
        member(store, &acme, &ada, MemberRole::Collaborator).await;
        let docs = team(store, &acme, "Docs", None, &[]).await;
        let mailbox = resource(store, &acme, "mail.mailbox", "a@acme.test", None).await;
        let foreign = resource(store, &other, "mail.mailbox", "b@other.test", None).await;
        store.grant_access(&context(), grant(mailbox.id, Subject::User(ada.id), &["read"])).await.unwrap();

        let rejected = store
            .batch_set_grants(
                &context(),
                BatchSetGrants {
                    organization_id: acme.id,
                    changes: vec![
                        GrantChange::Set(grant(mailbox.id, Subject::Team(docs.id), &["read", "send"])),
                        GrantChange::Set(grant(foreign.id, Subject::Team(docs.id), &["read"])),
                    ],
                },
            )
            .await
            .unwrap_err();
        let applied = store
            .batch_set_grants(
                &context(),
                BatchSetGrants {
                    organization_id: acme.id,
                    changes: vec![
                        GrantChange::Set(grant(mailbox.id, Subject::Team(docs.id), &["send", "read"])),
                        GrantChange::Revoke {
                            resource_id: mailbox.id,
                            subject: Subject::User(ada.id),
                        },
                    ],
                },
            )
            .await
            .unwrap();
        let grants = store
            .list_grants(
                &GrantFilter {
                    organization_id: acme.id,
                    resource_id: Some(mailbox.id),
                    subject: None,
                },
                &PageRequest::default(),
            )
            .await
            .unwrap();

        assert_eq!(field_of(&rejected), "changes[1].resource_id");
        assert_eq!(applied.value.set_count, 1);
        assert_eq!(applied.value.revoked_count, 1);
        assert_eq!(grants.items.len(), 1);
        assert_eq!(grants.items[0].permissions, vec!["read".to_owned(), "send".to_owned()]);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn no_access_grant_for_user() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let ada = user(store, "ada").await;
        member(store, &acme, &ada, MemberRole::Collaborator).await;
        let folder = resource(store, &acme, "kdrive.folder", "1", None).await;
        let mut spec = grant(folder.id, Subject::User(ada.id), &[]);
        spec.no_access = true;

        let written = store.grant_access(&context(), spec).await.unwrap();

        assert!(written.value.no_access);
        assert!(written.value.permissions.is_empty());
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn ten_thousand_grants_in_one_batch() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let docs = team(store, &acme, "Docs", None, &[]).await;
        let resources: Vec<NewResource> = (0..1_000)
            .map(|index| new_resource("mail.mailbox", &format!("box{index}@acme.test"), None))
            .collect();
        let mailboxes = store
            .batch_create_resources(
                &context(),
                BatchCreateResources {
                    organization_id: acme.id,
                    resources,
                },
            )
            .await
            .unwrap()
            .value;
        let mut teams = vec![docs];
        for index in 1..10 {
            teams.push(team(store, &acme, &format!("Team {index}"), None, &[]).await);
        }
        let changes: Vec<GrantChange> = mailboxes
            .iter()
            .flat_map(|mailbox| {
                teams
                    .iter()
                    .map(|team| GrantChange::Set(grant(mailbox.id, Subject::Team(team.id), &["read"])))
            })
            .collect();
        let before = store.current_token().await.unwrap();

        let written = store
            .batch_set_grants(
                &context(),
                BatchSetGrants {
                    organization_id: acme.id,
                    changes,
                },
            )
            .await
            .unwrap();
        let batches = store.changes_after(before, None, 10).await.unwrap();

        assert_eq!(written.value.set_count, 10_000);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].changes.len(), 10_000);
        fixture.cleanup().await;
    }
}
