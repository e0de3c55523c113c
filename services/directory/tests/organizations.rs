//! Organizations through the gRPC API: create, get, update, list, the
//! validation errors, etags and idempotency.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tonic::Code;
use workteams_proto::directory::v1 as proto;

#[tokio::test]
async fn organization_lifecycle() {
    each_backend(async |server| {
        let client = &mut server.client;
        let name = unique("acme");

        let created = client
            .create_organization(proto::CreateOrganizationRequest {
                name: name.clone(),
                display_name: "Acme Inc.".to_owned(),
                settings: Some(proto::OrganizationSettings {
                    leaders_manage_members: true,
                    resource_type_defaults: Vec::new(),
                }),
                owner_user_id: String::new(),
                idempotency_key: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let organization = created.organization.unwrap();
        assert_eq!(organization.name, name);
        assert_eq!(organization.display_name, "Acme Inc.");
        assert!(organization.settings.unwrap().leaders_manage_members);
        assert!(revision_of(&created.consistency_token) > 0);

        let by_id = client
            .get_organization(proto::GetOrganizationRequest {
                lookup: Some(proto::get_organization_request::Lookup::Id(
                    organization.id.clone(),
                )),
            })
            .await
            .unwrap()
            .into_inner()
            .organization
            .unwrap();
        assert_eq!(by_id.id, organization.id);

        let by_name = client
            .get_organization(proto::GetOrganizationRequest {
                lookup: Some(proto::get_organization_request::Lookup::Name(
                    name.to_uppercase(),
                )),
            })
            .await
            .unwrap()
            .into_inner()
            .organization
            .unwrap();
        assert_eq!(by_name.id, organization.id);

        let updated = client
            .update_organization(proto::UpdateOrganizationRequest {
                id: organization.id.clone(),
                update_mask: field_mask(&["display_name"]),
                display_name: "Acme Corporation".to_owned(),
                settings: None,
                etag: organization.etag.clone(),
                idempotency_key: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .organization
            .unwrap();
        assert_eq!(updated.display_name, "Acme Corporation");
        assert!(
            updated.settings.unwrap().leaders_manage_members,
            "settings were not in the mask"
        );
        assert_ne!(updated.etag, organization.etag);
    })
    .await;
}

#[tokio::test]
async fn organization_owner_becomes_member() {
    each_backend(async |server| {
        let client = &mut server.client;
        let owner = create_user(client, &unique("owner")).await;

        let organization = client
            .create_organization(proto::CreateOrganizationRequest {
                name: unique("owned"),
                owner_user_id: owner.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .organization
            .unwrap();

        let member = client
            .get_organization_member(proto::GetOrganizationMemberRequest {
                organization_id: organization.id,
                user_id: owner.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .member
            .unwrap();
        assert_eq!(member.role(), proto::MemberRole::Owner);
        assert_eq!(member.user.unwrap().id, owner.id);
    })
    .await;
}

#[tokio::test]
async fn organization_name_rules() {
    each_backend(async |server| {
        let client = &mut server.client;
        let cases = [
            String::new(),
            "x".repeat(101),
            "bad\u{1}name".to_owned(),
            " padded".to_owned(),
        ];
        for name in cases {
            let status = client
                .create_organization(proto::CreateOrganizationRequest {
                    name: name.clone(),
                    ..Default::default()
                })
                .await
                .unwrap_err();
            assert_invalid(&status, "name");
        }
    })
    .await;
}

#[tokio::test]
async fn organization_name_case_duplicate() {
    each_backend(async |server| {
        let client = &mut server.client;
        let name = unique("Globex");
        create_organization(client, &name).await;

        let status = client
            .create_organization(proto::CreateOrganizationRequest {
                name: name.to_lowercase(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_code_on_field(&status, Code::AlreadyExists, "name");
    })
    .await;
}

#[tokio::test]
async fn organization_unknown_and_malformed_ids() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("initech")).await;

        let unknown = client
            .get_organization(proto::GetOrganizationRequest {
                lookup: Some(proto::get_organization_request::Lookup::Id(
                    uuid::Uuid::now_v7().to_string(),
                )),
            })
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), Code::NotFound);

        let uppercase = client
            .get_organization(proto::GetOrganizationRequest {
                lookup: Some(proto::get_organization_request::Lookup::Id(
                    organization.id.to_uppercase(),
                )),
            })
            .await
            .unwrap_err();
        assert_invalid(&uppercase, "id");

        let missing = client
            .get_organization(proto::GetOrganizationRequest { lookup: None })
            .await
            .unwrap_err();
        assert_invalid(&missing, "lookup");
    })
    .await;
}

#[tokio::test]
async fn organization_update_mask_rules() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("umbrella")).await;
        let update = |mask| proto::UpdateOrganizationRequest {
            id: organization.id.clone(),
            update_mask: mask,
            display_name: "Umbrella".to_owned(),
            ..Default::default()
        };

        let empty = client.update_organization(update(None)).await.unwrap_err();
        assert_invalid(&empty, "update_mask");

        let unknown = client
            .update_organization(update(field_mask(&["display_name", "name"])))
            .await
            .unwrap_err();
        assert_invalid(&unknown, "update_mask.paths[1]");
    })
    .await;
}

#[tokio::test]
async fn organization_stale_etag_aborted() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("hooli")).await;
        let update = |display_name: &str, etag: &str| proto::UpdateOrganizationRequest {
            id: organization.id.clone(),
            update_mask: field_mask(&["display_name"]),
            display_name: display_name.to_owned(),
            etag: etag.to_owned(),
            ..Default::default()
        };

        client
            .update_organization(update("First", &organization.etag))
            .await
            .unwrap();
        let stale = client
            .update_organization(update("Second", &organization.etag))
            .await
            .unwrap_err();
        assert_eq!(stale.code(), Code::Aborted);

        let malformed = client
            .update_organization(update("Third", "v1"))
            .await
            .unwrap_err();
        assert_invalid(&malformed, "etag");
    })
    .await;
}

