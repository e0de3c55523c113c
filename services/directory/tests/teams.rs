//! Teams, nesting, leaders and memberships through the gRPC API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use tonic::Code;
use workteams_proto::directory::v1 as proto;

#[tokio::test]
async fn team_created_with_members_leaders_grants() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("docs")).await;
        let leader = create_member(client, &organization.id, &unique("leader")).await;
        let member = create_member(client, &organization.id, &unique("member")).await;
        let folder = create_resource(
            client,
            &organization.id,
            new_resource("kdrive.folder", "root"),
        )
        .await;

        let response = client
            .create_team(as_actor(
                proto::CreateTeamRequest {
                    organization_id: organization.id.clone(),
                    name: "SIG/Docs".to_owned(),
                    description: "Writes the docs.\nAll of them.".to_owned(),
                    color: "#1a73e8".to_owned(),
                    parent_team_id: String::new(),
                    members: vec![
                        proto::NewTeamMember {
                            user_id: leader.id.clone(),
                            expire_time: None,
                        },
                        proto::NewTeamMember {
                            user_id: member.id.clone(),
                            expire_time: timestamp_in(Duration::from_secs(3_600)),
                        },
                    ],
                    leader_user_ids: vec![leader.id.clone()],
                    grants: vec![proto::NewTeamGrant {
                        resource_id: folder.id.clone(),
                        permissions: vec!["modify".to_owned()],
                        expire_time: None,
                    }],
                    idempotency_key: String::new(),
                },
                &leader.id,
            ))
            .await
            .unwrap()
            .into_inner();
        let team = response.team.unwrap();
        assert_eq!(team.name, "SIG/Docs");
        assert_eq!(team.leader_user_ids, vec![leader.id.clone()]);

        let memberships = client
            .list_team_members(proto::ListTeamMembersRequest {
                team_id: team.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .memberships;
        assert_eq!(memberships.len(), 2);
        assert!(
            memberships
                .iter()
                .all(|membership| membership.user.is_some())
        );
        assert!(
            memberships
                .iter()
                .all(|membership| membership.added_by_user_id == leader.id)
        );

        let grants = client
            .list_grants(proto::ListGrantsRequest {
                organization_id: organization.id.clone(),
                subject: team_subject(&team.id),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .grants;
        assert_eq!(grants.len(), 1);
        assert_eq!(grants[0].permissions, vec!["modify".to_owned()]);
    })
    .await;
}

#[tokio::test]
async fn team_field_rules() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("rules")).await;
        let request = |name: &str, color: &str| proto::CreateTeamRequest {
            organization_id: organization.id.clone(),
            name: name.to_owned(),
            color: color.to_owned(),
            ..Default::default()
        };

        for name in [String::new(), "t".repeat(101), "tab\there".to_owned()] {
            let status = client.create_team(request(&name, "")).await.unwrap_err();
            assert_invalid(&status, "name");
        }
        let color = client
            .create_team(request("colorful", "blue"))
            .await
            .unwrap_err();
        assert_invalid(&color, "color");

        let description = client
            .create_team(proto::CreateTeamRequest {
                description: "d".repeat(2_001),
                ..request("described", "")
            })
            .await
            .unwrap_err();
        assert_invalid(&description, "description");
    })
    .await;
}

#[tokio::test]
async fn team_name_unique_ignoring_case() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("names")).await;
        let other = create_organization(client, &unique("names")).await;
        create_team(client, &organization.id, "Platform").await;

        let status = client
            .create_team(proto::CreateTeamRequest {
                organization_id: organization.id.clone(),
                name: "PLATFORM".to_owned(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_code_on_field(&status, Code::AlreadyExists, "name");

        create_team(client, &other.id, "platform").await;
    })
    .await;
}

