//! kDrive folders: individual grants take precedence over team grants, and
//! grants reach subfolders unless inheritance is broken.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use workteams_proto::directory::v1::MemberRole;
use workteams_tests::{GrantTo, Stack, for_each_database};

const FOLDER: &str = "kdrive.folder";

/// An organization with a team "design" containing one collaborator, and
/// the folders /A and /A/B.
struct Drive {
    organization: String,
    user: String,
    team: String,
    folder_a: String,
    folder_b: String,
}

async fn drive(stack: &Stack, folder_b_inherits: bool) -> Drive {
    let admin = &stack.admin;
    let organization = admin.organization("acme").await.id;
    let user = admin.collaborator(&organization, "ada").await.id;
    let (team, _) = admin.team(&organization, "design", None, &[(&user, None)]).await;
    let folder_a = admin.resource(&organization, FOLDER, "A", None, true).await.id;
    let folder_b = admin
        .resource(&organization, FOLDER, "A/B", Some(&folder_a), folder_b_inherits)
        .await
        .id;
    Drive {
        organization,
        user,
        team: team.id,
        folder_a,
        folder_b,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn individual_no_access_beats_team() {
    for_each_database(|stack| async move {
        let drive = drive(&stack, true).await;
        stack.admin.grant(&drive.folder_a, GrantTo::Team(&drive.team), &["manage"], None).await;
        let token = stack.admin.deny(&drive.folder_a, &drive.user).await;

        let check = stack.authz.check(&drive.user, &drive.folder_a, "view", &token).await;

        assert!(!check.allowed);
        assert_eq!(check.deny_reason(), workteams_proto::authz::v1::DenyReason::IndividualOverride);
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_grant_reaches_subfolder() {
    for_each_database(|stack| async move {
        let drive = drive(&stack, true).await;
        let token = stack.admin.grant(&drive.folder_a, GrantTo::Team(&drive.team), &["modify"], None).await;

        let check = stack.authz.check(&drive.user, &drive.folder_b, "modify", &token).await;

        assert!(check.allowed);
        assert_eq!(check.level, "modify");
        assert_eq!(check.permissions, ["view", "modify"]);
        let reason = &check.reasons[0];
        assert_eq!(reason.resource_id, drive.folder_a);
        assert_eq!(reason.team_id, drive.team);
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_inheritance_stops_grant() {
    for_each_database(|stack| async move {
        let drive = drive(&stack, false).await;
        let token = stack.admin.grant(&drive.folder_a, GrantTo::Team(&drive.team), &["modify"], None).await;

        let parent = stack.authz.check(&drive.user, &drive.folder_a, "view", &token).await;
        let child = stack.authz.check(&drive.user, &drive.folder_b, "view", &token).await;

        assert!(parent.allowed);
        assert!(!child.allowed);
        assert_eq!(child.deny_reason(), workteams_proto::authz::v1::DenyReason::NoGrant);
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn individual_view_caps_team_manage() {
    for_each_database(|stack| async move {
        let drive = drive(&stack, true).await;
        stack.admin.grant(&drive.folder_a, GrantTo::User(&drive.user), &["view"], None).await;
        let token = stack.admin.grant(&drive.folder_b, GrantTo::Team(&drive.team), &["manage"], None).await;

        let view = stack.authz.check(&drive.user, &drive.folder_b, "view", &token).await;
        let manage = stack.authz.check(&drive.user, &drive.folder_b, "manage", &token).await;

        assert!(view.allowed);
        assert_eq!(view.level, "view");
        assert!(!manage.allowed);
        assert_eq!(manage.deny_reason(), workteams_proto::authz::v1::DenyReason::IndividualOverride);
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrator_without_grant_is_denied() {
    for_each_database(|stack| async move {
        let drive = drive(&stack, true).await;
        let administrator = stack.admin.user("grace").await.id;
        let token = stack
            .admin
            .member(&drive.organization, &administrator, MemberRole::Administrator)
            .await;

        let check = stack.authz.check(&administrator, &drive.folder_a, "view", &token).await;

        assert!(!check.allowed);
        stack
    })
    .await;
}
