//! Users and organization members through the gRPC API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tonic::Code;
use workteams_proto::directory::v1 as proto;

#[tokio::test]
async fn user_lifecycle() {
    each_backend(async |server| {
        let client = &mut server.client;
        let login = unique("Ada");

        let user = client
            .create_user(proto::CreateUserRequest {
                login: login.clone(),
                email: format!("{login}@Example.com"),
                display_name: "Ada Lovelace".to_owned(),
                idempotency_key: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .user
            .unwrap();
        assert_eq!(user.login, login, "the login is stored as given");

        let lookups = [
            proto::get_user_request::Lookup::Id(user.id.clone()),
            proto::get_user_request::Lookup::Login(login.to_lowercase()),
            proto::get_user_request::Lookup::Email(format!("{login}@example.COM").to_uppercase()),
        ];
        for lookup in lookups {
            let found = client
                .get_user(proto::GetUserRequest {
                    lookup: Some(lookup),
                })
                .await
                .unwrap()
                .into_inner()
                .user
                .unwrap();
            assert_eq!(found.id, user.id);
        }

        let updated = client
            .update_user(proto::UpdateUserRequest {
                id: user.id.clone(),
                update_mask: field_mask(&["display_name", "email"]),
                display_name: "Countess of Lovelace".to_owned(),
                email: String::new(),
                etag: user.etag.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .user
            .unwrap();
        assert_eq!(updated.display_name, "Countess of Lovelace");
        assert_eq!(updated.email, "");
        assert_eq!(updated.login, login);

        let listed = client
            .list_users(proto::ListUsersRequest::default())
            .await
            .unwrap()
            .into_inner()
            .users;
        assert!(listed.iter().any(|listed| listed.id == user.id));
    })
    .await;
}

#[tokio::test]
async fn user_invalid_emails_rejected() {
    each_backend(async |server| {
        let client = &mut server.client;
        for email in [
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@@example.com",
        ] {
            let status = client
                .create_user(proto::CreateUserRequest {
                    login: unique("mail"),
                    email: email.to_owned(),
                    ..Default::default()
                })
                .await
                .unwrap_err();
            assert_invalid(&status, "email");
        }
    })
    .await;
}

#[tokio::test]
async fn user_invalid_logins_rejected() {
    each_backend(async |server| {
        let client = &mut server.client;
        for login in ["", "-ada", "ada lovelace", "ada\u{7f}"] {
            let status = client
                .create_user(proto::CreateUserRequest {
                    login: login.to_owned(),
                    ..Default::default()
                })
                .await
                .unwrap_err();
            assert_invalid(&status, "login");
        }
    })
    .await;
}

#[tokio::test]
async fn user_login_and_email_unique_ignoring_case() {
    each_backend(async |server| {
        let client = &mut server.client;
        let login = unique("Grace");
        create_user(client, &login).await;

        let same_login = client
            .create_user(proto::CreateUserRequest {
                login: login.to_uppercase(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_code_on_field(&same_login, Code::AlreadyExists, "login");

        let same_email = client
            .create_user(proto::CreateUserRequest {
                login: unique("other"),
                email: format!("{login}@example.com").to_uppercase(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_code_on_field(&same_email, Code::AlreadyExists, "email");
    })
    .await;
}

#[tokio::test]
async fn user_uppercase_id_rejected() {
    each_backend(async |server| {
        let client = &mut server.client;
        let user = create_user(client, &unique("upper")).await;

        let status = client
            .get_user(proto::GetUserRequest {
                lookup: Some(proto::get_user_request::Lookup::Id(user.id.to_uppercase())),
            })
            .await
            .unwrap_err();
        assert_invalid(&status, "id");
    })
    .await;
}

#[tokio::test]
async fn batch_create_users_finds_existing() {
    each_backend(async |server| {
        let client = &mut server.client;
        let existing = create_user(client, &unique("Existing")).await;
        let fresh = unique("fresh");

        let users = client
            .batch_create_users(proto::BatchCreateUsersRequest {
                users: vec![
                    proto::NewUser {
                        login: fresh.clone(),
                        email: String::new(),
                        display_name: String::new(),
                    },
                    proto::NewUser {
                        login: existing.login.to_lowercase(),
                        email: String::new(),
                        display_name: "ignored".to_owned(),
                    },
                ],
                idempotency_key: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .users;
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].login, fresh);
        assert_eq!(users[1].id, existing.id);
        assert_eq!(users[1].display_name, existing.display_name);
    })
    .await;
}

#[tokio::test]
async fn batch_create_users_names_item() {
    each_backend(async |server| {
        let client = &mut server.client;
        let head = head_revision(client).await;
        let mut users: Vec<proto::NewUser> = (0..3)
            .map(|index| proto::NewUser {
                login: unique(&format!("item{index}")),
                ..Default::default()
            })
            .collect();
        users[2].email = "not-an-address".to_owned();

        let status = client
            .batch_create_users(proto::BatchCreateUsersRequest {
                users,
                idempotency_key: String::new(),
            })
            .await
            .unwrap_err();
        assert_invalid(&status, "users[2].email");
        assert_eq!(head_revision(client).await, head, "nothing was written");
    })
    .await;
}

#[tokio::test]
async fn batch_create_users_over_limit() {
    each_backend(async |server| {
        let client = &mut server.client;
        let users = (0..1_001)
            .map(|index| proto::NewUser {
                login: format!("bulk{index}"),
                ..Default::default()
            })
            .collect();

        let status = client
            .batch_create_users(proto::BatchCreateUsersRequest {
                users,
                idempotency_key: String::new(),
            })
            .await
            .unwrap_err();
        assert_invalid(&status, "users");
        assert!(status.message().contains("1000"), "{status:?}");
    })
    .await;
}

#[tokio::test]
async fn member_lifecycle() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("members")).await;
        let user = create_user(client, &unique("member")).await;

        let added = client
            .add_organization_member(proto::AddOrganizationMemberRequest {
                organization_id: organization.id.clone(),
                user_id: user.id.clone(),
                role: proto::MemberRole::Collaborator.into(),
                status: proto::MemberStatus::Unspecified.into(),
                idempotency_key: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .member
            .unwrap();
        assert_eq!(
            added.status(),
            proto::MemberStatus::Active,
            "status defaults to active"
        );
        assert_eq!(added.user.as_ref().unwrap().login, user.login);

        let again = client
            .add_organization_member(proto::AddOrganizationMemberRequest {
                organization_id: organization.id.clone(),
                user_id: user.id.clone(),
                role: proto::MemberRole::Collaborator.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(again.code(), Code::AlreadyExists);

        let updated = client
            .update_organization_member(proto::UpdateOrganizationMemberRequest {
                organization_id: organization.id.clone(),
                user_id: user.id.clone(),
                update_mask: field_mask(&["status"]),
                status: proto::MemberStatus::Suspended.into(),
                etag: added.etag.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .member
            .unwrap();
        assert_eq!(updated.status(), proto::MemberStatus::Suspended);
        assert_eq!(updated.role(), proto::MemberRole::Collaborator);

        let stale = client
            .update_organization_member(proto::UpdateOrganizationMemberRequest {
                organization_id: organization.id.clone(),
                user_id: user.id.clone(),
                update_mask: field_mask(&["role"]),
                role: proto::MemberRole::Administrator.into(),
                etag: added.etag.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(stale.code(), Code::Aborted);

        let listed = client
            .list_organization_members(proto::ListOrganizationMembersRequest {
                organization_id: organization.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .members;
        assert_eq!(listed.len(), 1);

        client
            .remove_organization_member(proto::RemoveOrganizationMemberRequest {
                organization_id: organization.id.clone(),
                user_id: user.id.clone(),
                idempotency_key: String::new(),
            })
            .await
            .unwrap();
        let gone = client
            .get_organization_member(proto::GetOrganizationMemberRequest {
                organization_id: organization.id.clone(),
                user_id: user.id.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(gone.code(), Code::NotFound);
    })
    .await;
}

#[tokio::test]
async fn member_role_required() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("roles")).await;
        let user = create_user(client, &unique("roleless")).await;

        let status = client
            .add_organization_member(proto::AddOrganizationMemberRequest {
                organization_id: organization.id,
                user_id: user.id,
                role: proto::MemberRole::Unspecified.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_invalid(&status, "role");
    })
    .await;
}

#[tokio::test]
async fn member_unknown_user_not_found() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("ghosts")).await;

        let status = client
            .add_organization_member(proto::AddOrganizationMemberRequest {
                organization_id: organization.id,
                user_id: uuid::Uuid::now_v7().to_string(),
                role: proto::MemberRole::Collaborator.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_code_on_field(&status, Code::NotFound, "user_id");
    })
    .await;
}

#[tokio::test]
async fn batch_add_members_sets_roles() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("batch")).await;
        let first = create_user(client, &unique("first")).await;
        let second = create_user(client, &unique("second")).await;
        add_member(
            client,
            &organization.id,
            &first.id,
            proto::MemberRole::Collaborator,
        )
        .await;

        let members = client
            .batch_add_organization_members(proto::BatchAddOrganizationMembersRequest {
                organization_id: organization.id.clone(),
                members: vec![
                    proto::NewOrganizationMember {
                        user_id: first.id.clone(),
                        role: proto::MemberRole::Administrator.into(),
                        status: proto::MemberStatus::Unspecified.into(),
                    },
                    proto::NewOrganizationMember {
                        user_id: second.id.clone(),
                        role: proto::MemberRole::External.into(),
                        status: proto::MemberStatus::Suspended.into(),
                    },
                ],
                idempotency_key: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .members;
        assert_eq!(members[0].role(), proto::MemberRole::Administrator);
        assert_eq!(members[1].role(), proto::MemberRole::External);
        assert_eq!(members[1].status(), proto::MemberStatus::Suspended);
    })
    .await;
}

#[tokio::test]
async fn batch_add_members_limits() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("limits")).await;
        let user = create_user(client, &unique("twice")).await;
        let member = |user_id: String| proto::NewOrganizationMember {
            user_id,
            role: proto::MemberRole::Collaborator.into(),
            status: 0,
        };

        let over = client
            .batch_add_organization_members(proto::BatchAddOrganizationMembersRequest {
                organization_id: organization.id.clone(),
                members: (0..1_001)
                    .map(|_| member(uuid::Uuid::now_v7().to_string()))
                    .collect(),
                idempotency_key: String::new(),
            })
            .await
            .unwrap_err();
        assert_invalid(&over, "members");

        let bad_id = client
            .batch_add_organization_members(proto::BatchAddOrganizationMembersRequest {
                organization_id: organization.id.clone(),
                members: vec![member(user.id.clone()), member(user.id.to_uppercase())],
                idempotency_key: String::new(),
            })
            .await
            .unwrap_err();
        assert_invalid(&bad_id, "members[1].user_id");

        let repeated = client
            .batch_add_organization_members(proto::BatchAddOrganizationMembersRequest {
                organization_id: organization.id.clone(),
                members: vec![member(user.id.clone()), member(user.id.clone())],
                idempotency_key: String::new(),
            })
            .await
            .unwrap_err();
        assert_invalid(&repeated, "members[1].user_id");
    })
    .await;
}

#[tokio::test]
async fn request_metadata_checked_and_echoed() {
    each_backend(async |server| {
        let client = &mut server.client;

        let mut request = tonic::Request::new(proto::GetRevisionRequest {});
        request
            .metadata_mut()
            .insert("x-request-id", "trace-me-42".parse().unwrap());
        let response = client.get_revision(request).await.unwrap();
        assert_eq!(
            response.metadata().get("x-request-id").unwrap(),
            "trace-me-42"
        );

        let generated = client
            .get_revision(proto::GetRevisionRequest {})
            .await
            .unwrap();
        let generated_id = generated
            .metadata()
            .get("x-request-id")
            .unwrap()
            .to_str()
            .unwrap();
        assert_eq!(generated_id.len(), 36);

        let failing = client
            .get_user(proto::GetUserRequest { lookup: None })
            .await
            .unwrap_err();
        assert!(failing.metadata().get("x-request-id").is_some());

        let mut too_long = tonic::Request::new(proto::GetRevisionRequest {});
        too_long
            .metadata_mut()
            .insert("x-request-id", "x".repeat(200).parse().unwrap());
        let status = client.get_revision(too_long).await.unwrap_err();
        assert_invalid(&status, "metadata x-request-id");
    })
    .await;
}
