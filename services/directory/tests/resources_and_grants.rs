//! Resource types, resources and grants through the gRPC API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use tonic::Code;
use workteams_proto::directory::v1 as proto;

#[tokio::test]
async fn builtin_resource_types_listed() {
    each_backend(async |server| {
        let client = &mut server.client;
        let types = client
            .list_resource_types(proto::ListResourceTypesRequest {})
            .await
            .unwrap()
            .into_inner()
            .resource_types;
        let folder = types
            .iter()
            .find(|definition| definition.name == "kdrive.folder")
            .unwrap();
        assert_eq!(folder.permissions, vec!["view", "modify", "manage"]);
        assert!(folder.ordered_levels);
        assert_eq!(
            folder.combining(),
            proto::GrantCombining::IndividualPrecedence
        );
        assert!(
            types
                .iter()
                .any(|definition| definition.name == "mail.mailbox")
        );
    })
    .await;
}

#[tokio::test]
async fn configured_resource_type_synced() {
    let wiki = workteams_domain::ResourceTypeDef {
        name: "wiki.space".to_owned(),
        permissions: vec!["read".to_owned(), "edit".to_owned()],
        ordered_levels: true,
        combining: workteams_domain::Combining::Cumulative,
        grants_propagate: false,
        case_insensitive_external_ids: false,
        nestable: false,
    };
    each_backend_with(
        |config| config.extra_resource_types = vec![wiki.clone()],
        async |server| {
            let client = &mut server.client;
            let types = client
                .list_resource_types(proto::ListResourceTypesRequest {})
                .await
                .unwrap()
                .into_inner()
                .resource_types;
            assert!(
                types
                    .iter()
                    .any(|definition| definition.name == "wiki.space")
            );

            let organization = create_organization(client, &unique("wiki")).await;
            let space = create_resource(
                client,
                &organization.id,
                new_resource("wiki.space", "handbook"),
            )
            .await;
            assert_eq!(space.resource_type, "wiki.space");
        },
    )
    .await;
}

