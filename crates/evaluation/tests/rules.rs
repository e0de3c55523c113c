//! One test per access rule, each checked on the index and on the reference
//! evaluator.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use chrono::{DateTime, Duration, Utc};
use support::{World, at, now};
use workteams_domain::{
    Change, ChangeBatch, Entity, EntityKey, MemberRole, MemberStatus, ResourceId,
    ResourceTypeDefault, Revision, Subject, UserId,
};
use workteams_evaluation::{AccessFilter, DenyReason, Evaluation, Index, ReasonKind};

/// Evaluates on the index, after checking that the reference agrees and
/// that `check` agrees with the evaluation for every permission.
fn evaluate(world: &World, user: UserId, resource: ResourceId, at: DateTime<Utc>) -> Evaluation {
    let index = world.index();
    let evaluation = index.evaluate(user, resource, at);
    assert_eq!(
        evaluation,
        world.reference().evaluate(user, resource, at),
        "index and reference differ"
    );
    for permission in 0..64 {
        assert_eq!(
            index.check(user, resource, permission, at),
            evaluation.allows(permission),
            "check of permission {permission} differs from evaluate"
        );
    }
    assert_eq!(
        index.effective_permissions(user, resource, at),
        evaluation.permissions
    );
    evaluation
}

fn names(evaluation: &Evaluation) -> Vec<&str> {
    evaluation.permission_names()
}

fn batch(revision: i64, changes: Vec<Change>) -> ChangeBatch {
    ChangeBatch {
        revision: Revision(revision),
        changes,
        actor: None,
        request_id: None,
        traceparent: None,
        commit_time: now(),
    }
}

#[test]
fn individual_no_access_beats_team_grant() {
    let mut world = World::new();
    let organization = world.organization("acme");
    let user = world.collaborator(organization, "ada");
    let team = world.team(organization, None);
    world.membership(team, user, organization, None);
    let folder = world.folder(organization, "/a", None);
    world.grant(organization, folder, Subject::Team(team), &["manage"], None);
    world.no_access(organization, folder, user);

    let evaluation = evaluate(&world, user, folder, now());

    assert!(evaluation.permissions.is_empty());
    assert_eq!(evaluation.deny_reason, Some(DenyReason::IndividualOverride));
    assert!(evaluation.reasons[0].no_access);
}

#[test]
fn team_grant_reaches_subfolder() {
    let mut world = World::new();
    let organization = world.organization("acme");
    let user = world.collaborator(organization, "ada");
    let team = world.team(organization, None);
    world.membership(team, user, organization, None);
    let parent = world.folder(organization, "/a", None);
    let child = world.folder(organization, "/a/b", Some(parent));
    let grandchild = world.folder(organization, "/a/b/c", Some(child));
    world.grant(organization, parent, Subject::Team(team), &["modify"], None);

    let evaluation = evaluate(&world, user, grandchild, now());

    assert_eq!(names(&evaluation), ["view", "modify"]);
    assert_eq!(evaluation.reasons[0].resource_id, parent);
    assert_eq!(evaluation.reasons[0].kind, ReasonKind::TeamGrant);
}

#[test]
fn inheritance_break_stops_parent_grants() {
    let mut world = World::new();
    let organization = world.organization("acme");
    let user = world.collaborator(organization, "ada");
    let parent = world.folder(organization, "/a", None);
    let broken = world.resource(organization, "kdrive.folder", "/a/b", Some(parent), false);
    let below = world.folder(organization, "/a/b/c", Some(broken));
    world.grant(organization, parent, Subject::User(user), &["manage"], None);

    let on_broken = evaluate(&world, user, broken, now());
    let below_broken = evaluate(&world, user, below, now());

    assert_eq!(on_broken.deny_reason, Some(DenyReason::NoGrant));
    assert_eq!(below_broken.deny_reason, Some(DenyReason::NoGrant));
}

