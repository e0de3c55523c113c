//! Organization roles given through teams, as the sidecar applies them:
//! an administrator team lifts its members and the members of its
//! descendant teams to the highest level where the organization gives
//! administrators the highest level.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use workteams_proto::authz::v1::ReasonKind;
use workteams_proto::directory::v1 as directory;
use workteams_tests::for_each_database;

const REPOSITORY: &str = "git.repository";

/// Members read every repository; administrators hold admin on them.
fn repository_defaults() -> directory::OrganizationSettings {
    directory::OrganizationSettings {
        leaders_manage_members: false,
        resource_type_defaults: vec![directory::ResourceTypeDefault {
            resource_type: REPOSITORY.to_owned(),
            base_level: "read".to_owned(),
            administrators_get_highest_level: true,
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administrator_team_gives_highest_level() {
    for_each_database(|stack| async move {
        let admin = &stack.admin;
        let organization = admin.organization_with("acme", Some(repository_defaults())).await.id;
        let direct = admin.collaborator(&organization, "ada").await.id;
        let nested = admin.collaborator(&organization, "grace").await.id;
        let outsider = admin.collaborator(&organization, "linus").await.id;
        let (parent, _) = admin.team(&organization, "platform", None, &[(&direct, None)]).await;
        admin
            .team(&organization, "platform/release", Some(&parent.id), &[(&nested, None)])
            .await;
        let repository = admin.resource(&organization, REPOSITORY, "acme/api", None, true).await.id;

        let given = admin.set_team_role(&parent.id, directory::MemberRole::Administrator).await;
        let direct_check = stack.authz.check(&direct, &repository, "admin", &given).await;
        let nested_check = stack.authz.check(&nested, &repository, "admin", &given).await;
        let outsider_check = stack.authz.check(&outsider, &repository, "admin", &given).await;

        assert!(direct_check.allowed);
        assert_eq!(direct_check.level, "admin");
        assert!(
            direct_check
                .reasons
                .iter()
                .any(|reason| reason.kind() == ReasonKind::OrganizationAdministrator)
        );
        assert!(nested_check.allowed);
        assert_eq!(nested_check.level, "admin");
        assert!(!outsider_check.allowed);
        assert_eq!(outsider_check.level, "read");
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_team_role_gives_base_level() {
    for_each_database(|stack| async move {
        let admin = &stack.admin;
        let organization = admin.organization_with("acme", Some(repository_defaults())).await.id;
        let direct = admin.collaborator(&organization, "ada").await.id;
        let nested = admin.collaborator(&organization, "grace").await.id;
        let (parent, _) = admin.team(&organization, "platform", None, &[(&direct, None)]).await;
        admin
            .team(&organization, "platform/release", Some(&parent.id), &[(&nested, None)])
            .await;
        let repository = admin.resource(&organization, REPOSITORY, "acme/api", None, true).await.id;
        let given = admin.set_team_role(&parent.id, directory::MemberRole::Administrator).await;
        let nested_before = stack.authz.check(&nested, &repository, "admin", &given).await;

        let removed = admin.set_team_role(&parent.id, directory::MemberRole::Unspecified).await;
        let direct_after = stack.authz.check(&direct, &repository, "admin", &removed).await;
        let nested_after = stack.authz.check(&nested, &repository, "admin", &removed).await;

        assert!(nested_before.allowed);
        assert!(!direct_after.allowed);
        assert_eq!(direct_after.level, "read");
        assert!(!nested_after.allowed);
        assert_eq!(nested_after.level, "read");
        stack
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collaborator_team_gives_base_level_only() {
    for_each_database(|stack| async move {
        let admin = &stack.admin;
        let organization = admin.organization_with("acme", Some(repository_defaults())).await.id;
        let guest = admin.user("guest").await.id;
        admin.member(&organization, &guest, directory::MemberRole::External).await;
        let (team, _) = admin.team(&organization, "contractors", None, &[(&guest, None)]).await;
        let repository = admin.resource(&organization, REPOSITORY, "acme/api", None, true).await.id;

        let given = admin.set_team_role(&team.id, directory::MemberRole::Collaborator).await;
        let check = stack.authz.check(&guest, &repository, "read", &given).await;

        assert!(check.allowed);
        assert_eq!(check.level, "read");
        stack
    })
    .await;
}