#[tokio::test]
async fn organization_settings_defaults_checked() {
    each_backend(async |server| {
        let client = &mut server.client;
        let settings = |resource_type: &str, base_level: &str| {
            Some(proto::OrganizationSettings {
                leaders_manage_members: false,
                resource_type_defaults: vec![proto::ResourceTypeDefault {
                    resource_type: resource_type.to_owned(),
                    base_level: base_level.to_owned(),
                    administrators_get_highest_level: true,
                }],
            })
        };

        let valid = client
            .create_organization(proto::CreateOrganizationRequest {
                name: unique("defaults"),
                settings: settings("kchat.channel", "member"),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .organization
            .unwrap();
        let stored = valid.settings.unwrap().resource_type_defaults;
        assert_eq!(stored[0].base_level, "member");

        let unknown_level = client
            .create_organization(proto::CreateOrganizationRequest {
                name: unique("defaults"),
                settings: settings("kchat.channel", "owner"),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_invalid(
            &unknown_level,
            "settings.resource_type_defaults[0].base_level",
        );
    })
    .await;
}

#[tokio::test]
async fn organization_list_pages() {
    each_backend(async |server| {
        let client = &mut server.client;
        for index in 0..5 {
            create_organization(client, &unique(&format!("page{index}"))).await;
        }

        let mut seen = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = client
                .list_organizations(proto::ListOrganizationsRequest {
                    page_size: 2,
                    page_token: page_token.clone(),
                })
                .await
                .unwrap()
                .into_inner();
            assert!(page.organizations.len() <= 2);
            seen.extend(
                page.organizations
                    .into_iter()
                    .map(|organization| organization.id),
            );
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        assert_eq!(seen.len(), 5);
        let mut unique_ids = seen.clone();
        unique_ids.sort();
        unique_ids.dedup();
        assert_eq!(unique_ids.len(), 5);
    })
    .await;
}

#[tokio::test]
async fn list_page_size_and_token_rules() {
    each_backend(async |server| {
        let client = &mut server.client;
        for index in 0..3 {
            create_organization(client, &unique(&format!("limits{index}"))).await;
        }

        let negative = client
            .list_organizations(proto::ListOrganizationsRequest {
                page_size: -1,
                page_token: String::new(),
            })
            .await
            .unwrap_err();
        assert_invalid(&negative, "page_size");

        let huge = client
            .list_organizations(proto::ListOrganizationsRequest {
                page_size: 1_000_000,
                page_token: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(huge.organizations.len(), 3);

        let first = client
            .list_organizations(proto::ListOrganizationsRequest {
                page_size: 1,
                page_token: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let mut tampered = first.next_page_token.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        let status = client
            .list_organizations(proto::ListOrganizationsRequest {
                page_size: 1,
                page_token: tampered,
            })
            .await
            .unwrap_err();
        assert_invalid(&status, "page_token");

        let foreign = client
            .list_users(proto::ListUsersRequest {
                page_size: 1,
                page_token: first.next_page_token,
            })
            .await
            .unwrap_err();
        assert_invalid(&foreign, "page_token");
    })
    .await;
}

#[tokio::test]
async fn idempotent_create_replays() {
    each_backend(async |server| {
        let client = &mut server.client;
        let request = proto::CreateOrganizationRequest {
            name: unique("replay"),
            idempotency_key: unique("key"),
            ..Default::default()
        };

        let first = client
            .create_organization(request.clone())
            .await
            .unwrap()
            .into_inner();
        let head_after_first = head_revision(client).await;
        let second = client
            .create_organization(request.clone())
            .await
            .unwrap()
            .into_inner();

        assert_eq!(second, first);
        assert_eq!(head_revision(client).await, head_after_first);
    })
    .await;
}

#[tokio::test]
async fn idempotency_key_reuse_rejected() {
    each_backend(async |server| {
        let client = &mut server.client;
        let key = unique("key");
        client
            .create_organization(proto::CreateOrganizationRequest {
                name: unique("first"),
                idempotency_key: key.clone(),
                ..Default::default()
            })
            .await
            .unwrap();

        let status = client
            .create_organization(proto::CreateOrganizationRequest {
                name: unique("second"),
                idempotency_key: key,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_invalid(&status, "idempotency_key");
    })
    .await;
}

#[tokio::test]
async fn idempotency_key_scoped_by_method() {
    each_backend(async |server| {
        let client = &mut server.client;
        let key = unique("key");
        client
            .create_organization(proto::CreateOrganizationRequest {
                name: unique("scoped"),
                idempotency_key: key.clone(),
                ..Default::default()
            })
            .await
            .unwrap();

        let status = client
            .create_user(proto::CreateUserRequest {
                login: unique("scoped"),
                idempotency_key: key,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_invalid(&status, "idempotency_key");
    })
    .await;
}

#[tokio::test]
async fn idempotency_key_too_long() {
    each_backend(async |server| {
        let client = &mut server.client;
        let status = client
            .create_organization(proto::CreateOrganizationRequest {
                name: unique("long-key"),
                idempotency_key: "k".repeat(129),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_invalid(&status, "idempotency_key");
    })
    .await;
}