#[test]
fn broken_folder_keeps_own_grants() {
    let mut world = World::new();
    let organization = world.organization("acme");
    let user = world.collaborator(organization, "ada");
    let team = world.team(organization, None);
    world.membership(team, user, organization, None);
    let parent = world.folder(organization, "/a", None);
    let broken = world.resource(organization, "kdrive.folder", "/a/b", Some(parent), false);
    let below = world.folder(organization, "/a/b/c", Some(broken));
    world.grant(organization, parent, Subject::Team(team), &["manage"], None);
    world.grant(organization, broken, Subject::Team(team), &["view"], None);

    assert_eq!(names(&evaluate(&world, user, broken, now())), ["view"]);
    assert_eq!(names(&evaluate(&world, user, below, now())), ["view"]);
}

#[test]
fn nearest_individual_grant_decides() {
    let mut world = World::new();
    let organization = world.organization("acme");
    let user = world.collaborator(organization, "ada");
    let team = world.team(organization, None);
    world.membership(team, user, organization, None);
    let parent = world.folder(organization, "/a", None);
    let child = world.folder(organization, "/a/b", Some(parent));
    let grandchild = world.folder(organization, "/a/b/c", Some(child));
    world.grant(organization, parent, Subject::User(user), &["view"], None);
    world.grant(organization, child, Subject::Team(team), &["manage"], None);

    let evaluation = evaluate(&world, user, grandchild, now());

    assert_eq!(names(&evaluation), ["view"]);
    assert_eq!(evaluation.reasons.len(), 1);
    assert_eq!(evaluation.reasons[0].resource_id, parent);
    assert_eq!(
        evaluation.deny_reason_for(2),
        Some(DenyReason::IndividualOverride)
    );
}

#[test]
fn nearer_individual_grant_wins_over_farther_one() {
    let mut world = World::new();
    let organization = world.organization("acme");
    let user = world.collaborator(organization, "ada");
    let parent = world.folder(organization, "/a", None);
    let child = world.folder(organization, "/a/b", Some(parent));
    world.grant(organization, parent, Subject::User(user), &["manage"], None);
    world.grant(organization, child, Subject::User(user), &["view"], None);

    assert_eq!(names(&evaluate(&world, user, child, now())), ["view"]);
    assert_eq!(
        names(&evaluate(&world, user, parent, now())),
        ["view", "modify", "manage"]
    );
}

#[test]
fn expired_individual_grant_lets_teams_decide() {
    let mut world = World::new();
    let organization = world.organization("acme");
    let user = world.collaborator(organization, "ada");
    let team = world.team(organization, None);
    world.membership(team, user, organization, None);
    let folder = world.folder(organization, "/a", None);
    world.grant(organization, folder, Subject::Team(team), &["modify"], None);
    world.entities.push(Entity::Grant(support::grant(
        organization,
        folder,
        Subject::User(user),
        &[],
        true,
        Some(at(-1)),
    )));

    assert_eq!(
        names(&evaluate(&world, user, folder, now())),
        ["view", "modify"]
    );
}

#[test]
fn mailbox_grants_are_cumulative() {
    let mut world = World::new();
    let organization = world.organization("acme");
    let user = world.collaborator(organization, "ada");
    let team = world.team(organization, None);
    world.membership(team, user, organization, None);
    let mailbox = world.resource(organization, "mail.mailbox", "team@acme.test", None, true);
    world.grant(organization, mailbox, Subject::User(user), &["read"], None);
    world.grant(
        organization,
        mailbox,
        Subject::Team(team),
        &["send", "restore"],
        None,
    );

    let evaluation = evaluate(&world, user, mailbox, now());

    assert_eq!(names(&evaluation), ["read", "send", "restore"]);
    assert_eq!(evaluation.reasons.len(), 2);
}

#[test]
fn mailbox_no_access_adds_nothing() {
    let mut world = World::new();
    let organization = world.organization("acme");
    let user = world.collaborator(organization, "ada");
    let team = world.team(organization, None);
    world.membership(team, user, organization, None);
    let mailbox = world.resource(organization, "mail.mailbox", "team@acme.test", None, true);
    world.no_access(organization, mailbox, user);
    world.grant(organization, mailbox, Subject::Team(team), &["read"], None);

    let evaluation = evaluate(&world, user, mailbox, now());

    assert_eq!(names(&evaluation), ["read"]);
    assert_eq!(evaluation.reasons.len(), 1);
}

