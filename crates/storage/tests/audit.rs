//! Audit events: states before and after, cascades, exactly-once recording,
//! filters and pagination.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TEST_METHOD, context, field_of, fixtures, idempotent, member, organization, resource, team, user};
use workteams_domain::command::{
    AcceptInvitation, GrantSpec, MemberSpec, NewInvitation, NewMember, OrganizationUpdate, SetTeamLeaders, TeamUpdate,
};
use workteams_domain::{Entity, EntityKey, MemberRole, MemberStatus, Organization, Revision, Subject};
use workteams_storage::{
    AuditEvent, AuditFilter, AuditOrder, EntityKind, PageRequest, RequestContext, RetentionPolicy, Store, StoreError,
    audit_entity_id,
};

/// Reads every event the filter selects, page after page.
async fn all_events(store: &Store, filter: &AuditFilter) -> Vec<AuditEvent> {
    let mut events = Vec::new();
    let mut page = PageRequest::first(2);
    loop {
        let listed = store.list_audit_events(filter, &page).await.unwrap();
        events.extend(listed.items);
        match listed.next_page_token {
            Some(token) => page.page_token = token,
            None => return events,
        }
    }
}

/// Returns the events of one revision, in position order.
async fn events_at(store: &Store, organization: &Organization, revision: Revision) -> Vec<AuditEvent> {
    let filter = AuditFilter {
        order: AuditOrder::OldestFirst,
        ..AuditFilter::organization(organization.id)
    };
    all_events(store, &filter)
        .await
        .into_iter()
        .filter(|event| event.revision == revision)
        .collect()
}

fn of_kind(events: &[AuditEvent], kind: EntityKind) -> Vec<&AuditEvent> {
    events.iter().filter(|event| event.entity_kind == kind).collect()
}

fn grant_spec(resource_id: workteams_domain::ResourceId, subject: Subject) -> GrantSpec {
    GrantSpec {
        resource_id,
        subject,
        permissions: vec!["read".to_owned()],
        no_access: false,
        expire_time: None,
        granted_by: None,
    }
}

fn actor(name: &str) -> RequestContext {
    RequestContext {
        actor: Some(name.to_owned()),
        ..context()
    }
}

