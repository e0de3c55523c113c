//! GetRevision, Watch and ExportSnapshot through the gRPC API, including a
//! follower that rebuilds the state from a snapshot and the stream, and
//! concurrent writers whose changes the stream must show in log order.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use tonic::{Code, Streaming};
use tonic_types::StatusExt;
use workteams_directory::convert::entities::change_batch_to_proto;
use workteams_proto::directory::v1 as proto;

/// Generous bound for one stream message, so a broken stream fails the
/// test instead of hanging it.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(20);

async fn watch(
    client: &mut Client,
    from: &str,
    organization_id: &str,
) -> Streaming<proto::WatchResponse> {
    client
        .watch(proto::WatchRequest {
            from_consistency_token: from.to_owned(),
            organization_id: organization_id.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn next_message(stream: &mut Streaming<proto::WatchResponse>) -> proto::WatchResponse {
    tokio::time::timeout(MESSAGE_TIMEOUT, stream.message())
        .await
        .expect("no Watch message arrived in time")
        .unwrap()
        .expect("the Watch stream ended")
}

/// Reads batches until one at `revision` or later arrives.
async fn batches_until(
    stream: &mut Streaming<proto::WatchResponse>,
    revision: i64,
) -> Vec<proto::ChangeBatch> {
    let mut batches = Vec::new();
    while batches
        .last()
        .is_none_or(|batch: &proto::ChangeBatch| batch.revision < revision)
    {
        batches.extend(next_message(stream).await.batches);
    }
    batches
}

/// Returns a stable text key for an entity, as a follower would index it.
fn entity_key(entity: &proto::Entity) -> String {
    use proto::entity::Kind;

    match entity.kind.as_ref().unwrap() {
        Kind::Organization(organization) => format!("organization/{}", organization.id),
        Kind::User(user) => format!("user/{}", user.id),
        Kind::Member(member) => format!("member/{}/{}", member.organization_id, member.user_id),
        Kind::Team(team) => format!("team/{}", team.id),
        Kind::Membership(membership) => {
            format!("membership/{}/{}", membership.team_id, membership.user_id)
        }
        Kind::Resource(resource) => format!("resource/{}", resource.id),
        Kind::Grant(grant) => format!(
            "grant/{}/{}",
            grant.resource_id,
            subject_key(grant.subject.as_ref())
        ),
        Kind::Invitation(invitation) => format!("invitation/{}", invitation.id),
        Kind::ResourceType(definition) => format!("resource_type/{}", definition.name),
    }
}

fn deleted_key(key: &proto::EntityKey) -> String {
    use proto::entity_key::Kind;

    match key.kind.as_ref().unwrap() {
        Kind::OrganizationId(id) => format!("organization/{id}"),
        Kind::UserId(id) => format!("user/{id}"),
        Kind::Member(member) => format!("member/{}/{}", member.organization_id, member.user_id),
        Kind::TeamId(id) => format!("team/{id}"),
        Kind::Membership(membership) => {
            format!("membership/{}/{}", membership.team_id, membership.user_id)
        }
        Kind::ResourceId(id) => format!("resource/{id}"),
        Kind::Grant(grant) => format!(
            "grant/{}/{}",
            grant.resource_id,
            subject_key(grant.subject.as_ref())
        ),
        Kind::InvitationId(id) => format!("invitation/{id}"),
        Kind::ResourceType(name) => format!("resource_type/{name}"),
    }
}

fn subject_key(subject: Option<&proto::Subject>) -> String {
    match subject.and_then(|subject| subject.kind.as_ref()).unwrap() {
        proto::subject::Kind::TeamId(id) => format!("team:{id}"),
        proto::subject::Kind::UserId(id) => format!("user:{id}"),
    }
}

/// The state a follower holds: entities by key.
type FollowerState = BTreeMap<String, proto::Entity>;

async fn read_snapshot(
    client: &mut Client,
    organization_id: &str,
) -> (Vec<proto::ExportSnapshotResponse>, FollowerState) {
    let mut stream = client
        .export_snapshot(proto::ExportSnapshotRequest {
            organization_id: organization_id.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut messages = Vec::new();
    while let Some(message) = stream.message().await.unwrap() {
        messages.push(message);
    }
    let state = messages
        .iter()
        .flat_map(|message| message.entities.iter())
        .map(|entity| (entity_key(entity), entity.clone()))
        .collect();
    (messages, state)
}

fn apply(state: &mut FollowerState, batch: &proto::ChangeBatch) {
    for change in &batch.changes {
        match change.kind.as_ref().unwrap() {
            proto::change::Kind::Upserted(entity) => {
                state.insert(entity_key(entity), entity.clone());
            }
            proto::change::Kind::Deleted(key) => {
                state.remove(&deleted_key(key));
            }
        }
    }
}

#[tokio::test]
async fn revision_advances_with_writes() {
    each_backend(async |server| {
        let client = &mut server.client;
        let before = client
            .get_revision(proto::GetRevisionRequest {})
            .await
            .unwrap()
            .into_inner();

        let created = client
            .create_organization(proto::CreateOrganizationRequest {
                name: unique("rev"),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();

        let after = client
            .get_revision(proto::GetRevisionRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(after.revision, before.revision + 1);
        assert_eq!(after.consistency_token, created.consistency_token);
    })
    .await;
}

#[tokio::test]
async fn watch_sees_every_change_in_order() {
    each_backend(async |server| {
        let client = &mut server.client;
        let start = client
            .get_revision(proto::GetRevisionRequest {})
            .await
            .unwrap()
            .into_inner();
        let mut stream = watch(client, &start.consistency_token, "").await;

        let mut request = tonic::Request::new(proto::CreateOrganizationRequest {
            name: unique("watched"),
            ..Default::default()
        });
        request
            .metadata_mut()
            .insert("x-workteams-actor", "alice".parse().unwrap());
        request
            .metadata_mut()
            .insert("x-request-id", "watch-req-1".parse().unwrap());
        request.metadata_mut().insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let organization = client
            .create_organization(request)
            .await
            .unwrap()
            .into_inner();
        let organization_id = organization.organization.unwrap().id;
        let user = create_user(client, &unique("watcher")).await;
        add_member(
            client,
            &organization_id,
            &user.id,
            proto::MemberRole::Collaborator,
        )
        .await;
        let team = client
            .create_team(proto::CreateTeamRequest {
                organization_id: organization_id.clone(),
                name: "Watched".to_owned(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let last = revision_of(&team.consistency_token);

        let batches = batches_until(&mut stream, last).await;
        let revisions: Vec<i64> = batches.iter().map(|batch| batch.revision).collect();
        assert_eq!(revisions, (start.revision + 1..=last).collect::<Vec<_>>());

        let first = &batches[0];
        assert_eq!(first.consistency_token, organization.consistency_token);
        assert_eq!(first.actor, "alice");
        assert_eq!(first.request_id, "watch-req-1");
        assert_eq!(
            first.traceparent,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert!(first.commit_time.is_some());
        let upserted = match first.changes[0].kind.as_ref().unwrap() {
            proto::change::Kind::Upserted(entity) => entity.clone(),
            proto::change::Kind::Deleted(_) => panic!("expected an upsert"),
        };
        assert!(matches!(
            upserted.kind,
            Some(proto::entity::Kind::Organization(_))
        ));
        assert_eq!(first.changes[0].organization_id, organization_id);
    })
    .await;
}

#[tokio::test]
async fn watch_without_token_starts_at_head() {
    each_backend(async |server| {
        let client = &mut server.client;
        create_organization(client, &unique("before")).await;
        let mut stream = watch(client, "", "").await;

        let created = client
            .create_organization(proto::CreateOrganizationRequest {
                name: unique("after"),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let revision = revision_of(&created.consistency_token);

        let batches = batches_until(&mut stream, revision).await;
        assert_eq!(batches[0].revision, revision);
    })
    .await;
}

#[tokio::test]
async fn watch_filters_by_organization() {
    each_backend(async |server| {
        let client = &mut server.client;
        let watched = create_organization(client, &unique("watched")).await;
        let ignored = create_organization(client, &unique("ignored")).await;
        let start = head_revision(client).await;
        let start_token = client
            .get_revision(proto::GetRevisionRequest {})
            .await
            .unwrap()
            .into_inner();
        let mut stream = watch(client, &start_token.consistency_token, &watched.id).await;

        create_team(client, &ignored.id, "Ignored").await;
        let user = create_user(client, &unique("global")).await;
        create_team(client, &ignored.id, "Ignored too").await;
        let team = client
            .create_team(proto::CreateTeamRequest {
                organization_id: watched.id.clone(),
                name: "Seen".to_owned(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let last = revision_of(&team.consistency_token);

        let batches = batches_until(&mut stream, last).await;
        let revisions: Vec<i64> = batches.iter().map(|batch| batch.revision).collect();
        assert_eq!(
            revisions,
            vec![start + 2, last],
            "the user batch and the watched team only"
        );
        let user_change = &batches[0].changes[0];
        assert_eq!(user_change.organization_id, "");
        assert!(matches!(
            user_change.kind,
            Some(proto::change::Kind::Upserted(proto::Entity {
                kind: Some(proto::entity::Kind::User(ref created))
            })) if created.id == user.id
        ));
        assert!(
            batches
                .iter()
                .flat_map(|batch| batch.changes.iter())
                .all(|change| change.organization_id.is_empty()
                    || change.organization_id == watched.id)
        );
    })
    .await;
}

#[tokio::test]
async fn watch_heartbeat_carries_head() {
    each_backend(async |server| {
        let client = &mut server.client;
        let watched = create_organization(client, &unique("quiet")).await;
        let busy = create_organization(client, &unique("busy")).await;
        let start = client
            .get_revision(proto::GetRevisionRequest {})
            .await
            .unwrap()
            .into_inner();
        let mut stream = watch(client, &start.consistency_token, &watched.id).await;

        let other = client
            .create_team(proto::CreateTeamRequest {
                organization_id: busy.id.clone(),
                name: "Elsewhere".to_owned(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();

        // The filtered stream has nothing to send, so heartbeats follow; one
        // of them reaches the head written by the other organization.
        let head = revision_of(&other.consistency_token);
        loop {
            let message = next_message(&mut stream).await;
            assert!(message.batches.is_empty(), "{message:?}");
            if revision_of(&message.head_consistency_token) == head {
                break;
            }
        }
    })
    .await;
}

#[tokio::test]
async fn watch_token_rules() {
    each_backend(async |server| {
        let client = &mut server.client;
        let request = |token: String| proto::WatchRequest {
            from_consistency_token: token,
            organization_id: String::new(),
        };

        let malformed = client
            .watch(request("wt1.garbage".to_owned()))
            .await
            .unwrap_err();
        assert_invalid(&malformed, "from_consistency_token");

        let foreign = workteams_domain::ConsistencyToken::new(
            uuid::Uuid::now_v7(),
            workteams_domain::Revision(1),
        );
        let other_installation = client.watch(request(foreign.encode())).await.unwrap_err();
        assert_invalid(&other_installation, "from_consistency_token");

        let head = client
            .get_revision(proto::GetRevisionRequest {})
            .await
            .unwrap()
            .into_inner();
        let mut ahead =
            workteams_domain::ConsistencyToken::decode("token", &head.consistency_token).unwrap();
        ahead.revision = workteams_domain::Revision(head.revision + 1_000);
        let status = client.watch(request(ahead.encode())).await.unwrap_err();
        assert_eq!(status.code(), Code::OutOfRange);

        let bad_organization = client
            .watch(proto::WatchRequest {
                from_consistency_token: String::new(),
                organization_id: "ORG".to_owned(),
            })
            .await
            .unwrap_err();
        assert_invalid(&bad_organization, "organization_id");
    })
    .await;
}

#[tokio::test]
async fn watch_truncated_log_asks_for_snapshot() {
    each_backend_with(
        |config| {
            config.change_log_retention = Duration::from_millis(1);
            config.purge_interval = Duration::from_millis(100);
        },
        async |server| {
            let client = &mut server.client;
            let old = client
                .create_organization(proto::CreateOrganizationRequest {
                    name: unique("old"),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .consistency_token;
            create_organization(client, &unique("newer")).await;
            create_organization(client, &unique("newest")).await;

            // The purge runs every 100 ms; poll until it has removed the
            // batches after the old token.
            let mut status = None;
            for _ in 0..200 {
                match client
                    .watch(proto::WatchRequest {
                        from_consistency_token: old.clone(),
                        organization_id: String::new(),
                    })
                    .await
                {
                    Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    Err(error) => {
                        status = Some(error);
                        break;
                    }
                }
            }
            let status = status.expect("the change log was never purged");

            assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
            assert!(status.message().contains("ExportSnapshot"), "{status:?}");
            let details = status.get_error_details();
            assert_eq!(details.error_info().unwrap().reason, "CHANGE_LOG_TRUNCATED");

            let (messages, _) = read_snapshot(client, "").await;
            let snapshot_token = messages.last().unwrap().consistency_token.clone();
            let resumed = client
                .watch(proto::WatchRequest {
                    from_consistency_token: snapshot_token,
                    organization_id: String::new(),
                })
                .await;
            assert!(resumed.is_ok(), "{resumed:?}");
        },
    )
    .await;
}

#[tokio::test]
async fn snapshot_chunks_at_one_revision() {
    each_backend(async |server| {
        let client = &mut server.client;
        let organization = create_organization(client, &unique("snap")).await;
        let users: Vec<proto::NewUser> = (0..1_200)
            .map(|index| proto::NewUser {
                login: unique(&format!("u{index}")),
                ..Default::default()
            })
            .collect();
        client
            .batch_create_users(proto::BatchCreateUsersRequest {
                users: users[..1_000].to_vec(),
                idempotency_key: String::new(),
            })
            .await
            .unwrap();
        client
            .batch_create_users(proto::BatchCreateUsersRequest {
                users: users[1_000..].to_vec(),
                idempotency_key: String::new(),
            })
            .await
            .unwrap();
        create_team(client, &organization.id, "Snapshotted").await;
        let head = client
            .get_revision(proto::GetRevisionRequest {})
            .await
            .unwrap()
            .into_inner();

        let (messages, state) = read_snapshot(client, "").await;

        assert!(messages.len() >= 3, "{} messages", messages.len());
        assert!(
            messages
                .iter()
                .all(|message| message.consistency_token == head.consistency_token)
        );
        assert!(
            messages
                .iter()
                .all(|message| message.revision == head.revision)
        );
        assert!(
            messages
                .iter()
                .all(|message| message.entities.len() <= 1_000)
        );
        let last_flags: Vec<bool> = messages.iter().map(|message| message.last).collect();
        assert_eq!(last_flags.iter().filter(|last| **last).count(), 1);
        assert!(last_flags.last().unwrap());

        let users_seen = state.keys().filter(|key| key.starts_with("user/")).count();
        assert_eq!(users_seen, 1_200);
        assert!(state.contains_key(&format!("organization/{}", organization.id)));
        assert!(state.contains_key("resource_type/kdrive.folder"));
    })
    .await;
}

#[tokio::test]
async fn snapshot_filtered_by_organization() {
    each_backend(async |server| {
        let client = &mut server.client;
        let included = create_organization(client, &unique("included")).await;
        let excluded = create_organization(client, &unique("excluded")).await;
        let member = create_member(client, &included.id, &unique("member")).await;
        let outsider = create_member(client, &excluded.id, &unique("outsider")).await;
        create_team(client, &included.id, "In").await;
        create_team(client, &excluded.id, "Out").await;

        let (_, state) = read_snapshot(client, &included.id).await;

        assert!(state.contains_key(&format!("organization/{}", included.id)));
        assert!(!state.contains_key(&format!("organization/{}", excluded.id)));
        assert!(state.contains_key(&format!("user/{}", member.id)));
        assert!(!state.contains_key(&format!("user/{}", outsider.id)));
        assert!(state.contains_key("resource_type/mail.mailbox"));
        let teams: Vec<&proto::Entity> = state
            .iter()
            .filter(|(key, _)| key.starts_with("team/"))
            .map(|(_, entity)| entity)
            .collect();
        assert_eq!(teams.len(), 1);
    })
    .await;
}

/// A follower that takes a snapshot while writers run, then follows the
/// stream from the snapshot's token, must end with the same state as a
/// snapshot taken after the writers stopped.
#[tokio::test]
async fn snapshot_then_watch_rebuilds_state() {
    each_backend(async |server| {
        let organization = create_organization(&mut server.client, &unique("follow")).await;
        let members: Vec<proto::User> = {
            let mut members = Vec::new();
            for index in 0..5 {
                members.push(
                    create_member(
                        &mut server.client,
                        &organization.id,
                        &unique(&format!("m{index}")),
                    )
                    .await,
                );
            }
            members
        };

        let mut writer = server.new_client().await;
        let writer_organization = organization.id.clone();
        let writer_members = members.clone();
        let writes = tokio::spawn(async move {
            for round in 0..20 {
                let team =
                    create_team(&mut writer, &writer_organization, &format!("Team {round}")).await;
                add_team_member(
                    &mut writer,
                    &team.id,
                    &writer_members[round % writer_members.len()].id,
                )
                .await;
                if round % 3 == 0 {
                    writer
                        .delete_team(proto::DeleteTeamRequest {
                            id: team.id.clone(),
                            ..Default::default()
                        })
                        .await
                        .unwrap();
                }
            }
        });

        let (messages, mut state) = read_snapshot(&mut server.client, "").await;
        let snapshot_token = messages.last().unwrap().consistency_token.clone();
        writes.await.unwrap();
        let head = head_revision(&mut server.client).await;

        if head > revision_of(&snapshot_token) {
            let mut stream = watch(&mut server.client, &snapshot_token, "").await;
            for batch in batches_until(&mut stream, head).await {
                apply(&mut state, &batch);
            }
        }

        let (_, expected) = read_snapshot(&mut server.client, "").await;
        assert_eq!(
            state.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>()
        );
        assert_eq!(state, expected);
    })
    .await;
}

/// Several clients write at once; a Watch stream must see every committed
/// batch exactly once, in revision order, identical to the stored log.
#[tokio::test]
async fn concurrent_writers_match_change_log() {
    each_backend(async |server| {
        const WRITERS: usize = 4;
        const WRITES_PER_WRITER: usize = 15;

        let organization = create_organization(&mut server.client, &unique("concurrent")).await;
        let start = server
            .client
            .get_revision(proto::GetRevisionRequest {})
            .await
            .unwrap()
            .into_inner();
        let mut stream = watch(&mut server.client, &start.consistency_token, "").await;

        let mut tasks = Vec::new();
        for writer_index in 0..WRITERS {
            let mut client = server.new_client().await;
            let organization_id = organization.id.clone();
            tasks.push(tokio::spawn(async move {
                let mut revisions = Vec::new();
                for write_index in 0..WRITES_PER_WRITER {
                    let response = client
                        .create_team(proto::CreateTeamRequest {
                            organization_id: organization_id.clone(),
                            name: format!("w{writer_index}-t{write_index}"),
                            ..Default::default()
                        })
                        .await
                        .unwrap()
                        .into_inner();
                    revisions.push(revision_of(&response.consistency_token));
                }
                revisions
            }));
        }
        let mut written = Vec::new();
        for task in tasks {
            written.extend(task.await.unwrap());
        }
        written.sort_unstable();
        let last = *written.last().unwrap();

        let seen = batches_until(&mut stream, last).await;
        let seen_revisions: Vec<i64> = seen.iter().map(|batch| batch.revision).collect();
        assert_eq!(
            seen_revisions, written,
            "every write, once, in revision order"
        );
        assert_eq!(
            seen_revisions,
            (start.revision + 1..=last).collect::<Vec<_>>(),
            "no gaps"
        );

        let store = server.open_store().await;
        let from =
            workteams_domain::ConsistencyToken::decode("token", &start.consistency_token).unwrap();
        let logged: Vec<proto::ChangeBatch> = store
            .changes_after(from, None, 10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|batch| change_batch_to_proto(batch, store.epoch()))
            .collect();
        assert_eq!(seen, logged);
    })
    .await;
}

/// A follower catching up on many batches gets them in several messages
/// within the message size limit, each with its own last batch as head.
#[tokio::test]
async fn watch_splits_large_catch_up() {
    const MAX_MESSAGE_SIZE: usize = 64 * 1024;

    each_backend_with(
        |config| config.max_message_size = MAX_MESSAGE_SIZE,
        async |server| {
            let client = &mut server.client;
            let start = client
                .get_revision(proto::GetRevisionRequest {})
                .await
                .unwrap()
                .into_inner();
            let mut last = start.revision;
            for round in 0..30 {
                let users = (0..40)
                    .map(|index| proto::NewUser {
                        login: unique(&format!("r{round}u{index}")),
                        display_name: "A fairly long display name to fill the batch".to_owned(),
                        ..Default::default()
                    })
                    .collect();
                let response = client
                    .batch_create_users(proto::BatchCreateUsersRequest {
                        users,
                        idempotency_key: String::new(),
                    })
                    .await
                    .unwrap()
                    .into_inner();
                last = revision_of(&response.consistency_token);
            }

            let mut stream = watch(client, &start.consistency_token, "").await;
            let mut messages = Vec::new();
            let mut seen = start.revision;
            while seen < last {
                let message = next_message(&mut stream).await;
                if let Some(batch) = message.batches.last() {
                    seen = batch.revision;
                }
                messages.push(message);
            }

            let data: Vec<&proto::WatchResponse> = messages
                .iter()
                .filter(|message| !message.batches.is_empty())
                .collect();
            assert!(data.len() > 1, "{} messages", data.len());
            for message in &data {
                assert!(prost::Message::encoded_len(*message) <= MAX_MESSAGE_SIZE);
                assert_eq!(
                    message.head_consistency_token,
                    message.batches.last().unwrap().consistency_token
                );
            }
            let revisions: Vec<i64> = data
                .iter()
                .flat_map(|message| message.batches.iter())
                .map(|batch| batch.revision)
                .collect();
            assert_eq!(revisions, (start.revision + 1..=last).collect::<Vec<_>>());
        },
    )
    .await;
}