#[test]
fn nested_team_grant_reaches_child_member() {
    let mut world = World::new();
    let organization = world.organization("acme");
    let user = world.collaborator(organization, "ada");
    let root = world.team(organization, None);
    let middle = world.team(organization, Some(root));
    let leaf = world.team(organization, Some(middle));
    world.membership(leaf, user, organization, None);
    let channel = world.resource(organization, "kchat.channel", "general", None, true);
    world.grant(organization, channel, Subject::Team(root), &["admin"], None);

    let evaluation = evaluate(&world, user, channel, now());

    assert_eq!(evaluation.level(), Some("admin"));
    assert_eq!(evaluation.reasons[0].team_id, Some(root));
    assert_eq!(evaluation.reasons[0].via_team_id, Some(leaf));
}

#[test]
fn membership_expires_at_exact_instant() {
    let mut world = World::new();
    let organization = world.organization("acme");
    let user = world.collaborator(organization, "ada");
    let team = world.team(organization, None);
    let expiry = at(60);
    world.membership(team, user, organization, Some(expiry));
    let channel = world.resource(organization, "kchat.channel", "general", None, true);
    world.grant(
        organization,
        channel,
        Subject::Team(team),
        &["member"],
        None,
    );

    let just_before = evaluate(&world, user, channel, expiry - Duration::nanoseconds(1));
    let at_expiry = evaluate(&world, user, channel, expiry);

    assert_eq!(names(&just_before), ["member"]);
    assert_eq!(at_expiry.deny_reason, Some(DenyReason::NoGrant));
}

#[test]
fn grant_expires_at_exact_instant() {
    let mut world = World::new();
    let organization = world.organization("acme");
    let user = world.collaborator(organization, "ada");
    let repository = world.resource(organization, "git.repository", "acme/api", None, true);
    let expiry = at(3600);
    world.grant(
        organization,
        repository,
        Subject::User(user),
        &["write"],
        Some(expiry),
    );

    let just_before = evaluate(&world, user, repository, expiry - Duration::nanoseconds(1));
    let at_expiry = evaluate(&world, user, repository, expiry);

    assert_eq!(just_before.level(), Some("write"));
    assert_eq!(at_expiry.deny_reason, Some(DenyReason::NoGrant));
}

#[test]
fn suspended_member_gets_nothing() {
    let mut world = World::new();
    let organization = world.organization("acme");
    let user = world.user("ada");
    world.member(
        organization,
        user,
        MemberRole::Administrator,
        MemberStatus::Suspended,
    );
    let folder = world.folder(organization, "/a", None);
    world.grant(organization, folder, Subject::User(user), &["manage"], None);

    let evaluation = evaluate(&world, user, folder, now());

    assert!(evaluation.permissions.is_empty());
    assert_eq!(evaluation.deny_reason, Some(DenyReason::NotActiveMember));
}

#[test]
fn non_member_gets_nothing() {
    let mut world = World::new();
    let organization = world.organization("acme");
    let other = world.organization("other");
    let user = world.collaborator(other, "ada");
    let folder = world.folder(organization, "/a", None);
    world.grant(organization, folder, Subject::User(user), &["manage"], None);

    assert_eq!(
        evaluate(&world, user, folder, now()).deny_reason,
        Some(DenyReason::NotActiveMember)
    );
}

fn mail_defaults() -> Vec<ResourceTypeDefault> {
    vec![
        ResourceTypeDefault {
            resource_type: "kchat.channel".to_owned(),
            base_level: Some("member".to_owned()),
            administrators_get_highest_level: true,
        },
        ResourceTypeDefault {
            resource_type: "git.repository".to_owned(),
            base_level: Some("read".to_owned()),
            administrators_get_highest_level: true,
        },
    ]
}

