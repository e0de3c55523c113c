//! Write-to-visible propagation: how long after a directory write the
//! sidecar's answers show it.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use workteams_domain::{MemberStatus, Subject};
use workteams_proto::authz::v1 as authz;
use workteams_proto::directory::v1 as directory;

use crate::dataset::MAILBOX_TYPE;
use crate::graph::Graph;
use crate::import::{IdMap, connect};
use crate::measure::LatencyStats;
use crate::sidecar::{channel, client};

/// The mailbox permission the generator never grants, so a probe grant of
/// it is the only thing that can allow it.
const PROBE_PERMISSION: &str = "manage_devices";

/// How long one write may take to show before the run fails.
const VISIBILITY_TIMEOUT: Duration = Duration::from_secs(30);

/// Sets and revokes `writes` individual grants through the directory and
/// times each until the sidecar answers accordingly. Returns the
/// write-to-visible and the write-call latencies.
pub async fn measure(
    graph: &Graph<'_>,
    ids: &IdMap,
    directory_url: &str,
    sidecar_url: &str,
    writes: usize,
    seed: u64,
) -> anyhow::Result<(LatencyStats, LatencyStats)> {
    let mut directory_client = connect(directory_url).await?;
    let mut sidecar = client(channel(sidecar_url).await?);
    let (user, resource) =
        probe_pair(graph, seed).context("the dataset has no mailbox and active user to probe")?;
    let user_id = ids.users[user].clone();
    let resource_id = ids.resources[resource].clone();
    let subject = directory::Subject {
        kind: Some(directory::subject::Kind::UserId(user_id.clone())),
    };
    let check = authz::CheckAccessRequest {
        user: Some(authz::UserRef {
            kind: Some(authz::user_ref::Kind::Id(user_id)),
        }),
        resource: Some(authz::ResourceRef {
            kind: Some(authz::resource_ref::Kind::Id(resource_id.clone())),
        }),
        permission: PROBE_PERMISSION.to_owned(),
        consistency: None,
    };

    let started = Instant::now();
    let mut visible = Vec::with_capacity(writes);
    let mut write_calls = Vec::with_capacity(writes);
    for write in 0..writes {
        let grant = write % 2 == 0;
        let sent = Instant::now();
        if grant {
            directory_client
                .grant_access(directory::GrantAccessRequest {
                    resource_id: resource_id.clone(),
                    subject: Some(subject.clone()),
                    permissions: vec![PROBE_PERMISSION.to_owned()],
                    no_access: false,
                    expire_time: None,
                    idempotency_key: String::new(),
                })
                .await
                .context("GrantAccess failed")?;
        } else {
            directory_client
                .revoke_access(directory::RevokeAccessRequest {
                    resource_id: resource_id.clone(),
                    subject: Some(subject.clone()),
                    idempotency_key: String::new(),
                })
                .await
                .context("RevokeAccess failed")?;
        }
        write_calls.push(sent.elapsed().as_nanos() as u64);

        loop {
            let allowed = sidecar
                .check_access(check.clone())
                .await?
                .into_inner()
                .allowed;
            if allowed == grant {
                break;
            }
            anyhow::ensure!(
                sent.elapsed() < VISIBILITY_TIMEOUT,
                "the sidecar did not show write {write} within {VISIBILITY_TIMEOUT:?}"
            );
        }
        visible.push(sent.elapsed().as_nanos() as u64);
    }
    let elapsed = started.elapsed();
    Ok((
        LatencyStats::from_latencies(visible, 1, elapsed),
        LatencyStats::from_latencies(write_calls, 1, elapsed),
    ))
}

/// Picks a mailbox and an active member with no individual grant on it.
fn probe_pair(graph: &Graph<'_>, seed: u64) -> Option<(usize, usize)> {
    let dataset = graph.dataset;
    let mailboxes: Vec<usize> = (0..dataset.resources.len())
        .filter(|position| dataset.resources[*position].resource_type == MAILBOX_TYPE)
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for _ in 0..1_000 {
        if mailboxes.is_empty() || dataset.users.is_empty() {
            return None;
        }
        let resource = mailboxes[rng.random_range(0..mailboxes.len())];
        let user = rng.random_range(0..dataset.users.len());
        let active = graph.user_members[user]
            .is_some_and(|member| dataset.members[member].status == MemberStatus::Active);
        let user_id = dataset.users[user].id;
        let has_grant = graph.resource_grants[resource]
            .iter()
            .any(|grant| dataset.grants[*grant].subject == Subject::User(user_id));
        if active && !has_grant {
            return Some((user, resource));
        }
    }
    None
}
