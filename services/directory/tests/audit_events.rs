//! Audit events listed through ListAuditEvents: states before and after
//! each write, the filters and pagination.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use tonic::Code;
use workteams_proto::directory::v1 as proto;

const CREATE_TEAM: &str = "/workteams.directory.v1.DirectoryService/CreateTeam";
const UPDATE_TEAM: &str = "/workteams.directory.v1.DirectoryService/UpdateTeam";
const DELETE_TEAM: &str = "/workteams.directory.v1.DirectoryService/DeleteTeam";

fn list_for(organization_id: &str) -> proto::ListAuditEventsRequest {
    proto::ListAuditEventsRequest {
        organization_id: organization_id.to_owned(),
        ..Default::default()
    }
}

async fn list(client: &mut Client, request: proto::ListAuditEventsRequest) -> Vec<proto::AuditEvent> {
    client
        .list_audit_events(request)
        .await
        .unwrap()
        .into_inner()
        .audit_events
}

fn team_of(entity: Option<&proto::Entity>) -> Option<&proto::Team> {
    match entity?.kind.as_ref()? {
        proto::entity::Kind::Team(team) => Some(team),
        _ => None,
    }
}

/// Creates, renames and deletes a team as `actor`; returns the team id.
async fn team_lifecycle(client: &mut Client, organization_id: &str, actor: &str) -> String {
    let team = client
        .create_team(as_actor(
            proto::CreateTeamRequest {
                organization_id: organization_id.to_owned(),
                name: "platform".to_owned(),
                ..Default::default()
            },
            actor,
        ))
        .await
        .unwrap()
        .into_inner()
        .team
        .unwrap();
    client
        .update_team(as_actor(
            proto::UpdateTeamRequest {
                id: team.id.clone(),
                update_mask: field_mask(&["name"]),
                name: "infrastructure".to_owned(),
                ..Default::default()
            },
            actor,
        ))
        .await
        .unwrap();
    client
        .delete_team(as_actor(
            proto::DeleteTeamRequest {
                id: team.id.clone(),
                ..Default::default()
            },
            actor,
        ))
        .await
        .unwrap();
    team.id
}

/// The team's events, oldest first.
async fn team_events(client: &mut Client, organization_id: &str, team_id: &str) -> Vec<proto::AuditEvent> {
    list(
        client,
        proto::ListAuditEventsRequest {
            entity_kind: proto::AuditEntityKind::Team.into(),
            entity_id: team_id.to_owned(),
            oldest_first: true,
            ..list_for(organization_id)
        },
    )
    .await
}

#[tokio::test]
async fn team_writes_recorded_in_order() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("acme")).await;
        let team_id = team_lifecycle(client, &organization.id, "ada").await;

        let events = team_events(client, &organization.id, &team_id).await;

        let methods: Vec<&str> = events.iter().map(|event| event.method.as_str()).collect();
        assert_eq!(methods, vec![CREATE_TEAM, UPDATE_TEAM, DELETE_TEAM]);
        assert!(events.iter().all(|event| event.actor == "ada"));
        assert!(events.iter().all(|event| event.organization_id == organization.id));
        assert!(events.windows(2).all(|pair| pair[0].revision < pair[1].revision));
    })
    .await;
}

#[tokio::test]
async fn creation_has_only_after() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("acme")).await;
        let team_id = team_lifecycle(client, &organization.id, "ada").await;

        let events = team_events(client, &organization.id, &team_id).await;
        let created = &events[0];

        assert!(created.before.is_none());
        assert_eq!(team_of(created.after.as_ref()).unwrap().name, "platform");
        assert_eq!(created.entity_kind(), proto::AuditEntityKind::Team);
        assert!(created.time.is_some());
    })
    .await;
}

#[tokio::test]
async fn update_has_before_and_after() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("acme")).await;
        let team_id = team_lifecycle(client, &organization.id, "ada").await;

        let events = team_events(client, &organization.id, &team_id).await;
        let updated = &events[1];

        assert_eq!(team_of(updated.before.as_ref()).unwrap().name, "platform");
        assert_eq!(team_of(updated.after.as_ref()).unwrap().name, "infrastructure");
    })
    .await;
}

#[tokio::test]
async fn deletion_has_only_before() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("acme")).await;
        let team_id = team_lifecycle(client, &organization.id, "ada").await;

        let events = team_events(client, &organization.id, &team_id).await;
        let deleted = &events[2];

        assert_eq!(team_of(deleted.before.as_ref()).unwrap().name, "infrastructure");
        assert!(deleted.after.is_none());
        let key = deleted.entity_key.as_ref().unwrap().kind.as_ref().unwrap();
        assert_eq!(key, &proto::entity_key::Kind::TeamId(team_id.clone()));
    })
    .await;
}

#[tokio::test]
async fn default_order_newest_first() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("acme")).await;
        team_lifecycle(client, &organization.id, "ada").await;

        let events = list(client, list_for(&organization.id)).await;

        assert!(events.len() >= 3);
        assert!(events.windows(2).all(|pair| {
            (pair[0].revision, pair[0].position) > (pair[1].revision, pair[1].position)
        }));
    })
    .await;
}