#[test]
fn external_member_gets_no_base_level() {
    let mut world = World::new();
    let organization = world.organization_with_defaults("acme", mail_defaults());
    let external = world.user("guest");
    world.member(
        organization,
        external,
        MemberRole::External,
        MemberStatus::Active,
    );
    let collaborator = world.collaborator(organization, "ada");
    let channel = world.resource(organization, "kchat.channel", "general", None, true);

    let for_external = evaluate(&world, external, channel, now());
    let for_collaborator = evaluate(&world, collaborator, channel, now());

    assert_eq!(for_external.deny_reason, Some(DenyReason::NoGrant));
    assert_eq!(for_collaborator.level(), Some("member"));
    assert_eq!(
        for_collaborator.reasons[0].kind,
        ReasonKind::OrganizationBaseLevel
    );
}

#[test]
fn administrators_get_highest_level() {
    let mut world = World::new();
    let organization = world.organization_with_defaults("acme", mail_defaults());
    let owner = world.user("owner");
    world.member(organization, owner, MemberRole::Owner, MemberStatus::Active);
    let repository = world.resource(organization, "git.repository", "acme/api", None, true);

    let evaluation = evaluate(&world, owner, repository, now());

    assert_eq!(evaluation.level(), Some("admin"));
    let kinds: Vec<ReasonKind> = evaluation
        .reasons
        .iter()
        .map(|reason| reason.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            ReasonKind::OrganizationBaseLevel,
            ReasonKind::OrganizationAdministrator
        ]
    );
}

#[test]
fn defaults_ignore_individual_precedence_types() {
    let defaults = vec![ResourceTypeDefault {
        resource_type: "kdrive.folder".to_owned(),
        base_level: Some("view".to_owned()),
        administrators_get_highest_level: true,
    }];
    let mut world = World::new();
    let organization = world.organization_with_defaults("acme", defaults);
    let owner = world.user("owner");
    world.member(organization, owner, MemberRole::Owner, MemberStatus::Active);
    let folder = world.folder(organization, "/a", None);

    assert_eq!(
        evaluate(&world, owner, folder, now()).deny_reason,
        Some(DenyReason::NoGrant)
    );
}

#[test]
fn unknown_permission_names_are_dropped() {
    let mut world = World::new();
    let organization = world.organization("acme");
    let user = world.collaborator(organization, "ada");
    let mailbox = world.resource(organization, "mail.mailbox", "box@acme.test", None, true);
    world.grant(
        organization,
        mailbox,
        Subject::User(user),
        &["read", "fly"],
        None,
    );
    let other = world.resource(organization, "mail.mailbox", "other@acme.test", None, true);
    world.grant(organization, other, Subject::User(user), &["fly"], None);

    assert_eq!(names(&evaluate(&world, user, mailbox, now())), ["read"]);
    assert_eq!(
        evaluate(&world, user, other, now()).deny_reason,
        Some(DenyReason::PermissionNotHeld)
    );
}

#[test]
fn unknown_user_and_resource_are_named() {
    let mut world = World::new();
    let organization = world.organization("acme");
    let user = world.collaborator(organization, "ada");
    let folder = world.folder(organization, "/a", None);

    let unknown_user = evaluate(&world, UserId::generate(), folder, now());
    let unknown_resource = evaluate(&world, user, ResourceId::generate(), now());

    assert_eq!(unknown_user.deny_reason, Some(DenyReason::UnknownUser));
    assert_eq!(
        unknown_resource.deny_reason,
        Some(DenyReason::UnknownResource)
    );
}

#[test]
fn lookups_ignore_case() {
    let mut world = World::new();
    let organization = world.organization("Acme");
    let user = world.collaborator(organization, "Ada.Lovelace");
    let mailbox = world.resource(organization, "mail.mailbox", "Team@Acme.test", None, true);
    let folder = world.folder(organization, "/Shared", None);
    let index = world.index();

    assert_eq!(index.organization_by_name("ACME"), Some(organization));
    assert_eq!(index.user_by_login("ada.lovelace"), Some(user));
    assert_eq!(index.user_by_email("ADA.LOVELACE@EXAMPLE.TEST"), Some(user));
    assert_eq!(
        index.resource_by_key(organization, "mail.mailbox", "team@ACME.TEST"),
        Some(mailbox)
    );
    assert_eq!(
        index.resource_by_key(organization, "kdrive.folder", "/Shared"),
        Some(folder)
    );
    assert_eq!(
        index.resource_by_key(organization, "kdrive.folder", "/shared"),
        None
    );
}

