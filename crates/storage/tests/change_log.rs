//! The change log: revisions, idempotency, watch, snapshots, retention and
//! pagination under concurrent writes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::{context, fixtures, idempotent, organization, user};
use futures::StreamExt;
use workteams_domain::command::NewUser;
use workteams_domain::{Change, ChangeBatch, ConsistencyToken, Entity, EntityKey, Revision};
use workteams_storage::testing::TestDatabase;
use workteams_storage::{PageRequest, RetentionPolicy, Store, StoreError};

fn new_user(login: &str) -> NewUser {
    NewUser {
        login: login.to_owned(),
        email: None,
        display_name: String::new(),
    }
}

/// Every batch of the log from revision 0.
async fn whole_log(store: &Store) -> Vec<ChangeBatch> {
    let mut batches = Vec::new();
    let mut from = store.token(Revision::ZERO);
    loop {
        let next = store.changes_after(from, None, 1_000).await.unwrap();
        let Some(last) = next.last() else {
            return batches;
        };
        from = store.token(last.revision);
        batches.extend(next);
    }
}

#[tokio::test]
async fn revisions_are_gapless() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        organization(store, "Acme").await;
        user(store, "ada").await;
        user(store, "grace").await;

        let log = whole_log(store).await;
        let head = store.current_token().await.unwrap();

        let revisions: Vec<i64> = log.iter().map(|batch| batch.revision.0).collect();
        let expected: Vec<i64> = (1..=head.revision.0).collect();
        assert_eq!(revisions, expected);
        assert_eq!(head.epoch, store.epoch());
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn idempotent_repeat_returns_first_result() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let first = store.create_user(&idempotent("k1", b"ada"), new_user("ada")).await.unwrap();
        let head = store.current_token().await.unwrap();

        let repeat = store.create_user(&idempotent("k1", b"ada"), new_user("ada")).await.unwrap();
        let other_request = store.create_user(&idempotent("k1", b"grace"), new_user("grace")).await.unwrap_err();
        let other_method = store
            .create_organization(
                &idempotent("k1", b"ada"),
                workteams_domain::command::NewOrganization {
                    name: "Acme".to_owned(),
                    display_name: String::new(),
                    settings: Default::default(),
                    owner_user_id: None,
                },
            )
            .await
            .unwrap_err();

        assert_eq!(repeat, first);
        assert_eq!(store.current_token().await.unwrap(), head);
        assert!(matches!(other_request, StoreError::IdempotencyKeyReused { .. }), "{other_request:?}");
        assert!(matches!(other_method, StoreError::IdempotencyKeyReused { .. }), "{other_method:?}");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn failed_request_leaves_key_unused() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        user(store, "ada").await;

        let failed = store.create_user(&idempotent("k1", b"x"), new_user("ADA")).await.unwrap_err();
        let retried = store.create_user(&idempotent("k1", b"y"), new_user("grace")).await;

        assert!(matches!(failed, StoreError::AlreadyExists { .. }), "{failed:?}");
        assert!(retried.is_ok(), "{retried:?}");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn expired_idempotency_records_purged() {
    for database in TestDatabase::all().await {
        let mut config = database.config();
        config.idempotency_retention = Duration::ZERO;
        let store = Store::connect(config).await.unwrap();
        store.create_user(&idempotent("k1", b"ada"), new_user("ada")).await.unwrap();

        let repeat = store.create_user(&idempotent("k1", b"ada"), new_user("ada")).await.unwrap_err();
        let purged = store.purge_idempotency_records().await.unwrap();

        assert!(matches!(repeat, StoreError::AlreadyExists { .. }), "{repeat:?}");
        assert_eq!(purged, 1);
        drop(store);
        database.cleanup().await;
    }
}

