//! Teams, team memberships and the cascades of removals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chrono::{Duration, Utc};
use common::{changes_since, context, field_of, fixtures, member, organization, resource, team, user};
use workteams_domain::command::{
    AddTeamMembers, Etag, MAX_TEAM_DEPTH, NewTeam, NewTeamGrant, NewTeamMember, RemoveTeamMembers, SetTeamLeaders, SetTeamParent,
    TeamUpdate,
};
use workteams_domain::{Change, Entity, EntityKey, GrantKey, MemberRole, Subject};
use workteams_storage::{PageRequest, StoreError, TeamFilter, TeamMembersQuery, UserTeamsQuery};

#[tokio::test]
async fn team_created_with_members_leaders_grants() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let ada = user(store, "ada").await;
        member(store, &acme, &ada, MemberRole::Collaborator).await;
        let folder = resource(store, &acme, "kdrive.folder", "42", None).await;

        let written = store
            .create_team(
                &context(),
                NewTeam {
                    organization_id: acme.id,
                    name: "SIG Docs".to_owned(),
                    description: "Documentation".to_owned(),
                    color: "#1a73e8".to_owned(),
                    parent_team_id: None,
                    members: vec![NewTeamMember {
                        user_id: ada.id,
                        expire_time: None,
                    }],
                    leader_user_ids: vec![ada.id],
                    grants: vec![NewTeamGrant {
                        resource_id: folder.id,
                        permissions: vec!["modify".to_owned()],
                        expire_time: None,
                    }],
                    added_by: Some(ada.id),
                },
            )
            .await
            .unwrap();
        let team = written.value;
        let batch = store
            .changes_after(store.token(workteams_domain::Revision(written.token.revision.0 - 1)), None, 10)
            .await
            .unwrap();

        assert_eq!(team.leader_user_ids, vec![ada.id]);
        assert_eq!(store.get_team(team.id).await.unwrap(), team);
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].changes.len(), 3);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn team_member_must_be_org_member() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let outsider = user(store, "eve").await;
        let docs = team(store, &acme, "Docs", None, &[]).await;

        let error = store
            .add_team_members(
                &context(),
                AddTeamMembers {
                    team_id: docs.id,
                    members: vec![NewTeamMember {
                        user_id: outsider.id,
                        expire_time: None,
                    }],
                    added_by: None,
                },
            )
            .await
            .unwrap_err();

        assert!(matches!(error, StoreError::FailedPrecondition { .. }), "{error:?}");
        assert_eq!(field_of(&error), "members[0].user_id");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn team_name_unique_ignoring_case() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let other = organization(store, "Other").await;
        team(store, &acme, "SIG Docs", None, &[]).await;
        let docs = team(store, &other, "sig docs", None, &[]).await;
        let renamed = team(store, &acme, "Ops", None, &[]).await;

        let update = store
            .update_team(
                &context(),
                TeamUpdate {
                    id: renamed.id,
                    name: Some("sig DOCS".to_owned()),
                    description: None,
                    color: None,
                    etag: None,
                },
            )
            .await
            .unwrap_err();

        assert_eq!(docs.name, "sig docs");
        assert_eq!(field_of(&update), "name");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn team_update_bumps_version() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let docs = team(store, &acme, "Docs", None, &[]).await;

        let updated = store
            .update_team(
                &context(),
                TeamUpdate {
                    id: docs.id,
                    name: None,
                    description: Some("Writers".to_owned()),
                    color: Some("#abc".to_owned()),
                    etag: Some(Etag(docs.version)),
                },
            )
            .await
            .unwrap()
            .value;

        assert_eq!(updated.description, "Writers");
        assert_eq!(updated.color, "#abc");
        assert_eq!(updated.version, docs.version + 1);
        assert_eq!(store.get_team(docs.id).await.unwrap(), updated);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn stale_team_etag_aborts() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let docs = team(store, &acme, "Docs", None, &[]).await;
        let update = |description: &str| TeamUpdate {
            id: docs.id,
            name: None,
            description: Some(description.to_owned()),
            color: None,
            etag: Some(Etag(docs.version)),
        };

        store.update_team(&context(), update("first")).await.unwrap();
        let stale = store.update_team(&context(), update("second")).await.unwrap_err();

        assert!(matches!(stale, StoreError::Aborted { .. }), "{stale:?}");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn leaders_must_be_members() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let ada = user(store, "ada").await;
        let grace = user(store, "grace").await;
        member(store, &acme, &ada, MemberRole::Collaborator).await;
        member(store, &acme, &grace, MemberRole::Collaborator).await;
        let docs = team(store, &acme, "Docs", None, &[&ada]).await;
        let set = |leaders| SetTeamLeaders {
            team_id: docs.id,
            leader_user_ids: leaders,
            etag: None,
        };

        let error = store.set_team_leaders(&context(), set(vec![ada.id, grace.id])).await.unwrap_err();
        let led = store.set_team_leaders(&context(), set(vec![ada.id])).await.unwrap();

        assert_eq!(field_of(&error), "leader_user_ids[1]");
        assert_eq!(led.value.leader_user_ids, vec![ada.id]);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn parent_cycle_rejected() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let root = team(store, &acme, "Root", None, &[]).await;
        let child = team(store, &acme, "Child", Some(root.id), &[]).await;
        let grandchild = team(store, &acme, "Grandchild", Some(child.id), &[]).await;
        let move_root = |parent| SetTeamParent {
            team_id: root.id,
            parent_team_id: Some(parent),
            etag: None,
        };

        let cycle = store.set_team_parent(&context(), move_root(grandchild.id)).await.unwrap_err();
        let own = store.set_team_parent(&context(), move_root(root.id)).await.unwrap_err();

        assert!(matches!(cycle, StoreError::FailedPrecondition { .. }), "{cycle:?}");
        assert_eq!(field_of(&own), "parent_team_id");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn nesting_depth_limited() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let mut chain = vec![team(store, &acme, "Level 1", None, &[]).await];
        for level in 2..=MAX_TEAM_DEPTH {
            let parent = chain.last().map(|team| team.id);
            chain.push(team(store, &acme, &format!("Level {level}"), parent, &[]).await);
        }
        let deepest = chain.last().unwrap().id;
        let mut too_deep = NewTeam {
            organization_id: acme.id,
            name: "Too deep".to_owned(),
            description: String::new(),
            color: String::new(),
            parent_team_id: Some(deepest),
            members: Vec::new(),
            leader_user_ids: Vec::new(),
            grants: Vec::new(),
            added_by: None,
        };

        let created = store.create_team(&context(), too_deep.clone()).await.unwrap_err();
        assert_eq!(field_of(&created), "parent_team_id");
        assert!(created.to_string().contains(&format!("maximum is {MAX_TEAM_DEPTH}")), "{created}");

        // A two-level subtree fits one level higher than a single team does.
        let moved = team(store, &acme, "Moved", None, &[]).await;
        team(store, &acme, "Moved child", Some(moved.id), &[]).await;
        let move_under = |parent: &workteams_domain::Team| SetTeamParent {
            team_id: moved.id,
            parent_team_id: Some(parent.id),
            etag: None,
        };
        let moved_too_deep = store
            .set_team_parent(&context(), move_under(&chain[MAX_TEAM_DEPTH - 2]))
            .await
            .unwrap_err();
        assert_eq!(field_of(&moved_too_deep), "parent_team_id");
        store
            .set_team_parent(&context(), move_under(&chain[MAX_TEAM_DEPTH - 3]))
            .await
            .unwrap();

        too_deep.parent_team_id = Some(chain[MAX_TEAM_DEPTH - 2].id);
        store.create_team(&context(), too_deep).await.unwrap();
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn parent_in_other_org_rejected() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let other = organization(store, "Other").await;
        let docs = team(store, &acme, "Docs", None, &[]).await;
        let foreign = team(store, &other, "Foreign", None, &[]).await;

        let error = store
            .set_team_parent(
                &context(),
                SetTeamParent {
                    team_id: docs.id,
                    parent_team_id: Some(foreign.id),
                    etag: None,
                },
            )
            .await
            .unwrap_err();

        assert!(matches!(error, StoreError::FailedPrecondition { .. }), "{error:?}");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn team_delete_cascades_in_change_log() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let ada = user(store, "ada").await;
        member(store, &acme, &ada, MemberRole::Collaborator).await;
        let root = team(store, &acme, "Root", None, &[]).await;
        let docs = team(store, &acme, "Docs", Some(root.id), &[&ada]).await;
        let child = team(store, &acme, "Child", Some(docs.id), &[]).await;
        let folder = resource(store, &acme, "kdrive.folder", "42", None).await;
        store
            .grant_access(
                &context(),
                workteams_domain::command::GrantSpec {
                    resource_id: folder.id,
                    subject: Subject::Team(docs.id),
                    permissions: vec!["view".to_owned()],
                    no_access: false,
                    expire_time: None,
                    granted_by: None,
                },
            )
            .await
            .unwrap();
        let before = store.current_token().await.unwrap();

        store.delete_team(&context(), docs.id, Some(Etag(docs.version))).await.unwrap();
        let changes = changes_since(store, before).await;
        let moved = store.get_team(child.id).await.unwrap();

        assert_eq!(moved.parent_team_id, Some(root.id));
        assert!(changes.contains(&Change::Upserted(Entity::Team(moved.clone()))));
        assert!(changes.contains(&Change::Deleted {
            key: EntityKey::Membership {
                team_id: docs.id,
                user_id: ada.id
            },
            organization_id: Some(acme.id),
        }));
        assert!(changes.contains(&Change::Deleted {
            key: EntityKey::Grant(GrantKey {
                resource_id: folder.id,
                subject: Subject::Team(docs.id)
            }),
            organization_id: Some(acme.id),
        }));
        assert!(changes.contains(&Change::Deleted {
            key: EntityKey::Team(docs.id),
            organization_id: Some(acme.id),
        }));
        assert_eq!(changes.len(), 4);
        assert!(store.get_team(docs.id).await.is_err());
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn member_removal_cascades_in_change_log() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let ada = user(store, "ada").await;
        member(store, &acme, &ada, MemberRole::Collaborator).await;
        let docs = team(store, &acme, "Docs", None, &[&ada]).await;
        let docs = store
            .set_team_leaders(
                &context(),
                SetTeamLeaders {
                    team_id: docs.id,
                    leader_user_ids: vec![ada.id],
                    etag: None,
                },
            )
            .await
            .unwrap()
            .value;
        let mailbox = resource(store, &acme, "mail.mailbox", "ada@acme.test", None).await;
        store
            .grant_access(
                &context(),
                workteams_domain::command::GrantSpec {
                    resource_id: mailbox.id,
                    subject: Subject::User(ada.id),
                    permissions: vec!["read".to_owned()],
                    no_access: false,
                    expire_time: None,
                    granted_by: None,
                },
            )
            .await
            .unwrap();
        let before = store.current_token().await.unwrap();

        store.remove_member(&context(), acme.id, ada.id).await.unwrap();
        let changes = changes_since(store, before).await;
        let team_after = store.get_team(docs.id).await.unwrap();

        assert!(team_after.leader_user_ids.is_empty());
        assert!(changes.contains(&Change::Upserted(Entity::Team(team_after.clone()))));
        assert!(changes.contains(&Change::Deleted {
            key: EntityKey::Membership {
                team_id: docs.id,
                user_id: ada.id
            },
            organization_id: Some(acme.id),
        }));
        assert!(changes.contains(&Change::Deleted {
            key: EntityKey::Grant(GrantKey {
                resource_id: mailbox.id,
                subject: Subject::User(ada.id)
            }),
            organization_id: Some(acme.id),
        }));
        assert!(changes.contains(&Change::Deleted {
            key: EntityKey::Member {
                organization_id: acme.id,
                user_id: ada.id
            },
            organization_id: Some(acme.id),
        }));
        assert_eq!(changes.len(), 4);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn readding_member_updates_expiry() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let ada = user(store, "ada").await;
        member(store, &acme, &ada, MemberRole::Collaborator).await;
        let docs = team(store, &acme, "Docs", None, &[&ada]).await;
        let expiry = Utc::now() + Duration::days(3);

        let written = store
            .add_team_members(
                &context(),
                AddTeamMembers {
                    team_id: docs.id,
                    members: vec![NewTeamMember {
                        user_id: ada.id,
                        expire_time: Some(expiry),
                    }],
                    added_by: None,
                },
            )
            .await
            .unwrap();

        assert_eq!(written.value[0].expire_time.map(|time| time.timestamp_micros()), Some(expiry.timestamp_micros()));
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn removing_leader_membership_removes_leadership() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let ada = user(store, "ada").await;
        let grace = user(store, "grace").await;
        member(store, &acme, &ada, MemberRole::Collaborator).await;
        let docs = team(store, &acme, "Docs", None, &[&ada]).await;
        store
            .set_team_leaders(
                &context(),
                SetTeamLeaders {
                    team_id: docs.id,
                    leader_user_ids: vec![ada.id],
                    etag: None,
                },
            )
            .await
            .unwrap();

        store
            .remove_team_members(
                &context(),
                RemoveTeamMembers {
                    team_id: docs.id,
                    user_ids: vec![ada.id, grace.id],
                },
            )
            .await
            .unwrap();
        let after = store.get_team(docs.id).await.unwrap();
        let members = store
            .list_team_members(
                &TeamMembersQuery {
                    team_id: docs.id,
                    include_descendants: false,
                    include_expired: true,
                },
                &PageRequest::default(),
            )
            .await
            .unwrap();

        assert!(after.leader_user_ids.is_empty());
        assert!(members.items.is_empty());
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn team_members_include_descendants_and_expired() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let ada = user(store, "ada").await;
        let grace = user(store, "grace").await;
        let linus = user(store, "linus").await;
        for person in [&ada, &grace, &linus] {
            member(store, &acme, person, MemberRole::Collaborator).await;
        }
        let root = team(store, &acme, "Root", None, &[&ada]).await;
        let child = team(store, &acme, "Child", Some(root.id), &[&grace]).await;
        store
            .add_team_members(
                &context(),
                AddTeamMembers {
                    team_id: child.id,
                    members: vec![NewTeamMember {
                        user_id: linus.id,
                        expire_time: Some(Utc::now() - Duration::hours(1)),
                    }],
                    added_by: None,
                },
            )
            .await
            .unwrap();
        let query = |include_descendants, include_expired| TeamMembersQuery {
            team_id: root.id,
            include_descendants,
            include_expired,
        };

        let direct = store.list_team_members(&query(false, false), &PageRequest::default()).await.unwrap();
        let nested = store.list_team_members(&query(true, false), &PageRequest::default()).await.unwrap();
        let everything = store.list_team_members(&query(true, true), &PageRequest::default()).await.unwrap();

        assert_eq!(direct.items.len(), 1);
        assert_eq!(nested.items.len(), 2);
        assert_eq!(everything.items.len(), 3);
        let via_grace = nested.items.iter().find(|entry| entry.user.id == grace.id).unwrap();
        assert_eq!(via_grace.via_team_id, Some(child.id));
        assert_eq!(direct.items[0].via_team_id, None);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn user_teams_listed_with_filters() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let other = organization(store, "Other").await;
        let ada = user(store, "ada").await;
        member(store, &acme, &ada, MemberRole::Collaborator).await;
        member(store, &other, &ada, MemberRole::External).await;
        let docs = team(store, &acme, "Docs", None, &[&ada]).await;
        team(store, &other, "Guests", None, &[&ada]).await;

        let all = store
            .list_user_teams(
                &UserTeamsQuery {
                    user_id: ada.id,
                    organization_id: None,
                    include_expired: false,
                },
                &PageRequest::default(),
            )
            .await
            .unwrap();
        let in_acme = store
            .list_user_teams(
                &UserTeamsQuery {
                    user_id: ada.id,
                    organization_id: Some(acme.id),
                    include_expired: false,
                },
                &PageRequest::default(),
            )
            .await
            .unwrap();

        assert_eq!(all.items.len(), 2);
        assert_eq!(in_acme.items.len(), 1);
        assert_eq!(in_acme.items[0].team.id, docs.id);
        assert_eq!(in_acme.items[0].membership.user_id, ada.id);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn teams_listed_by_parent() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        let root = team(store, &acme, "Root", None, &[]).await;
        let child = team(store, &acme, "Child", Some(root.id), &[]).await;
        team(store, &acme, "Other", None, &[]).await;

        let all = store
            .list_teams(
                &TeamFilter {
                    organization_id: acme.id,
                    parent_team_id: None,
                },
                &PageRequest::default(),
            )
            .await
            .unwrap();
        let children = store
            .list_teams(
                &TeamFilter {
                    organization_id: acme.id,
                    parent_team_id: Some(root.id),
                },
                &PageRequest::default(),
            )
            .await
            .unwrap();

        assert_eq!(all.items.len(), 3);
        assert_eq!(children.items, vec![child]);
        fixture.cleanup().await;
    }
}