#[test]
fn renamed_user_loses_old_login() {
    let mut world = World::new();
    let organization = world.organization("acme");
    let user = world.collaborator(organization, "ada");
    let mut index = world.index();
    let Some(Entity::User(mut renamed)) = world
        .entities
        .iter()
        .find(|e| matches!(e, Entity::User(_)))
        .cloned()
    else {
        panic!("the world has a user");
    };
    renamed.login = "lovelace".to_owned();
    renamed.email = None;

    index.apply_batch(&batch(2, vec![Change::Upserted(Entity::User(renamed))]));

    assert_eq!(index.user_by_login("ada"), None);
    assert_eq!(index.user_by_login("LOVELACE"), Some(user));
    assert_eq!(index.user_by_email("ada@example.test"), None);
    assert_eq!(index.revision(), Revision(2));
}

#[test]
fn deleted_team_grants_nothing() {
    let mut world = World::new();
    let organization = world.organization("acme");
    let user = world.collaborator(organization, "ada");
    let team = world.team(organization, None);
    world.membership(team, user, organization, None);
    let channel = world.resource(organization, "kchat.channel", "general", None, true);
    world.grant(
        organization,
        channel,
        Subject::Team(team),
        &["member"],
        None,
    );
    let mut index = world.index();

    index.apply_batch(&batch(
        2,
        vec![Change::Deleted {
            key: EntityKey::Team(team),
            organization_id: Some(organization),
        }],
    ));

    assert!(!index.check(user, channel, 0, now()));
    assert!(index.list_resource_access(channel, now()).is_empty());
}

#[test]
fn clone_is_unaffected_by_later_batches() {
    let mut world = World::new();
    let organization = world.organization("acme");
    let user = world.collaborator(organization, "ada");
    let channel = world.resource(organization, "kchat.channel", "general", None, true);
    let published = world.index();
    let mut next = published.clone();

    next.apply_batch(&batch(
        2,
        vec![Change::Upserted(Entity::Grant(support::grant(
            organization,
            channel,
            Subject::User(user),
            &["member"],
            false,
            None,
        )))],
    ));

    assert!(next.check(user, channel, 0, now()));
    assert!(!published.check(user, channel, 0, now()));
    assert_eq!(published.stats().grants, 0);
}

#[test]
fn moved_team_changes_access() {
    let mut world = World::new();
    let organization = world.organization("acme");
    let user = world.collaborator(organization, "ada");
    let granted = world.team(organization, None);
    let elsewhere = world.team(organization, None);
    let moving = world.team(organization, Some(elsewhere));
    world.membership(moving, user, organization, None);
    let channel = world.resource(organization, "kchat.channel", "general", None, true);
    world.grant(
        organization,
        channel,
        Subject::Team(granted),
        &["member"],
        None,
    );
    let mut index = world.index();
    assert!(!index.check(user, channel, 0, now()));

    index.apply_batch(&batch(
        2,
        vec![Change::Upserted(Entity::Team(support::team(
            moving,
            organization,
            Some(granted),
        )))],
    ));

    assert!(index.check(user, channel, 0, now()));
}

#[test]
fn listings_agree_with_evaluation() {
    let mut world = World::new();
    let organization = world.organization_with_defaults("acme", mail_defaults());
    let ada = world.collaborator(organization, "ada");
    let bob = world.collaborator(organization, "bob");
    let guest = world.user("guest");
    world.member(
        organization,
        guest,
        MemberRole::External,
        MemberStatus::Active,
    );
    let parent_team = world.team(organization, None);
    let child_team = world.team(organization, Some(parent_team));
    world.membership(child_team, bob, organization, None);
    let root = world.folder(organization, "/a", None);
    let sub = world.folder(organization, "/a/b", Some(root));
    world.grant(
        organization,
        root,
        Subject::Team(parent_team),
        &["view"],
        None,
    );
    world.grant(organization, root, Subject::User(ada), &["manage"], None);
    world.no_access(organization, sub, ada);
    let channel = world.resource(organization, "kchat.channel", "general", None, true);
    let index = world.index();
    let reference = world.reference();

    let bob_access = index.list_user_access(bob, &AccessFilter::default(), now());
    let ada_access = index.list_user_access(ada, &AccessFilter::default(), now());
    let on_sub = index.list_resource_access(sub, now());
    let on_channel = index.list_resource_access(channel, now());

    assert_eq!(
        bob_access,
        reference.list_user_access(bob, &AccessFilter::default(), now())
    );
    assert_eq!(bob_access.len(), 3);
    assert_eq!(
        ada_access,
        reference.list_user_access(ada, &AccessFilter::default(), now())
    );
    assert_eq!(ada_access.len(), 2);
    assert_eq!(on_sub, reference.list_resource_access(sub, now()));
    assert_eq!(
        on_sub.iter().map(|entry| entry.user_id).collect::<Vec<_>>(),
        [bob]
    );
    assert_eq!(on_channel.len(), 2);
}