#[tokio::test]
async fn concurrent_idempotent_repeats_apply_once() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let before = store.current_token().await.unwrap();

        let attempts = (0..8).map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.create_user(&idempotent("same", b"ada"), new_user("ada")).await })
        });
        let results: Vec<_> = futures::future::join_all(attempts).await;
        let results: Vec<_> = results.into_iter().map(|result| result.unwrap().unwrap()).collect();

        assert!(results.iter().all(|written| *written == results[0]));
        assert_eq!(store.current_token().await.unwrap().revision, before.revision.next());
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn foreign_and_future_tokens_rejected() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let head = store.current_token().await.unwrap();

        let foreign = store
            .changes_after(ConsistencyToken::new(uuid::Uuid::now_v7(), Revision::ZERO), None, 10)
            .await
            .unwrap_err();
        let ahead = store.changes_after(store.token(head.revision.next()), None, 10).await.unwrap_err();

        assert!(matches!(foreign, StoreError::TokenFromOtherInstallation), "{foreign:?}");
        assert!(matches!(ahead, StoreError::TokenAhead { .. }), "{ahead:?}");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn purged_log_reports_truncation() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        for login in ["a1", "a2", "a3", "a4"] {
            user(store, login).await;
        }
        let head = store.current_token().await.unwrap();

        let outcome = store
            .purge_change_log(RetentionPolicy {
                keep_for: None,
                keep_revisions: Some(2),
            })
            .await
            .unwrap();
        let truncated = store.changes_after(store.token(Revision::ZERO), None, 10).await.unwrap_err();
        let available = store.changes_after(store.token(outcome.oldest_available), None, 10).await.unwrap();
        let kept_by_age = store
            .purge_change_log(RetentionPolicy {
                keep_for: Some(Duration::from_secs(3_600)),
                keep_revisions: None,
            })
            .await
            .unwrap();

        assert_eq!(outcome.oldest_available, Revision(head.revision.0 - 2));
        assert!(
            matches!(truncated, StoreError::ChangeLogTruncated { oldest_available } if oldest_available == outcome.oldest_available),
            "{truncated:?}"
        );
        assert_eq!(available.len(), 2);
        assert_eq!(kept_by_age.deleted_batches, 0);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn organization_filter_keeps_unowned_changes() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let start = store.current_token().await.unwrap();
        let acme = organization(store, "Acme").await;
        organization(store, "Other").await;
        user(store, "ada").await;

        let filtered = store.changes_after(start, Some(acme.id), 100).await.unwrap();

        let kinds: Vec<bool> = filtered
            .iter()
            .flat_map(|batch| &batch.changes)
            .map(|change| change.organization_id() == Some(acme.id) || change.organization_id().is_none())
            .collect();
        assert_eq!(filtered.len(), 2);
        assert!(kinds.iter().all(|matches| *matches));
        fixture.cleanup().await;
    }
}

