//! Invitations through the gRPC API: create, accept, revoke, expiry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use tonic::Code;
use workteams_proto::directory::v1 as proto;

async fn invite(
    client: &mut Client,
    organization_id: &str,
    email: &str,
    team_ids: Vec<String>,
    expire_time: Option<prost_types::Timestamp>,
) -> proto::Invitation {
    client
        .create_invitation(proto::CreateInvitationRequest {
            organization_id: organization_id.to_owned(),
            email: email.to_owned(),
            team_ids,
            expire_time,
            invited_by_user_id: String::new(),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .invitation
        .unwrap()
}

#[tokio::test]
async fn invitation_accepted_creates_external_member() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("partners")).await;
        let team = create_team(client, &organization.id, "Partners").await;
        let login = unique("guest");
        let email = format!("{login}@partner.example");

        let invitation = invite(
            client,
            &organization.id,
            &email,
            vec![team.id.clone()],
            None,
        )
        .await;
        assert_eq!(invitation.state(), proto::InvitationState::Pending);
        let default_expiry =
            invitation.expire_time.unwrap().seconds - invitation.create_time.unwrap().seconds;
        assert_eq!(default_expiry, 30 * 24 * 60 * 60);

        let accepted = client
            .accept_invitation(proto::AcceptInvitationRequest {
                id: invitation.id.clone(),
                login: login.clone(),
                display_name: "Guest".to_owned(),
                idempotency_key: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let member = accepted.member.unwrap();
        assert_eq!(member.role(), proto::MemberRole::External);
        assert_eq!(member.user.as_ref().unwrap().login, login);
        let invitation = accepted.invitation.unwrap();
        assert_eq!(invitation.state(), proto::InvitationState::Accepted);
        assert_eq!(invitation.accepted_user_id, member.user_id);

        let teams = client
            .list_user_teams(proto::ListUserTeamsRequest {
                user_id: member.user_id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .teams;
        assert_eq!(teams.len(), 1);
        assert_eq!(teams[0].id, team.id);

        let twice = client
            .accept_invitation(proto::AcceptInvitationRequest {
                id: invitation.id.clone(),
                login: unique("again"),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_precondition(&twice, "id");
    })
    .await;
}

#[tokio::test]
async fn invitation_accepted_by_existing_user() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("known")).await;
        let user = create_user(client, &unique("known")).await;

        let invitation = invite(
            client,
            &organization.id,
            &user.email.to_uppercase(),
            Vec::new(),
            None,
        )
        .await;
        let accepted = client
            .accept_invitation(proto::AcceptInvitationRequest {
                id: invitation.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(accepted.member.unwrap().user_id, user.id);
    })
    .await;
}

#[tokio::test]
async fn invitation_new_user_needs_login() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("nologin")).await;
        let invitation = invite(
            client,
            &organization.id,
            &format!("{}@example.com", unique("new")),
            Vec::new(),
            None,
        )
        .await;

        let status = client
            .accept_invitation(proto::AcceptInvitationRequest {
                id: invitation.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_invalid(&status, "login");
    })
    .await;
}

#[tokio::test]
async fn invitation_revoked_cannot_be_accepted() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("revoke")).await;
        let invitation = invite(
            client,
            &organization.id,
            &format!("{}@example.com", unique("r")),
            Vec::new(),
            None,
        )
        .await;

        let revoked = client
            .revoke_invitation(proto::RevokeInvitationRequest {
                id: invitation.id.clone(),
                idempotency_key: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .invitation
            .unwrap();
        assert_eq!(revoked.state(), proto::InvitationState::Revoked);

        let status = client
            .accept_invitation(proto::AcceptInvitationRequest {
                id: invitation.id.clone(),
                login: unique("late"),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_precondition(&status, "id");
    })
    .await;
}

#[tokio::test]
async fn invitation_expires() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("expiring")).await;
        let invitation = invite(
            client,
            &organization.id,
            &format!("{}@example.com", unique("slow")),
            Vec::new(),
            timestamp_in(Duration::from_millis(800)),
        )
        .await;

        tokio::time::sleep(Duration::from_millis(1_200)).await;

        let read = client
            .get_invitation(proto::GetInvitationRequest {
                id: invitation.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .invitation
            .unwrap();
        assert_eq!(read.state(), proto::InvitationState::Expired);

        let expired = client
            .list_invitations(proto::ListInvitationsRequest {
                organization_id: organization.id.clone(),
                state: proto::InvitationState::Expired.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .invitations;
        assert_eq!(expired.len(), 1);
        let pending = client
            .list_invitations(proto::ListInvitationsRequest {
                organization_id: organization.id.clone(),
                state: proto::InvitationState::Pending.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .invitations;
        assert!(pending.is_empty());

        let status = client
            .accept_invitation(proto::AcceptInvitationRequest {
                id: invitation.id.clone(),
                login: unique("late"),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_precondition(&status, "id");
    })
    .await;
}

#[tokio::test]
async fn invitation_input_rules() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("inputs")).await;
        let other = create_organization(client, &unique("other")).await;
        let other_team = create_team(client, &other.id, "Other").await;
        let request = |email: &str, team_ids: Vec<String>| proto::CreateInvitationRequest {
            organization_id: organization.id.clone(),
            email: email.to_owned(),
            team_ids,
            ..Default::default()
        };

        let bad_email = client
            .create_invitation(request("nobody", Vec::new()))
            .await
            .unwrap_err();
        assert_invalid(&bad_email, "email");

        let bad_team = client
            .create_invitation(request("a@example.com", vec!["not-an-id".to_owned()]))
            .await
            .unwrap_err();
        assert_invalid(&bad_team, "team_ids[0]");

        let foreign_team = client
            .create_invitation(request("a@example.com", vec![other_team.id.clone()]))
            .await
            .unwrap_err();
        assert_precondition(&foreign_team, "team_ids[0]");

        let past = client
            .create_invitation(proto::CreateInvitationRequest {
                expire_time: Some(prost_types::Timestamp {
                    seconds: 1,
                    nanos: 0,
                }),
                ..request("a@example.com", Vec::new())
            })
            .await
            .unwrap_err();
        assert_invalid(&past, "expire_time");

        let unknown = client
            .get_invitation(proto::GetInvitationRequest {
                id: uuid::Uuid::now_v7().to_string(),
            })
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), Code::NotFound);
    })
    .await;
}
