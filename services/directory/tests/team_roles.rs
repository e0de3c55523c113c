//! Organization roles given to teams through SetTeamRole.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use tonic::Code;
use workteams_proto::directory::v1 as proto;

fn set_role(team_id: &str, role: proto::MemberRole) -> proto::SetTeamRoleRequest {
    proto::SetTeamRoleRequest {
        team_id: team_id.to_owned(),
        role: role.into(),
        etag: String::new(),
        idempotency_key: String::new(),
    }
}

#[tokio::test]
async fn team_role_set_and_read() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("acme")).await;
        let team = create_team(client, &organization.id, "platform").await;

        let response = client
            .set_team_role(set_role(&team.id, proto::MemberRole::Administrator))
            .await
            .unwrap()
            .into_inner();
        let read = client
            .get_team(proto::GetTeamRequest {
                id: team.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .team
            .unwrap();

        let returned = response.team.unwrap();
        assert_eq!(returned.organization_role(), proto::MemberRole::Administrator);
        assert_ne!(returned.etag, team.etag);
        assert_eq!(read.organization_role(), proto::MemberRole::Administrator);
        assert!(revision_of(&response.consistency_token) > 0);
    })
    .await;
}

#[tokio::test]
async fn team_role_cleared_by_unspecified() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("acme")).await;
        let team = create_team(client, &organization.id, "platform").await;
        client
            .set_team_role(set_role(&team.id, proto::MemberRole::Collaborator))
            .await
            .unwrap();

        let cleared = client
            .set_team_role(set_role(&team.id, proto::MemberRole::Unspecified))
            .await
            .unwrap()
            .into_inner()
            .team
            .unwrap();

        assert_eq!(cleared.organization_role(), proto::MemberRole::Unspecified);
    })
    .await;
}

#[tokio::test]
async fn owner_team_role_rejected() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("acme")).await;
        let team = create_team(client, &organization.id, "platform").await;

        let status = client
            .set_team_role(set_role(&team.id, proto::MemberRole::Owner))
            .await
            .unwrap_err();

        assert_invalid(&status, "role");
    })
    .await;
}

#[tokio::test]
async fn external_team_role_rejected() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("acme")).await;
        let team = create_team(client, &organization.id, "platform").await;

        let status = client
            .set_team_role(set_role(&team.id, proto::MemberRole::External))
            .await
            .unwrap_err();

        assert_invalid(&status, "role");
    })
    .await;
}

#[tokio::test]
async fn unknown_team_role_rejected() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("acme")).await;
        let team = create_team(client, &organization.id, "platform").await;

        let status = client
            .set_team_role(proto::SetTeamRoleRequest {
                role: 42,
                ..set_role(&team.id, proto::MemberRole::Unspecified)
            })
            .await
            .unwrap_err();

        assert_invalid(&status, "role");
    })
    .await;
}

#[tokio::test]
async fn team_role_stale_etag_aborted() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("acme")).await;
        let team = create_team(client, &organization.id, "platform").await;
        client
            .set_team_role(set_role(&team.id, proto::MemberRole::Collaborator))
            .await
            .unwrap();

        let status = client
            .set_team_role(proto::SetTeamRoleRequest {
                etag: team.etag.clone(),
                ..set_role(&team.id, proto::MemberRole::Administrator)
            })
            .await
            .unwrap_err();

        assert_eq!(status.code(), Code::Aborted, "{status:?}");
    })
    .await;
}

#[tokio::test]
async fn team_role_unknown_team_not_found() {
    each_backend(async |server| {
        let client = &mut server.client;

        let status = client
            .set_team_role(set_role(
                &uuid::Uuid::now_v7().to_string(),
                proto::MemberRole::Administrator,
            ))
            .await
            .unwrap_err();

        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    })
    .await;
}

#[tokio::test]
async fn team_role_replayed_by_idempotency_key() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("acme")).await;
        let team = create_team(client, &organization.id, "platform").await;
        let request = proto::SetTeamRoleRequest {
            idempotency_key: unique("role"),
            ..set_role(&team.id, proto::MemberRole::Administrator)
        };

        let first = client.set_team_role(request.clone()).await.unwrap().into_inner();
        let replay = client.set_team_role(request).await.unwrap().into_inner();

        assert_eq!(replay.consistency_token, first.consistency_token);
    })
    .await;
}