/// Several writers on separate stores (separate pools, as separate replicas
/// would be) while a watcher on a third store streams from revision 0: the
/// watcher must see exactly the log read back from the database.
#[tokio::test]
async fn watcher_matches_log_under_concurrent_writers() {
    const WRITERS: usize = 6;
    const WRITES_PER_WRITER: usize = 15;
    for fixture in fixtures().await {
        let watcher_store = fixture.database.store().await;
        let writer_stores = [fixture.store.clone(), fixture.database.store().await];
        let mut stream = watcher_store.watch(watcher_store.token(Revision::ZERO), None);

        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let store = writer_stores[writer % writer_stores.len()].clone();
                tokio::spawn(async move {
                    for write in 0..WRITES_PER_WRITER {
                        store
                            .create_user(&context(), new_user(&format!("w{writer}-{write}")))
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
        let head = fixture.store.current_token().await.unwrap();

        let mut watched: Vec<ChangeBatch> = Vec::new();
        while watched.last().map(|batch| batch.revision) != Some(head.revision) {
            let next = tokio::time::timeout(Duration::from_secs(60), stream.next())
                .await
                .expect("the watcher stalled")
                .expect("the watch stream ended")
                .unwrap();
            assert!(!next.is_empty());
            watched.extend(next);
        }
        let log = whole_log(&fixture.store).await;

        assert_eq!(watched, log);
        let revisions: Vec<i64> = watched.iter().map(|batch| batch.revision.0).collect();
        assert_eq!(revisions, (1..=head.revision.0).collect::<Vec<_>>());
        assert!(head.revision.0 >= (WRITERS * WRITES_PER_WRITER) as i64);
        drop(stream);
        drop(watcher_store);
        drop(writer_stores);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn watch_wakes_on_later_commit() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let start = store.current_token().await.unwrap();
        let mut stream = store.watch(start, None);

        let written = user(store, "ada").await;
        let batches = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("the watcher stalled")
            .unwrap()
            .unwrap();

        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].changes, vec![Change::Upserted(Entity::User(written))]);
        drop(stream);
        fixture.cleanup().await;
    }
}

/// Applies a log to an empty state, as a follower would.
fn replay(batches: &[ChangeBatch]) -> HashMap<EntityKey, Entity> {
    let mut state = HashMap::new();
    for change in batches.iter().flat_map(|batch| &batch.changes) {
        match change {
            Change::Upserted(entity) => {
                state.insert(entity.key(), entity.clone());
            }
            Change::Deleted { key, .. } => {
                state.remove(key);
            }
        }
    }
    state
}

#[tokio::test]
async fn snapshot_consistent_while_writing() {
    use workteams_domain::MemberRole;
    for fixture in fixtures().await {
        let store = fixture.store.clone();
        let acme = organization(&store, "Acme").await;
        for index in 0..20 {
            let person = user(&store, &format!("seed{index}")).await;
            common::member(&store, &acme, &person, MemberRole::Collaborator).await;
        }

        let writer_store = store.clone();
        let writer = tokio::spawn(async move {
            for index in 0..30 {
                let person = user(&writer_store, &format!("late{index}")).await;
                common::member(&writer_store, &acme, &person, MemberRole::Collaborator).await;
            }
        });
        let snapshot = store.export_snapshot(None, 4).await.unwrap();
        let mut entities = Vec::new();
        let mut chunks = snapshot.chunks;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.unwrap();
            assert!(chunk.len() <= 4);
            entities.extend(chunk);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        writer.await.unwrap();

        let log: Vec<ChangeBatch> = whole_log(&store)
            .await
            .into_iter()
            .filter(|batch| batch.revision <= snapshot.token.revision)
            .collect();
        let expected = replay(&log);
        let keys: HashSet<EntityKey> = entities.iter().map(Entity::key).collect();
        let actual: HashMap<EntityKey, Entity> = entities.into_iter().map(|entity| (entity.key(), entity)).collect();

        assert_eq!(keys.len(), actual.len(), "an entity appeared twice");
        assert_eq!(actual, expected);
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn organization_snapshot_holds_its_members_only() {
    use workteams_domain::MemberRole;
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        organization(store, "Other").await;
        let ada = user(store, "ada").await;
        user(store, "grace").await;
        common::member(store, &acme, &ada, MemberRole::Owner).await;

        let snapshot = store.export_snapshot(Some(acme.id), 100).await.unwrap();
        let entities: Vec<Entity> = snapshot.chunks.map(|chunk| chunk.unwrap()).concat().await;

        let users: Vec<&Entity> = entities.iter().filter(|entity| matches!(entity, Entity::User(_))).collect();
        let organizations = entities.iter().filter(|entity| matches!(entity, Entity::Organization(_))).count();
        let types = entities.iter().filter(|entity| matches!(entity, Entity::ResourceType(_))).count();
        assert_eq!(users, vec![&Entity::User(ada)]);
        assert_eq!(organizations, 1);
        assert_eq!(types, store.list_resource_types().len());
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn pages_survive_concurrent_inserts() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let mut original = HashSet::new();
        for index in 0..30 {
            original.insert(user(store, &format!("u{index:02}")).await.id);
        }

        let mut seen = Vec::new();
        let mut page = PageRequest::first(7);
        let mut inserted = 0;
        loop {
            let result = store.list_users(&page).await.unwrap();
            seen.extend(result.items.iter().map(|user| user.id));
            user(store, &format!("late{inserted}")).await;
            inserted += 1;
            match result.next_page_token {
                Some(token) => page.page_token = token,
                None => break,
            }
        }

        let unique: HashSet<_> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len(), "a user was listed twice");
        assert!(original.is_subset(&unique), "a user was skipped");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn bad_page_tokens_rejected() {
    for fixture in fixtures().await {
        let store = &fixture.store;
        let acme = organization(store, "Acme").await;
        organization(store, "Other").await;
        for login in ["a", "b", "c"] {
            user(store, login).await;
        }
        let token = store.list_users(&PageRequest::first(1)).await.unwrap().next_page_token.unwrap();
        let mut tampered: Vec<char> = token.chars().collect();
        tampered[3] = if tampered[3] == 'A' { 'B' } else { 'A' };
        let tampered: String = tampered.into_iter().collect();
        let request = |page_token: &str| PageRequest {
            page_size: 1,
            page_token: page_token.to_owned(),
        };

        let tampered_error = store.list_users(&request(&tampered)).await.unwrap_err();
        let other_list = store.list_organizations(&request(&token)).await.unwrap_err();
        let teams_token = {
            common::team(store, &acme, "A", None, &[]).await;
            common::team(store, &acme, "B", None, &[]).await;
            let filter = workteams_storage::TeamFilter {
                organization_id: acme.id,
                parent_team_id: None,
            };
            store.list_teams(&filter, &PageRequest::first(1)).await.unwrap().next_page_token.unwrap()
        };
        let other_filter = store
            .list_teams(
                &workteams_storage::TeamFilter {
                    organization_id: organization(store, "Third").await.id,
                    parent_team_id: None,
                },
                &request(&teams_token),
            )
            .await
            .unwrap_err();
        let negative = store.list_users(&PageRequest::first(-1)).await.unwrap_err();

        assert_eq!(common::field_of(&tampered_error), "page_token");
        assert_eq!(common::field_of(&other_list), "page_token");
        assert_eq!(common::field_of(&other_filter), "page_token");
        assert_eq!(common::field_of(&negative), "page_size");
        fixture.cleanup().await;
    }
}

#[tokio::test]
async fn resource_type_sync_records_changes() {
    use workteams_domain::{Combining, ResourceTypeDef, ResourceTypeRegistry};
    for fixture in fixtures().await {
        let store = &fixture.store;
        let extra = ResourceTypeDef {
            name: "wiki.page".to_owned(),
            permissions: vec!["read".to_owned(), "edit".to_owned()],
            ordered_levels: true,
            combining: Combining::Cumulative,
            grants_propagate: false,
            case_insensitive_external_ids: false,
            nestable: false,
        };
        let with_extra = ResourceTypeRegistry::with_builtins(vec![extra.clone()]).unwrap();
        let builtins = ResourceTypeRegistry::with_builtins(Vec::new()).unwrap();
        let before = store.current_token().await.unwrap();

        let unchanged = store.sync_resource_types(&context(), &builtins).await.unwrap();
        let added = store.sync_resource_types(&context(), &with_extra).await.unwrap();
        let added_changes = common::changes_since(store, before).await;
        let acme = organization(store, "Acme").await;
        common::resource(store, &acme, "wiki.page", "Home", None).await;
        let in_use = store.sync_resource_types(&context(), &builtins).await.unwrap_err();

        assert_eq!(unchanged, before);
        assert_eq!(added.revision, before.revision.next());
        assert_eq!(added_changes, vec![Change::Upserted(Entity::ResourceType(extra))]);
        assert!(matches!(in_use, StoreError::FailedPrecondition { .. }), "{in_use:?}");
        assert!(store.resource_types().get("wiki.page").is_some());
        fixture.cleanup().await;
    }
}