#[test]
fn user_listing_filters_by_type_and_organization() {
    let mut world = World::new();
    let organization = world.organization_with_defaults("acme", mail_defaults());
    let user = world.collaborator(organization, "ada");
    let folder = world.folder(organization, "/a", None);
    world.grant(organization, folder, Subject::User(user), &["view"], None);
    world.resource(organization, "kchat.channel", "general", None, true);
    let index = world.index();

    let folders = AccessFilter {
        organization: Some(organization),
        resource_type: Some("kdrive.folder".to_owned()),
    };
    let elsewhere = AccessFilter {
        organization: Some(workteams_domain::OrganizationId::generate()),
        resource_type: None,
    };

    assert_eq!(index.list_user_access(user, &folders, now()).len(), 1);
    assert_eq!(
        index
            .list_user_access(user, &AccessFilter::default(), now())
            .len(),
        2
    );
    assert!(index.list_user_access(user, &elsewhere, now()).is_empty());
}

#[test]
fn entities_may_arrive_in_any_order() {
    let mut world = World::new();
    let organization = world.organization("acme");
    let user = world.collaborator(organization, "ada");
    let parent_team = world.team(organization, None);
    let team = world.team(organization, Some(parent_team));
    world.membership(team, user, organization, None);
    let root = world.folder(organization, "/a", None);
    let sub = world.folder(organization, "/a/b", Some(root));
    world.grant(
        organization,
        root,
        Subject::Team(parent_team),
        &["modify"],
        None,
    );
    let mut reversed = Index::new(support::registry());
    for entity in world.entities.iter().rev() {
        reversed.apply_entity(entity.clone());
    }

    assert_eq!(
        reversed.evaluate(user, sub, now()),
        world.index().evaluate(user, sub, now())
    );
    assert!(reversed.check(user, sub, 1, now()));
}

#[test]
fn stats_count_present_entities() {
    let mut world = World::new();
    let organization = world.organization("acme");
    let user = world.collaborator(organization, "ada");
    let team = world.team(organization, None);
    world.membership(team, user, organization, None);
    let folder = world.folder(organization, "/a", None);
    world.grant(organization, folder, Subject::Team(team), &["view"], None);
    let stats = world.index().stats();

    assert_eq!(stats.organizations, 1);
    assert_eq!(stats.users, 1);
    assert_eq!(stats.members, 1);
    assert_eq!(stats.teams, 1);
    assert_eq!(stats.memberships, 1);
    assert_eq!(stats.resources, 1);
    assert_eq!(stats.grants, 1);
    assert_eq!(stats.resource_types, 7);
}

#[test]
fn teams_swapped_within_one_batch() {
    let mut world = World::new();
    let organization = world.organization("acme");
    let user = world.collaborator(organization, "ada");
    let upper = world.team(organization, None);
    let lower = world.team(organization, Some(upper));
    world.membership(upper, user, organization, None);
    let channel = world.resource(organization, "kchat.channel", "general", None, true);
    world.grant(
        organization,
        channel,
        Subject::Team(lower),
        &["member"],
        None,
    );
    let mut index = world.index();
    assert!(!index.check(user, channel, 0, now()));

    // Moving `upper` under `lower` first makes a cycle until `lower` moves
    // to the top in the same batch.
    index.apply_batch(&batch(
        2,
        vec![
            Change::Upserted(Entity::Team(support::team(
                upper,
                organization,
                Some(lower),
            ))),
            Change::Upserted(Entity::Team(support::team(lower, organization, None))),
        ],
    ));

    let evaluation = index.evaluate(user, channel, now());
    assert_eq!(evaluation.reasons[0].via_team_id, Some(upper));
    assert!(index.check(user, channel, 0, now()));
}