#[tokio::test]
async fn team_leader_must_be_member() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("leaders")).await;
        let outsider = create_member(client, &organization.id, &unique("outsider")).await;

        let unlisted = client
            .create_team(proto::CreateTeamRequest {
                organization_id: organization.id.clone(),
                name: "Leaderless".to_owned(),
                leader_user_ids: vec![outsider.id.clone()],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_invalid(&unlisted, "leader_user_ids[0]");

        let team = create_team(client, &organization.id, "Led").await;
        let status = client
            .set_team_leaders(proto::SetTeamLeadersRequest {
                team_id: team.id.clone(),
                leader_user_ids: vec![outsider.id.clone()],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_precondition(&status, "leader_user_ids[0]");

        add_team_member(client, &team.id, &outsider.id).await;
        let led = client
            .set_team_leaders(proto::SetTeamLeadersRequest {
                team_id: team.id.clone(),
                leader_user_ids: vec![outsider.id.clone()],
                etag: team.etag.clone(),
                idempotency_key: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .team
            .unwrap();
        assert_eq!(led.leader_user_ids, vec![outsider.id]);
    })
    .await;
}

#[tokio::test]
async fn team_update_and_delete() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("updates")).await;
        let team = create_team(client, &organization.id, "Before").await;

        let updated = client
            .update_team(proto::UpdateTeamRequest {
                id: team.id.clone(),
                update_mask: field_mask(&["name", "color"]),
                name: "After".to_owned(),
                color: "#abc".to_owned(),
                description: "not in the mask".to_owned(),
                etag: team.etag.clone(),
                idempotency_key: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .team
            .unwrap();
        assert_eq!(updated.name, "After");
        assert_eq!(updated.color, "#abc");
        assert_eq!(updated.description, "");

        let bad_path = client
            .update_team(proto::UpdateTeamRequest {
                id: team.id.clone(),
                update_mask: field_mask(&["parent_team_id"]),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_invalid(&bad_path, "update_mask.paths[0]");

        let stale = client
            .delete_team(proto::DeleteTeamRequest {
                id: team.id.clone(),
                etag: team.etag.clone(),
                idempotency_key: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(stale.code(), Code::Aborted);

        client
            .delete_team(proto::DeleteTeamRequest {
                id: team.id.clone(),
                etag: updated.etag.clone(),
                idempotency_key: String::new(),
            })
            .await
            .unwrap();
        let gone = client
            .get_team(proto::GetTeamRequest {
                id: team.id.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(gone.code(), Code::NotFound);
    })
    .await;
}

#[tokio::test]
async fn nested_team_cycle_rejected() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("nesting")).await;
        let root = create_team(client, &organization.id, "Root").await;
        let child = create_team_under(client, &organization.id, "Child", &root.id).await;
        let grandchild = create_team_under(client, &organization.id, "Grandchild", &child.id).await;

        let cycle = client
            .set_team_parent(proto::SetTeamParentRequest {
                team_id: root.id.clone(),
                parent_team_id: grandchild.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_precondition(&cycle, "parent_team_id");

        let own_parent = client
            .set_team_parent(proto::SetTeamParentRequest {
                team_id: root.id.clone(),
                parent_team_id: root.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(own_parent.code(), Code::FailedPrecondition);

        let children = client
            .list_teams(proto::ListTeamsRequest {
                organization_id: organization.id.clone(),
                parent_team_id: child.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .teams;
        assert_eq!(children.len(), 1);
        assert_eq!(children[0].id, grandchild.id);

        let moved = client
            .set_team_parent(proto::SetTeamParentRequest {
                team_id: grandchild.id.clone(),
                parent_team_id: String::new(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .team
            .unwrap();
        assert_eq!(moved.parent_team_id, "");
    })
    .await;
}

#[tokio::test]
async fn deleted_team_children_move_up() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("reparent")).await;
        let root = create_team(client, &organization.id, "Root").await;
        let middle = create_team_under(client, &organization.id, "Middle", &root.id).await;
        let leaf = create_team_under(client, &organization.id, "Leaf", &middle.id).await;

        client
            .delete_team(proto::DeleteTeamRequest {
                id: middle.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        let leaf = client
            .get_team(proto::GetTeamRequest {
                id: leaf.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .team
            .unwrap();
        assert_eq!(leaf.parent_team_id, root.id);
    })
    .await;
}

#[tokio::test]
async fn other_organization_ids_rejected() {
    each_backend(async |server| {
        let client = &mut server.client;
        let home = create_organization(client, &unique("home")).await;
        let away = create_organization(client, &unique("away")).await;
        let away_team = create_team(client, &away.id, "Away").await;
        let away_folder =
            create_resource(client, &away.id, new_resource("kdrive.folder", "away")).await;

        let parent = client
            .create_team(proto::CreateTeamRequest {
                organization_id: home.id.clone(),
                name: "Child".to_owned(),
                parent_team_id: away_team.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_precondition(&parent, "parent_team_id");

        let grant = client
            .create_team(proto::CreateTeamRequest {
                organization_id: home.id.clone(),
                name: "Granted".to_owned(),
                grants: vec![proto::NewTeamGrant {
                    resource_id: away_folder.id.clone(),
                    permissions: vec!["view".to_owned()],
                    expire_time: None,
                }],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_precondition(&grant, "grants[0].resource_id");

        let home_team = create_team(client, &home.id, "Home").await;
        let home_folder =
            create_resource(client, &home.id, new_resource("kdrive.folder", "home")).await;
        let batch = client
            .batch_set_grants(proto::BatchSetGrantsRequest {
                organization_id: home.id.clone(),
                changes: vec![
                    proto::GrantChange {
                        resource_id: home_folder.id.clone(),
                        subject: team_subject(&home_team.id),
                        permissions: vec!["view".to_owned()],
                        ..Default::default()
                    },
                    proto::GrantChange {
                        resource_id: home_folder.id.clone(),
                        subject: team_subject(&away_team.id),
                        permissions: vec!["view".to_owned()],
                        ..Default::default()
                    },
                ],
                idempotency_key: String::new(),
            })
            .await
            .unwrap_err();
        assert_precondition(&batch, "changes[1].subject.team_id");
    })
    .await;
}

#[tokio::test]
async fn team_member_must_be_organization_member() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("strangers")).await;
        let team = create_team(client, &organization.id, "Team").await;
        let stranger = create_user(client, &unique("stranger")).await;

        let status = client
            .add_team_members(proto::AddTeamMembersRequest {
                team_id: team.id.clone(),
                members: vec![proto::NewTeamMember {
                    user_id: stranger.id.clone(),
                    expire_time: None,
                }],
                idempotency_key: String::new(),
            })
            .await
            .unwrap_err();
        assert_precondition(&status, "members[0].user_id");
    })
    .await;
}

#[tokio::test]
async fn team_membership_limits() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("bulk")).await;
        let team = create_team(client, &organization.id, "Bulk").await;
        let head = head_revision(client).await;

        let add = client
            .add_team_members(proto::AddTeamMembersRequest {
                team_id: team.id.clone(),
                members: (0..1_001)
                    .map(|_| proto::NewTeamMember {
                        user_id: uuid::Uuid::now_v7().to_string(),
                        expire_time: None,
                    })
                    .collect(),
                idempotency_key: String::new(),
            })
            .await
            .unwrap_err();
        assert_invalid(&add, "members");

        let remove = client
            .remove_team_members(proto::RemoveTeamMembersRequest {
                team_id: team.id.clone(),
                user_ids: (0..1_001)
                    .map(|_| uuid::Uuid::now_v7().to_string())
                    .collect(),
                idempotency_key: String::new(),
            })
            .await
            .unwrap_err();
        assert_invalid(&remove, "user_ids");

        let past = client
            .add_team_members(proto::AddTeamMembersRequest {
                team_id: team.id.clone(),
                members: vec![proto::NewTeamMember {
                    user_id: uuid::Uuid::now_v7().to_string(),
                    expire_time: Some(prost_types::Timestamp {
                        seconds: 1,
                        nanos: 0,
                    }),
                }],
                idempotency_key: String::new(),
            })
            .await
            .unwrap_err();
        assert_invalid(&past, "members[0].expire_time");

        assert_eq!(head_revision(client).await, head, "nothing was written");
    })
    .await;
}

#[tokio::test]
async fn team_members_add_remove() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("churn")).await;
        let team = create_team(client, &organization.id, "Churn").await;
        let first = create_member(client, &organization.id, &unique("first")).await;
        let second = create_member(client, &organization.id, &unique("second")).await;

        let added = client
            .add_team_members(proto::AddTeamMembersRequest {
                team_id: team.id.clone(),
                members: vec![
                    proto::NewTeamMember {
                        user_id: first.id.clone(),
                        expire_time: None,
                    },
                    proto::NewTeamMember {
                        user_id: second.id.clone(),
                        expire_time: None,
                    },
                ],
                idempotency_key: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .memberships;
        assert_eq!(added.len(), 2);

        client
            .remove_team_members(proto::RemoveTeamMembersRequest {
                team_id: team.id.clone(),
                user_ids: vec![first.id.clone(), uuid::Uuid::now_v7().to_string()],
                idempotency_key: String::new(),
            })
            .await
            .unwrap();
        let remaining = client
            .list_team_members(proto::ListTeamMembersRequest {
                team_id: team.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .memberships;
        assert_eq!(remaining.len(), 1);
        assert_eq!(remaining[0].user_id, second.id);

        let user_teams = client
            .list_user_teams(proto::ListUserTeamsRequest {
                user_id: second.id.clone(),
                organization_id: organization.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(user_teams.teams.len(), 1);
        assert_eq!(user_teams.teams[0].id, team.id);
        assert_eq!(user_teams.memberships[0].team_id, team.id);
    })
    .await;
}

#[tokio::test]
async fn members_listed_with_descendants() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("tree")).await;
        let root = create_team(client, &organization.id, "Engineering").await;
        let child =
            create_team_under(client, &organization.id, "Engineering/Backend", &root.id).await;
        let grandchild = create_team_under(
            client,
            &organization.id,
            "Engineering/Backend/DB",
            &child.id,
        )
        .await;
        let direct = create_member(client, &organization.id, &unique("direct")).await;
        let nested = create_member(client, &organization.id, &unique("nested")).await;
        let deep = create_member(client, &organization.id, &unique("deep")).await;
        add_team_member(client, &root.id, &direct.id).await;
        add_team_member(client, &child.id, &nested.id).await;
        add_team_member(client, &grandchild.id, &deep.id).await;

        let direct_only = client
            .list_team_members(proto::ListTeamMembersRequest {
                team_id: root.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .memberships;
        assert_eq!(direct_only.len(), 1);

        let everyone = client
            .list_team_members(proto::ListTeamMembersRequest {
                team_id: root.id.clone(),
                include_descendants: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .memberships;
        assert_eq!(everyone.len(), 3);
        let via = |user_id: &str| {
            everyone
                .iter()
                .find(|membership| membership.user_id == user_id)
                .map(|membership| membership.via_team_id.clone())
                .unwrap()
        };
        assert_eq!(via(&direct.id), "");
        assert_eq!(via(&nested.id), child.id);
        assert_eq!(via(&deep.id), grandchild.id);
    })
    .await;
}

#[tokio::test]
async fn expired_membership_hidden() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("expiry")).await;
        let team = create_team(client, &organization.id, "Temporary").await;
        let contractor = create_member(client, &organization.id, &unique("contractor")).await;
        let employee = create_member(client, &organization.id, &unique("employee")).await;
        client
            .add_team_members(proto::AddTeamMembersRequest {
                team_id: team.id.clone(),
                members: vec![
                    proto::NewTeamMember {
                        user_id: contractor.id.clone(),
                        expire_time: timestamp_in(Duration::from_millis(800)),
                    },
                    proto::NewTeamMember {
                        user_id: employee.id.clone(),
                        expire_time: None,
                    },
                ],
                idempotency_key: String::new(),
            })
            .await
            .unwrap();

        tokio::time::sleep(Duration::from_millis(1_200)).await;

        let active = client
            .list_team_members(proto::ListTeamMembersRequest {
                team_id: team.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .memberships;
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].user_id, employee.id);

        let all = client
            .list_team_members(proto::ListTeamMembersRequest {
                team_id: team.id.clone(),
                include_expired: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .memberships;
        assert_eq!(all.len(), 2);

        let contractor_teams = client
            .list_user_teams(proto::ListUserTeamsRequest {
                user_id: contractor.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .teams;
        assert!(contractor_teams.is_empty());
    })
    .await;
}

#[tokio::test]
async fn removed_member_loses_teams() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("leaving")).await;
        let team = create_team(client, &organization.id, "Team").await;
        let leaver = create_member(client, &organization.id, &unique("leaver")).await;
        add_team_member(client, &team.id, &leaver.id).await;

        client
            .remove_organization_member(proto::RemoveOrganizationMemberRequest {
                organization_id: organization.id.clone(),
                user_id: leaver.id.clone(),
                idempotency_key: String::new(),
            })
            .await
            .unwrap();
        let memberships = client
            .list_team_members(proto::ListTeamMembersRequest {
                team_id: team.id.clone(),
                include_expired: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .memberships;
        assert!(memberships.is_empty());
    })
    .await;
}