#[tokio::test]
async fn resource_lifecycle() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("drive")).await;

        let root =
            create_resource(client, &organization.id, new_resource("kdrive.folder", "1")).await;
        assert!(root.inherits, "inherits defaults to true");
        let child = create_resource(
            client,
            &organization.id,
            proto::NewResource {
                parent_resource_id: root.id.clone(),
                display_name: "Reports".to_owned(),
                inherits: Some(false),
                ..new_resource("kdrive.folder", "2")
            },
        )
        .await;
        assert_eq!(child.parent_resource_id, root.id);
        assert!(!child.inherits);

        let by_key = client
            .get_resource(proto::GetResourceRequest {
                lookup: Some(proto::get_resource_request::Lookup::Key(
                    proto::ResourceKey {
                        organization_id: organization.id.clone(),
                        resource_type: "kdrive.folder".to_owned(),
                        external_id: "2".to_owned(),
                    },
                )),
            })
            .await
            .unwrap()
            .into_inner()
            .resource
            .unwrap();
        assert_eq!(by_key.id, child.id);

        let updated = client
            .update_resource(proto::UpdateResourceRequest {
                id: child.id.clone(),
                update_mask: field_mask(&["display_name", "inherits"]),
                display_name: "Quarterly reports".to_owned(),
                inherits: true,
                etag: child.etag.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .resource
            .unwrap();
        assert_eq!(updated.display_name, "Quarterly reports");
        assert!(updated.inherits);
        assert_eq!(updated.parent_resource_id, root.id);

        let children = client
            .list_resources(proto::ListResourcesRequest {
                organization_id: organization.id.clone(),
                parent_resource_id: root.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .resources;
        assert_eq!(children.len(), 1);

        let parent_delete = client
            .delete_resource(proto::DeleteResourceRequest {
                id: root.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(parent_delete.code(), Code::FailedPrecondition);

        let stale = client
            .delete_resource(proto::DeleteResourceRequest {
                id: child.id.clone(),
                etag: child.etag.clone(),
                idempotency_key: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(stale.code(), Code::Aborted);

        client
            .delete_resource(proto::DeleteResourceRequest {
                id: child.id.clone(),
                etag: updated.etag.clone(),
                idempotency_key: String::new(),
            })
            .await
            .unwrap();
        client
            .delete_resource(proto::DeleteResourceRequest {
                id: root.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn resource_external_id_case_rules() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("mail")).await;
        create_resource(
            client,
            &organization.id,
            new_resource("mail.mailbox", "Info@Example.com"),
        )
        .await;

        let duplicate = client
            .create_resource(proto::CreateResourceRequest {
                organization_id: organization.id.clone(),
                resource: Some(new_resource("mail.mailbox", "info@example.com")),
                idempotency_key: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(duplicate.code(), Code::AlreadyExists);

        create_resource(
            client,
            &organization.id,
            new_resource("kdrive.folder", "Folder"),
        )
        .await;
        create_resource(
            client,
            &organization.id,
            new_resource("kdrive.folder", "folder"),
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn resource_input_rules() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("inputs")).await;
        let create = |resource: Option<proto::NewResource>| proto::CreateResourceRequest {
            organization_id: organization.id.clone(),
            resource,
            idempotency_key: String::new(),
        };

        let missing = client.create_resource(create(None)).await.unwrap_err();
        assert_invalid(&missing, "resource");

        let unknown_type = client
            .create_resource(create(Some(new_resource("fax.machine", "1"))))
            .await
            .unwrap_err();
        assert_invalid(&unknown_type, "resource.resource_type");

        let empty_id = client
            .create_resource(create(Some(new_resource("kdrive.folder", ""))))
            .await
            .unwrap_err();
        assert_invalid(&empty_id, "resource.external_id");

        let missing_parent = client
            .create_resource(create(Some(proto::NewResource {
                parent_external_id: "nowhere".to_owned(),
                ..new_resource("kdrive.folder", "orphan")
            })))
            .await
            .unwrap_err();
        assert_code_on_field(
            &missing_parent,
            Code::NotFound,
            "resource.parent_external_id",
        );

        create_resource(
            client,
            &organization.id,
            new_resource("mail.mailbox", "parent@example.com"),
        )
        .await;
        let flat_parent = client
            .create_resource(create(Some(proto::NewResource {
                parent_external_id: "parent@example.com".to_owned(),
                ..new_resource("mail.mailbox", "child@example.com")
            })))
            .await
            .unwrap_err();
        assert_precondition(&flat_parent, "resource.parent_external_id");
    })
    .await;
}

#[tokio::test]
async fn batch_resources_parents_by_external_id() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("tree")).await;

        let resources = client
            .batch_create_resources(proto::BatchCreateResourcesRequest {
                organization_id: organization.id.clone(),
                resources: vec![
                    new_resource("kdrive.folder", "root"),
                    proto::NewResource {
                        parent_external_id: "root".to_owned(),
                        ..new_resource("kdrive.folder", "child")
                    },
                    proto::NewResource {
                        parent_external_id: "child".to_owned(),
                        ..new_resource("kdrive.folder", "grandchild")
                    },
                ],
                idempotency_key: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .resources;
        assert_eq!(resources.len(), 3);
        assert_eq!(resources[1].parent_resource_id, resources[0].id);
        assert_eq!(resources[2].parent_resource_id, resources[1].id);
    })
    .await;
}

#[tokio::test]
async fn batch_resources_all_or_nothing() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("atomic")).await;
        let head = head_revision(client).await;

        let invalid = client
            .batch_create_resources(proto::BatchCreateResourcesRequest {
                organization_id: organization.id.clone(),
                resources: vec![
                    new_resource("kdrive.folder", "ok"),
                    new_resource("kdrive.folder", "bad\u{0}id"),
                ],
                idempotency_key: String::new(),
            })
            .await
            .unwrap_err();
        assert_invalid(&invalid, "resources[1].external_id");

        let over = client
            .batch_create_resources(proto::BatchCreateResourcesRequest {
                organization_id: organization.id.clone(),
                resources: (0..1_001)
                    .map(|index| new_resource("kdrive.folder", &index.to_string()))
                    .collect(),
                idempotency_key: String::new(),
            })
            .await
            .unwrap_err();
        assert_invalid(&over, "resources");

        assert_eq!(head_revision(client).await, head, "nothing was written");
    })
    .await;
}

#[tokio::test]
async fn grant_and_revoke() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("grants")).await;
        let team = create_team(client, &organization.id, "Readers").await;
        let user = create_member(client, &organization.id, &unique("reader")).await;
        let mailbox = create_resource(
            client,
            &organization.id,
            new_resource("mail.mailbox", "team@example.com"),
        )
        .await;

        let granted = client
            .grant_access(proto::GrantAccessRequest {
                resource_id: mailbox.id.clone(),
                subject: team_subject(&team.id),
                permissions: vec!["read".to_owned(), "send".to_owned()],
                no_access: false,
                expire_time: timestamp_in(Duration::from_secs(3_600)),
                idempotency_key: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .grant
            .unwrap();
        assert_eq!(granted.organization_id, organization.id);
        assert!(granted.expire_time.is_some());

        let denied = client
            .grant_access(proto::GrantAccessRequest {
                resource_id: mailbox.id.clone(),
                subject: user_subject(&user.id),
                no_access: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .grant
            .unwrap();
        assert!(denied.no_access);

        let listed = client
            .list_grants(proto::ListGrantsRequest {
                organization_id: organization.id.clone(),
                resource_id: mailbox.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .grants;
        assert_eq!(listed.len(), 2);

        let revoked = client
            .revoke_access(proto::RevokeAccessRequest {
                resource_id: mailbox.id.clone(),
                subject: team_subject(&team.id),
                idempotency_key: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(revoked.revoked);
        let again = client
            .revoke_access(proto::RevokeAccessRequest {
                resource_id: mailbox.id.clone(),
                subject: team_subject(&team.id),
                idempotency_key: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!again.revoked);
    })
    .await;
}

#[tokio::test]
async fn grant_input_rules() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("rules")).await;
        let team = create_team(client, &organization.id, "Team").await;
        let folder =
            create_resource(client, &organization.id, new_resource("kdrive.folder", "f")).await;
        let grant = |subject, permissions: &[&str], no_access| proto::GrantAccessRequest {
            resource_id: folder.id.clone(),
            subject,
            permissions: permissions
                .iter()
                .map(|permission| (*permission).to_owned())
                .collect(),
            no_access,
            ..Default::default()
        };

        let unknown = client
            .grant_access(grant(team_subject(&team.id), &["fly"], false))
            .await
            .unwrap_err();
        assert_invalid(&unknown, "permissions[0]");

        let two_levels = client
            .grant_access(grant(team_subject(&team.id), &["view", "manage"], false))
            .await
            .unwrap_err();
        assert_invalid(&two_levels, "permissions");

        let team_denied = client
            .grant_access(grant(team_subject(&team.id), &[], true))
            .await
            .unwrap_err();
        assert_invalid(&team_denied, "no_access");

        let no_subject = client
            .grant_access(grant(None, &["view"], false))
            .await
            .unwrap_err();
        assert_invalid(&no_subject, "subject");

        let upper_team = client
            .grant_access(grant(
                team_subject(&team.id.to_uppercase()),
                &["view"],
                false,
            ))
            .await
            .unwrap_err();
        assert_invalid(&upper_team, "subject.team_id");

        let unknown_team = client
            .grant_access(grant(
                team_subject(&uuid::Uuid::now_v7().to_string()),
                &["view"],
                false,
            ))
            .await
            .unwrap_err();
        assert_code_on_field(&unknown_team, Code::NotFound, "subject.team_id");
    })
    .await;
}

#[tokio::test]
async fn batch_set_grants_counts() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("batch")).await;
        let team = create_team(client, &organization.id, "Team").await;
        let first = create_resource(
            client,
            &organization.id,
            new_resource("kchat.channel", "general"),
        )
        .await;
        let second = create_resource(
            client,
            &organization.id,
            new_resource("kchat.channel", "random"),
        )
        .await;
        client
            .grant_access(proto::GrantAccessRequest {
                resource_id: second.id.clone(),
                subject: team_subject(&team.id),
                permissions: vec!["member".to_owned()],
                ..Default::default()
            })
            .await
            .unwrap();

        let outcome = client
            .batch_set_grants(proto::BatchSetGrantsRequest {
                organization_id: organization.id.clone(),
                changes: vec![
                    proto::GrantChange {
                        resource_id: first.id.clone(),
                        subject: team_subject(&team.id),
                        permissions: vec!["admin".to_owned()],
                        ..Default::default()
                    },
                    proto::GrantChange {
                        resource_id: second.id.clone(),
                        subject: team_subject(&team.id),
                        revoke: true,
                        ..Default::default()
                    },
                ],
                idempotency_key: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(outcome.set_count, 1);
        assert_eq!(outcome.revoked_count, 1);
    })
    .await;
}

#[tokio::test]
async fn batch_set_grants_limits() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("limits")).await;
        let team = create_team(client, &organization.id, "Team").await;
        let folder =
            create_resource(client, &organization.id, new_resource("kdrive.folder", "f")).await;
        let head = head_revision(client).await;
        let change = proto::GrantChange {
            resource_id: folder.id.clone(),
            subject: team_subject(&team.id),
            permissions: vec!["view".to_owned()],
            ..Default::default()
        };

        let over = client
            .batch_set_grants(proto::BatchSetGrantsRequest {
                organization_id: organization.id.clone(),
                changes: vec![change.clone(); 10_001],
                idempotency_key: String::new(),
            })
            .await
            .unwrap_err();
        assert_invalid(&over, "changes");
        assert!(over.message().contains("10000"), "{over:?}");

        let bad_permission = client
            .batch_set_grants(proto::BatchSetGrantsRequest {
                organization_id: organization.id.clone(),
                changes: vec![
                    change.clone(),
                    proto::GrantChange {
                        permissions: vec!["own".to_owned()],
                        ..change.clone()
                    },
                ],
                idempotency_key: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(bad_permission.code(), Code::InvalidArgument);
        assert!(
            bad_request_fields(&bad_permission)[0].starts_with("changes[1]"),
            "{bad_permission:?}"
        );

        assert_eq!(head_revision(client).await, head, "nothing was written");
    })
    .await;
}