#[test]
fn redefined_type_resolves_grants_again() {
    let mut world = World::new();
    let organization = world.organization("acme");
    let user = world.collaborator(organization, "ada");
    let repository = world.resource(organization, "git.repository", "acme/api", None, true);
    world.grant(
        organization,
        repository,
        Subject::User(user),
        &["write"],
        None,
    );
    let mut index = world.index();
    let mut redefined = (**index
        .resource_type("git.repository")
        .expect("built-in type"))
    .clone();
    redefined.permissions = vec!["write".to_owned(), "admin".to_owned()];

    index.apply_batch(&batch(
        2,
        vec![Change::Upserted(Entity::ResourceType(redefined))],
    ));

    let evaluation = index.evaluate(user, repository, now());
    assert_eq!(evaluation.permission_names(), ["write"]);
}

fn team_role_world(role: MemberRole, expire: Option<DateTime<Utc>>) -> (World, UserId, ResourceId) {
    let mut world = World::new();
    let organization = world.organization_with_defaults("acme", mail_defaults());
    let guest = world.user("guest");
    world.member(
        organization,
        guest,
        MemberRole::External,
        MemberStatus::Active,
    );
    let staff = support::team_with_role(
        workteams_domain::TeamId::generate(),
        organization,
        None,
        Some(role),
    );
    let staff_id = staff.id;
    world.entities.push(Entity::Team(staff));
    let sub_team = world.team(organization, Some(staff_id));
    world.membership(sub_team, guest, organization, expire);
    let repository = world.resource(organization, "git.repository", "acme/api", None, true);
    (world, guest, repository)
}

#[test]
fn team_role_gives_base_level() {
    let (world, guest, repository) = team_role_world(MemberRole::Collaborator, None);

    let evaluation = evaluate(&world, guest, repository, now());

    assert_eq!(evaluation.level(), Some("read"));
    assert_eq!(
        evaluation.reasons[0].kind,
        ReasonKind::OrganizationBaseLevel
    );
}

#[test]
fn team_administrator_role_gives_highest_level() {
    let (world, guest, repository) = team_role_world(MemberRole::Administrator, None);

    assert_eq!(
        evaluate(&world, guest, repository, now()).level(),
        Some("admin")
    );
}

#[test]
fn expired_membership_gives_no_role() {
    let (world, guest, repository) = team_role_world(MemberRole::Administrator, Some(now()));

    assert_eq!(
        evaluate(&world, guest, repository, now()).deny_reason,
        Some(DenyReason::NoGrant)
    );
}

#[test]
fn team_role_of_other_organization_ignored() {
    let (mut world, guest, _) = team_role_world(MemberRole::Administrator, None);
    let other = world.organization_with_defaults("other", mail_defaults());
    world.member(other, guest, MemberRole::External, MemberStatus::Active);
    let repository = world.resource(other, "git.repository", "other/api", None, true);

    assert_eq!(
        evaluate(&world, guest, repository, now()).deny_reason,
        Some(DenyReason::NoGrant)
    );
}

#[test]
fn team_role_member_listed_on_resource() {
    let (world, guest, repository) = team_role_world(MemberRole::Collaborator, None);
    let index = world.index();

    let entries = index.list_resource_access(repository, now());

    assert_eq!(
        entries,
        world.reference().list_resource_access(repository, now())
    );
    assert_eq!(
        entries
            .iter()
            .map(|entry| entry.user_id)
            .collect::<Vec<_>>(),
        [guest]
    );
    assert_eq!(
        index
            .list_user_access(guest, &AccessFilter::default(), now())
            .len(),
        1
    );
}
