//! Organizations and users.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{context, field_of, fixtures, member, organization, user};
use workteams_domain::command::{NewOrganization, OrganizationLookup};
use workteams_domain::OrganizationSettings;
use workteams_storage::StoreError;

#[tokio::test]
async fn organization_round_trips() {
    for fixture in fixtures().await {
        let created = organization(&fixture.store, "Acme").await;

        let by_id = fixture.store.get_organization(&OrganizationLookup::Id(created.id)).await.unwrap();
        let by_name = fixture
            .store
            .get_organization(&OrganizationLookup::Name("ACME".to_owned()))
            .await
            .unwrap();

        assert_eq!(by_id, created);
        assert_eq!(by_name, created);
        assert_eq!(created.display_name, "Acme");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn organization_name_unique_ignoring_case() {
    for fixture in fixtures().await {
        organization(&fixture.store, "Acme").await;

        let error = fixture
            .store
            .create_organization(
                &context(),
                NewOrganization {
                    name: "aCME".to_owned(),
                    display_name: String::new(),
                    settings: OrganizationSettings::default(),
                    owner_user_id: None,
                },
            )
            .await
            .unwrap_err();

        assert!(matches!(error, StoreError::AlreadyExists { ref field, .. } if field == "name"), "{error:?}");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn organization_update_checks_etag() {
    use workteams_domain::command::{Etag, OrganizationUpdate};
    for fixture in fixtures().await {
        let created = organization(&fixture.store, "Acme").await;
        let update = |etag| OrganizationUpdate {
            id: created.id,
            display_name: Some("Acme Corp".to_owned()),
            settings: None,
            etag,
        };

        let stale = fixture.store.update_organization(&context(), update(Some(Etag(99)))).await.unwrap_err();
        let updated = fixture
            .store
            .update_organization(&context(), update(Some(Etag(created.version))))
            .await
            .unwrap();

        assert!(matches!(stale, StoreError::Aborted { .. }), "{stale:?}");
        assert_eq!(updated.value.display_name, "Acme Corp");
        assert_eq!(updated.value.version, created.version + 1);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn unchanged_update_writes_nothing() {
    use workteams_domain::command::OrganizationUpdate;
    for fixture in fixtures().await {
        let created = organization(&fixture.store, "Acme").await;
        let before = fixture.store.current_token().await.unwrap();

        let written = fixture
            .store
            .update_organization(
                &context(),
                OrganizationUpdate {
                    id: created.id,
                    display_name: Some("Acme".to_owned()),
                    settings: None,
                    etag: None,
                },
            )
            .await
            .unwrap();

        assert_eq!(written.token, before);
        assert_eq!(written.value.version, created.version);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn organization_default_needs_ordered_type() {
    use workteams_domain::ResourceTypeDefault;
    for fixture in fixtures().await {
        let settings = OrganizationSettings {
            leaders_manage_members: false,
            resource_type_defaults: vec![ResourceTypeDefault {
                resource_type: "mail.mailbox".to_owned(),
                base_level: None,
                administrators_get_highest_level: true,
            }],
        };
        let error = fixture
            .store
            .create_organization(
                &context(),
                NewOrganization {
                    name: "Acme".to_owned(),
                    display_name: String::new(),
                    settings,
                    owner_user_id: None,
                },
            )
            .await
            .unwrap_err();

        assert_eq!(field_of(&error), "settings.resource_type_defaults[0].resource_type");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn organization_owner_becomes_member() {
    use workteams_domain::MemberRole;
    for fixture in fixtures().await {
        let owner = user(&fixture.store, "ada").await;
        let created = fixture
            .store
            .create_organization(
                &context(),
                NewOrganization {
                    name: "Acme".to_owned(),
                    display_name: "Acme Inc.".to_owned(),
                    settings: OrganizationSettings::default(),
                    owner_user_id: Some(owner.id),
                },
            )
            .await
            .unwrap();

        let member = fixture.store.get_member(created.value.id, owner.id).await.unwrap();
        let batch = fixture.store.changes_after(fixture.store.token(workteams_domain::Revision(created.token.revision.0 - 1)), None, 10).await.unwrap();

        assert_eq!(member.member.role, MemberRole::Owner);
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].changes.len(), 2);
        assert_eq!(batch[0].actor.as_deref(), Some("tester"));
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn user_login_and_email_unique_ignoring_case() {
    use workteams_domain::command::NewUser;
    for fixture in fixtures().await {
        user(&fixture.store, "Ada").await;
        let attempt = |login: &str, email: &str| NewUser {
            login: login.to_owned(),
            email: Some(email.to_owned()),
            display_name: String::new(),
        };

        let same_login = fixture.store.create_user(&context(), attempt("ADA", "other@example.com")).await.unwrap_err();
        let same_email = fixture.store.create_user(&context(), attempt("grace", "ADA@EXAMPLE.COM")).await.unwrap_err();

        assert_eq!(field_of(&same_login), "login");
        assert_eq!(field_of(&same_email), "email");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn user_lookups_ignore_case() {
    use workteams_domain::command::UserLookup;
    for fixture in fixtures().await {
        let created = user(&fixture.store, "Ada").await;

        let by_login = fixture.store.get_user(&UserLookup::Login("aDa".to_owned())).await.unwrap();
        let by_email = fixture.store.get_user(&UserLookup::Email("ADA@example.com".to_owned())).await.unwrap();
        let missing = fixture.store.get_user(&UserLookup::Login("grace".to_owned())).await.unwrap_err();

        assert_eq!(by_login, created);
        assert_eq!(by_email, created);
        assert_eq!(by_login.login, "Ada");
        assert_eq!(field_of(&missing), "login");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn uppercase_id_is_not_an_id() {
    let id = workteams_domain::UserId::generate().to_string().to_uppercase();
    assert!(workteams_domain::UserId::parse("user_id", &id).is_err());
}

#[tokio::test]
async fn batch_users_find_or_create() {
    use workteams_domain::command::{BatchCreateUsers, NewUser};
    for fixture in fixtures().await {
        let existing = user(&fixture.store, "ada").await;
        let new_user = |login: &str| NewUser {
            login: login.to_owned(),
            email: None,
            display_name: String::new(),
        };

        let written = fixture
            .store
            .batch_create_users(
                &context(),
                BatchCreateUsers {
                    users: vec![new_user("ADA"), new_user("grace"), new_user("Grace")],
                },
            )
            .await
            .unwrap();

        assert_eq!(written.value.len(), 3);
        assert_eq!(written.value[0], existing);
        assert_eq!(written.value[1].login, "grace");
        assert_eq!(written.value[2].id, written.value[1].id);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn user_update_rejects_taken_login() {
    use workteams_domain::command::UserUpdate;
    for fixture in fixtures().await {
        let ada = user(&fixture.store, "ada").await;
        user(&fixture.store, "grace").await;
        let update = |login: &str| UserUpdate {
            id: ada.id,
            login: Some(login.to_owned()),
            email: Some(None),
            display_name: None,
            etag: None,
        };

        let taken = fixture.store.update_user(&context(), update("GRACE")).await.unwrap_err();
        let recased = fixture.store.update_user(&context(), update("Ada")).await.unwrap();

        assert_eq!(field_of(&taken), "login");
        assert_eq!(recased.value.login, "Ada");
        assert_eq!(recased.value.email, None);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn member_add_twice_already_exists() {
    use workteams_domain::MemberRole;
    use workteams_domain::command::{MemberSpec, NewMember};
    for fixture in fixtures().await {
        let acme = organization(&fixture.store, "Acme").await;
        let ada = user(&fixture.store, "ada").await;
        member(&fixture.store, &acme, &ada, MemberRole::Collaborator).await;

        let error = fixture
            .store
            .add_member(
                &context(),
                NewMember {
                    organization_id: acme.id,
                    member: MemberSpec {
                        user_id: ada.id,
                        role: MemberRole::Administrator,
                        status: workteams_domain::MemberStatus::Active,
                    },
                },
            )
            .await
            .unwrap_err();

        assert!(matches!(error, StoreError::AlreadyExists { .. }), "{error:?}");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn batch_members_upsert_and_name_missing() {
    use workteams_domain::command::{BatchAddMembers, MemberSpec};
    use workteams_domain::{MemberRole, MemberStatus, UserId};
    for fixture in fixtures().await {
        let acme = organization(&fixture.store, "Acme").await;
        let ada = user(&fixture.store, "ada").await;
        let grace = user(&fixture.store, "grace").await;
        member(&fixture.store, &acme, &ada, MemberRole::Collaborator).await;
        let spec = |user_id, role| MemberSpec {
            user_id,
            role,
            status: MemberStatus::Active,
        };

        let written = fixture
            .store
            .batch_add_members(
                &context(),
                BatchAddMembers {
                    organization_id: acme.id,
                    members: vec![spec(ada.id, MemberRole::Administrator), spec(grace.id, MemberRole::External)],
                },
            )
            .await
            .unwrap();
        let missing = fixture
            .store
            .batch_add_members(
                &context(),
                BatchAddMembers {
                    organization_id: acme.id,
                    members: vec![spec(grace.id, MemberRole::Owner), spec(UserId::generate(), MemberRole::Owner)],
                },
            )
            .await
            .unwrap_err();
        let grace_after = fixture.store.get_member(acme.id, grace.id).await.unwrap();

        assert_eq!(written.value[0].member.role, MemberRole::Administrator);
        assert_eq!(written.value[0].member.version, 2);
        assert_eq!(written.value[1].user.login, "grace");
        assert_eq!(field_of(&missing), "members[1].user_id");
        assert_eq!(grace_after.member.role, MemberRole::External);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn member_update_checks_etag() {
    use workteams_domain::command::{Etag, MemberUpdate};
    use workteams_domain::{MemberRole, MemberStatus};
    for fixture in fixtures().await {
        let acme = organization(&fixture.store, "Acme").await;
        let ada = user(&fixture.store, "ada").await;
        member(&fixture.store, &acme, &ada, MemberRole::Collaborator).await;
        let update = |etag| MemberUpdate {
            organization_id: acme.id,
            user_id: ada.id,
            role: None,
            status: Some(MemberStatus::Suspended),
            etag,
        };

        let stale = fixture.store.update_member(&context(), update(Some(Etag(7)))).await.unwrap_err();
        let updated = fixture.store.update_member(&context(), update(Some(Etag(1)))).await.unwrap();

        assert!(matches!(stale, StoreError::Aborted { .. }), "{stale:?}");
        assert_eq!(updated.value.member.status, MemberStatus::Suspended);
        assert_eq!(updated.value.member.role, MemberRole::Collaborator);
        fixture.cleanup().await;
    }
}