#[tokio::test]
async fn actor_filter_selects_actor() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("acme")).await;
        team_lifecycle(client, &organization.id, "ada").await;
        team_lifecycle(client, &organization.id, "grace").await;

        let events = list(
            client,
            proto::ListAuditEventsRequest {
                actor: "grace".to_owned(),
                ..list_for(&organization.id)
            },
        )
        .await;

        assert_eq!(events.len(), 3);
        assert!(events.iter().all(|event| event.actor == "grace"));
    })
    .await;
}

#[tokio::test]
async fn method_filter_selects_method() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("acme")).await;
        team_lifecycle(client, &organization.id, "ada").await;
        team_lifecycle(client, &organization.id, "grace").await;

        let events = list(
            client,
            proto::ListAuditEventsRequest {
                method: UPDATE_TEAM.to_owned(),
                ..list_for(&organization.id)
            },
        )
        .await;

        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|event| event.method == UPDATE_TEAM));
    })
    .await;
}

#[tokio::test]
async fn kind_filter_selects_kind() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("acme")).await;
        let user = create_member(client, &organization.id, &unique("ada")).await;
        team_lifecycle(client, &organization.id, "ada").await;

        let events = list(
            client,
            proto::ListAuditEventsRequest {
                entity_kind: proto::AuditEntityKind::Member.into(),
                ..list_for(&organization.id)
            },
        )
        .await;

        assert_eq!(events.len(), 1);
        assert_eq!(events[0].entity_kind(), proto::AuditEntityKind::Member);
        let key = events[0].entity_key.as_ref().unwrap().kind.as_ref().unwrap();
        let proto::entity_key::Kind::Member(member) = key else {
            panic!("not a member key: {key:?}");
        };
        assert_eq!(member.user_id, user.id);
    })
    .await;
}

#[tokio::test]
async fn time_range_excludes_later_events() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("acme")).await;
        let start = timestamp_in(Duration::ZERO);
        team_lifecycle(client, &organization.id, "ada").await;
        let end = timestamp_in(Duration::ZERO);
        team_lifecycle(client, &organization.id, "grace").await;

        let events = list(
            client,
            proto::ListAuditEventsRequest {
                start_time: start,
                end_time: end,
                ..list_for(&organization.id)
            },
        )
        .await;

        assert_eq!(events.len(), 3);
        assert!(events.iter().all(|event| event.actor == "ada"));
    })
    .await;
}

#[tokio::test]
async fn pages_cover_every_event_once() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("acme")).await;
        team_lifecycle(client, &organization.id, "ada").await;
        team_lifecycle(client, &organization.id, "grace").await;
        let everything = list(client, list_for(&organization.id)).await;

        let mut paged = Vec::new();
        let mut page_token = String::new();
        let mut pages = 0;
        loop {
            let response = client
                .list_audit_events(proto::ListAuditEventsRequest {
                    page_size: 2,
                    page_token: page_token.clone(),
                    ..list_for(&organization.id)
                })
                .await
                .unwrap()
                .into_inner();
            pages += 1;
            assert!(response.audit_events.len() <= 2);
            paged.extend(response.audit_events);
            if response.next_page_token.is_empty() {
                break;
            }
            page_token = response.next_page_token;
        }

        assert_eq!(paged, everything);
        assert!(pages >= 3);
    })
    .await;
}

#[tokio::test]
async fn page_token_of_other_filter_rejected() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("acme")).await;
        team_lifecycle(client, &organization.id, "ada").await;
        let first = client
            .list_audit_events(proto::ListAuditEventsRequest {
                page_size: 1,
                ..list_for(&organization.id)
            })
            .await
            .unwrap()
            .into_inner();

        let status = client
            .list_audit_events(proto::ListAuditEventsRequest {
                page_size: 1,
                page_token: first.next_page_token,
                actor: "ada".to_owned(),
                ..list_for(&organization.id)
            })
            .await
            .unwrap_err();

        assert_invalid(&status, "page_token");
    })
    .await;
}

#[tokio::test]
async fn end_before_start_rejected() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("acme")).await;

        let status = client
            .list_audit_events(proto::ListAuditEventsRequest {
                start_time: timestamp_in(Duration::from_secs(60)),
                end_time: timestamp_in(Duration::ZERO),
                ..list_for(&organization.id)
            })
            .await
            .unwrap_err();

        assert_invalid(&status, "end_time");
    })
    .await;
}

#[tokio::test]
async fn unknown_entity_kind_rejected() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("acme")).await;

        let status = client
            .list_audit_events(proto::ListAuditEventsRequest {
                entity_kind: 99,
                ..list_for(&organization.id)
            })
            .await
            .unwrap_err();

        assert_invalid(&status, "entity_kind");
    })
    .await;
}

#[tokio::test]
async fn unknown_organization_not_found() {
    each_backend(async |server| {
        let client = &mut server.client;

        let status = client
            .list_audit_events(list_for(&uuid::Uuid::now_v7().to_string()))
            .await
            .unwrap_err();

        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    })
    .await;
}

#[tokio::test]
async fn missing_organization_rejected() {
    each_backend(async |server| {
        let client = &mut server.client;

        let status = client
            .list_audit_events(list_for(""))
            .await
            .unwrap_err();

        assert_invalid(&status, "organization_id");
    })
    .await;
}