#[tokio::test]
async fn creation_has_no_before_state() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;

        let events = all_events(store, &AuditFilter::organization(acme.id)).await;

        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(event.entity_kind, EntityKind::Organization);
        assert_eq!(event.entity_key, EntityKey::Organization(acme.id));
        assert_eq!(event.before, None);
        assert_eq!(event.after, Some(Entity::Organization(acme.clone())));
        assert_eq!(event.actor.as_deref(), Some("tester"));
        assert_eq!(event.request_id.as_deref(), Some("request-1"));
        assert_eq!(event.method.as_deref(), Some(TEST_METHOD));
        assert_eq!(event.operation, "create_organization");
        assert_eq!(event.organization_id, Some(acme.id));
        assert_eq!(event.time, acme.create_time);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn update_records_both_states() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let docs = team(store, &acme, "Docs", None, &[]).await;

        let renamed = store
            .update_team(
                &context(),
                TeamUpdate {
                    id: docs.id,
                    name: Some("Documentation".to_owned()),
                    description: None,
                    color: None,
                    etag: None,
                },
            )
            .await
            .unwrap();
        let events = events_at(store, &acme, renamed.token.revision).await;

        assert_eq!(events.len(), 1);
        assert_eq!(events[0].before, Some(Entity::Team(docs.clone())));
        assert_eq!(events[0].after, Some(Entity::Team(renamed.value.clone())));
        assert_eq!(events[0].operation, "update_team");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn deletion_has_no_after_state() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let mailbox = resource(store, &acme, "mail.mailbox", "info@acme.example", None).await;

        let deleted = store.delete_resource(&context(), mailbox.id, None).await.unwrap();
        let events = events_at(store, &acme, deleted.token.revision).await;

        assert_eq!(events.len(), 1);
        assert_eq!(events[0].entity_kind, EntityKind::Resource);
        assert_eq!(events[0].before, Some(Entity::Resource(mailbox.clone())));
        assert_eq!(events[0].after, None);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn team_deletion_audits_cascade() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let alice = user(store, "alice").await;
        member(store, &acme, &alice, MemberRole::Collaborator).await;
        let docs = team(store, &acme, "Docs", None, &[&alice]).await;
        let child = team(store, &acme, "Docs FR", Some(docs.id), &[]).await;
        let mailbox = resource(store, &acme, "mail.mailbox", "docs@acme.example", None).await;
        let grant = store
            .grant_access(&context(), grant_spec(mailbox.id, Subject::Team(docs.id)))
            .await
            .unwrap()
            .value;
        let invitation = store
            .create_invitation(
                &context(),
                NewInvitation {
                    organization_id: acme.id,
                    email: "guest@example.com".to_owned(),
                    team_ids: vec![docs.id, child.id],
                    expire_time: None,
                    invited_by: None,
                },
            )
            .await
            .unwrap()
            .value;
        let user_teams = workteams_storage::UserTeamsQuery {
            user_id: alice.id,
            organization_id: Some(acme.id),
            include_expired: true,
        };
        let listed = store.list_user_teams(&user_teams, &PageRequest::default()).await.unwrap();
        let membership = listed.items[0].membership.clone();

        let deleted = store.delete_team(&context(), docs.id, None).await.unwrap();
        let events = events_at(store, &acme, deleted.token.revision).await;

        assert_eq!(events.len(), 5, "{events:#?}");
        let teams = of_kind(&events, EntityKind::Team);
        let removed_team = teams.iter().find(|event| event.entity_key == EntityKey::Team(docs.id)).unwrap();
        assert_eq!(removed_team.before, Some(Entity::Team(docs.clone())));
        assert_eq!(removed_team.after, None);
        let moved_child = teams.iter().find(|event| event.entity_key == EntityKey::Team(child.id)).unwrap();
        assert_eq!(moved_child.before, Some(Entity::Team(child.clone())));
        let Some(Entity::Team(moved)) = &moved_child.after else {
            panic!("the child team has no state after: {moved_child:?}");
        };
        assert_eq!(moved.parent_team_id, None);
        let memberships = of_kind(&events, EntityKind::Membership);
        assert_eq!(memberships.len(), 1);
        assert_eq!(memberships[0].before, Some(Entity::Membership(membership.clone())));
        assert_eq!(memberships[0].after, None);
        let grants = of_kind(&events, EntityKind::Grant);
        assert_eq!(grants.len(), 1);
        assert_eq!(grants[0].before, Some(Entity::Grant(grant.clone())));
        assert_eq!(grants[0].after, None);
        let invitations = of_kind(&events, EntityKind::Invitation);
        assert_eq!(invitations.len(), 1);
        assert_eq!(invitations[0].before, Some(Entity::Invitation(invitation.clone())));
        let stored_invitation = store.get_invitation(invitation.id).await.unwrap();
        assert_eq!(invitations[0].after, Some(Entity::Invitation(stored_invitation)));
        assert!(events.iter().all(|event| event.operation == "delete_team"));
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn member_removal_audits_cascade() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let alice = user(store, "alice").await;
        member(store, &acme, &alice, MemberRole::Collaborator).await;
        let docs = team(store, &acme, "Docs", None, &[&alice]).await;
        let led = store
            .set_team_leaders(
                &context(),
                SetTeamLeaders {
                    team_id: docs.id,
                    leader_user_ids: vec![alice.id],
                    etag: None,
                },
            )
            .await
            .unwrap()
            .value;
        let mailbox = resource(store, &acme, "mail.mailbox", "alice@acme.example", None).await;
        let grant = store
            .grant_access(&context(), grant_spec(mailbox.id, Subject::User(alice.id)))
            .await
            .unwrap()
            .value;
        let before_member = store.get_member(acme.id, alice.id).await.unwrap().member;

        let removed = store.remove_member(&context(), acme.id, alice.id).await.unwrap();
        let events = events_at(store, &acme, removed.token.revision).await;

        assert_eq!(events.len(), 4, "{events:#?}");
        let members = of_kind(&events, EntityKind::Member);
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].before, Some(Entity::Member(before_member)));
        assert_eq!(members[0].after, None);
        assert_eq!(members[0].entity_key, EntityKey::Member {
            organization_id: acme.id,
            user_id: alice.id,
        });
        let teams = of_kind(&events, EntityKind::Team);
        assert_eq!(teams.len(), 1);
        assert_eq!(teams[0].before, Some(Entity::Team(led.clone())));
        let Some(Entity::Team(after)) = &teams[0].after else {
            panic!("the team has no state after: {:?}", teams[0]);
        };
        assert!(after.leader_user_ids.is_empty());
        assert_eq!(of_kind(&events, EntityKind::Membership).len(), 1);
        let grants = of_kind(&events, EntityKind::Grant);
        assert_eq!(grants[0].before, Some(Entity::Grant(grant)));
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn idempotent_replay_records_once() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let alice = user(store, "alice").await;
        let command = NewMember {
            organization_id: acme.id,
            member: MemberSpec {
                user_id: alice.id,
                role: MemberRole::Collaborator,
                status: MemberStatus::Active,
            },
        };

        let first = store.add_member(&idempotent("add-alice", b"one"), command.clone()).await.unwrap();
        let replay = store.add_member(&idempotent("add-alice", b"one"), command).await.unwrap();
        let filter = AuditFilter {
            entity_kind: Some(EntityKind::Member),
            ..AuditFilter::organization(acme.id)
        };
        let events = all_events(store, &filter).await;

        assert_eq!(replay.token, first.token);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].revision, first.token.revision);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn no_op_write_records_nothing() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let before = all_events(store, &AuditFilter::organization(acme.id)).await;

        store
            .update_organization(
                &context(),
                OrganizationUpdate {
                    id: acme.id,
                    display_name: Some(acme.display_name.clone()),
                    settings: None,
                    etag: None,
                },
            )
            .await
            .unwrap();
        let unknown_user = NewMember {
            organization_id: acme.id,
            member: MemberSpec {
                user_id: workteams_domain::UserId::generate(),
                role: MemberRole::Collaborator,
                status: MemberStatus::Active,
            },
        };
        let failed = store.add_member(&context(), unknown_user).await;
        assert!(failed.is_err());
        let after = all_events(store, &AuditFilter::organization(acme.id)).await;

        assert_eq!(after, before);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn events_filtered_by_fields() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let alice = user(store, "alice").await;
        store
            .add_member(
                &actor("admin-1"),
                NewMember {
                    organization_id: acme.id,
                    member: MemberSpec {
                        user_id: alice.id,
                        role: MemberRole::Collaborator,
                        status: MemberStatus::Active,
                    },
                },
            )
            .await
            .unwrap();
        let docs = team(store, &acme, "Docs", None, &[&alice]).await;
        let other_method = RequestContext {
            method: Some("/workteams.directory.v1.DirectoryService/UpdateTeam".to_owned()),
            ..context()
        };
        let renamed = store
            .update_team(
                &other_method,
                TeamUpdate {
                    id: docs.id,
                    name: Some("Documentation".to_owned()),
                    description: None,
                    color: None,
                    etag: None,
                },
            )
            .await
            .unwrap();
        let everything = all_events(store, &AuditFilter::organization(acme.id)).await;
        let filtered = |change: fn(&mut AuditFilter)| {
            let mut filter = AuditFilter::organization(acme.id);
            change(&mut filter);
            filter
        };

        let by_actor = all_events(store, &filtered(|filter| filter.actor = Some("admin-1".to_owned()))).await;
        let by_kind = all_events(store, &filtered(|filter| filter.entity_kind = Some(EntityKind::Team))).await;
        let by_method = all_events(
            store,
            &filtered(|filter| filter.method = Some("/workteams.directory.v1.DirectoryService/UpdateTeam".to_owned())),
        )
        .await;
        let team_filter = AuditFilter {
            entity_id: Some(docs.id.to_string()),
            ..AuditFilter::organization(acme.id)
        };
        let by_team_id = all_events(store, &team_filter).await;
        let membership_key = EntityKey::Membership {
            team_id: docs.id,
            user_id: alice.id,
        };
        let membership_filter = AuditFilter {
            entity_kind: Some(EntityKind::Membership),
            entity_id: Some(audit_entity_id(&membership_key)),
            ..AuditFilter::organization(acme.id)
        };
        let by_membership = all_events(store, &membership_filter).await;
        let rename_time = everything[0].time;
        let since_rename = AuditFilter {
            start_time: Some(rename_time),
            ..AuditFilter::organization(acme.id)
        };
        let until_rename = AuditFilter {
            end_time: Some(rename_time),
            ..AuditFilter::organization(acme.id)
        };
        let after_rename = all_events(store, &since_rename).await;
        let before_rename = all_events(store, &until_rename).await;

        assert_eq!(everything.len(), 5);
        assert_eq!(everything[0].revision, renamed.token.revision);
        assert_eq!(by_actor.len(), 1);
        assert_eq!(by_actor[0].entity_kind, EntityKind::Member);
        assert_eq!(by_kind.len(), 2);
        assert!(by_kind.iter().all(|event| event.entity_key == EntityKey::Team(docs.id)));
        assert_eq!(by_method.len(), 1);
        assert_eq!(by_method[0].revision, renamed.token.revision);
        assert_eq!(by_team_id.len(), 2);
        assert_eq!(by_membership.len(), 1);
        assert_eq!(by_membership[0].entity_key, membership_key);
        assert_eq!(after_rename.len(), 1);
        assert_eq!(before_rename.len(), 4);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn events_paged_both_orders() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        for index in 0..6 {
            team(store, &acme, &format!("Team {index}"), None, &[]).await;
        }
        let oldest_first = AuditFilter {
            order: AuditOrder::OldestFirst,
            ..AuditFilter::organization(acme.id)
        };

        let newest = all_events(store, &AuditFilter::organization(acme.id)).await;
        let mut oldest = all_events(store, &oldest_first).await;
        let first_page = store
            .list_audit_events(&AuditFilter::organization(acme.id), &PageRequest::first(3))
            .await
            .unwrap();
        let mixed = store
            .list_audit_events(
                &oldest_first,
                &PageRequest {
                    page_size: 3,
                    page_token: first_page.next_page_token.clone().unwrap(),
                },
            )
            .await
            .unwrap_err();

        assert_eq!(newest.len(), 7);
        let keys: std::collections::HashSet<_> = newest.iter().map(|event| (event.revision, event.position)).collect();
        assert_eq!(keys.len(), 7);
        assert!(newest.windows(2).all(|pair| pair[0].revision > pair[1].revision));
        oldest.reverse();
        assert_eq!(oldest, newest);
        assert_eq!(first_page.items.len(), 3);
        assert_eq!(field_of(&mixed), "page_token");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn end_before_start_rejected() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let filter = AuditFilter {
            start_time: Some(acme.create_time),
            end_time: Some(acme.create_time),
            ..AuditFilter::organization(acme.id)
        };

        let error = store.list_audit_events(&filter, &PageRequest::default()).await.unwrap_err();

        assert_eq!(field_of(&error), "end_time");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn other_organization_events_hidden() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let globex = organization(store, "Globex").await;
        team(store, &globex, "Sales", None, &[]).await;

        let events = all_events(store, &AuditFilter::organization(acme.id)).await;
        let unknown = store
            .list_audit_events(
                &AuditFilter::organization(workteams_domain::OrganizationId::generate()),
                &PageRequest::default(),
            )
            .await
            .unwrap_err();

        assert_eq!(events.len(), 1);
        assert!(events.iter().all(|event| event.organization_id == Some(acme.id)));
        assert!(matches!(unknown, StoreError::NotFound { ref field, .. } if field == "organization_id"), "{unknown:?}");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn invited_user_listed_under_organization() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let invitation = store
            .create_invitation(
                &context(),
                NewInvitation {
                    organization_id: acme.id,
                    email: "guest@example.com".to_owned(),
                    team_ids: Vec::new(),
                    expire_time: None,
                    invited_by: None,
                },
            )
            .await
            .unwrap()
            .value;
        let lone_user = user(store, "loner").await;

        let accepted = store
            .accept_invitation(
                &context(),
                AcceptInvitation {
                    id: invitation.id,
                    login: Some("guest".to_owned()),
                    display_name: String::new(),
                },
            )
            .await
            .unwrap();
        let filter = AuditFilter {
            entity_kind: Some(EntityKind::User),
            ..AuditFilter::organization(acme.id)
        };
        let users = all_events(store, &filter).await;

        assert_eq!(users.len(), 1);
        assert_eq!(users[0].after, Some(Entity::User(accepted.value.member.user.clone())));
        assert_eq!(users[0].organization_id, Some(acme.id));
        assert!(users.iter().all(|event| event.entity_key != EntityKey::User(lone_user.id)));
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn audit_outlives_change_log_purge() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        team(store, &acme, "Docs", None, &[]).await;
        let before = all_events(store, &AuditFilter::organization(acme.id)).await;

        store
            .purge_change_log(RetentionPolicy {
                keep_for: None,
                keep_revisions: Some(0),
            })
            .await
            .unwrap();
        let after_log_purge = all_events(store, &AuditFilter::organization(acme.id)).await;
        let deleted = store.purge_audit_events(std::time::Duration::ZERO).await.unwrap();
        let after_audit_purge = all_events(store, &AuditFilter::organization(acme.id)).await;

        assert_eq!(after_log_purge, before);
        assert!(deleted >= 2, "deleted {deleted}");
        assert!(after_audit_purge.is_empty());
        fixture.cleanup().await;
    }
}
