use workteams_domain::{MemberRole, ResourceTypeRegistry, Subject, TeamId, UserId};

use super::*;
use crate::current::{CurrentMember, CurrentResource, CurrentTeam, CurrentUser};
use crate::manifest::parse_manifest;

fn registry() -> ResourceTypeRegistry {
    ResourceTypeRegistry::with_builtins(Vec::new()).unwrap()
}

fn desired(text: &str) -> DesiredState {
    parse_manifest("test.yaml", text, &registry())
        .unwrap()
        .state
}

/// What the directory holds after applying `desired` to an empty directory.
fn applied(desired: &DesiredState) -> CurrentState {
    let registry = registry();
    let mut state = CurrentState::default();
    for user in &desired.users {
        state.add_user(CurrentUser {
            id: UserId::generate(),
            login: user.login.clone(),
            email: user.email.clone(),
            display_name: user.display_name.clone().unwrap_or_default(),
        });
    }
    let user_id = |state: &CurrentState, login: &str| state.users[&login_key(login)].id;

    for organization in &desired.organizations {
        let mut current = CurrentOrganization::new(
            OrganizationId::generate(),
            organization.name.clone(),
            organization.display_name.clone(),
            merge_settings(&organization.settings, &OrganizationSettings::default()),
        );
        for member in &organization.members {
            current.members.insert(
                user_id(&state, &member.login),
                CurrentMember {
                    role: member.role,
                    status: member.status,
                },
            );
        }

        let mut team_ids = HashMap::new();
        for team in &organization.teams {
            team_ids.insert(team_key(&team.name), TeamId::generate());
        }
        for team in &organization.teams {
            let id = team_ids[&team_key(&team.name)];
            current.teams.insert(
                id,
                CurrentTeam {
                    name: team.name.clone(),
                    description: team.description.clone().unwrap_or_default(),
                    color: team.color.clone().unwrap_or_default(),
                    parent: team
                        .parent
                        .as_ref()
                        .map(|parent| team_ids[&team_key(parent)]),
                    leaders: team
                        .leaders
                        .iter()
                        .map(|login| user_id(&state, login))
                        .collect(),
                    organization_role: team.organization_role.flatten(),
                },
            );
            for member in &team.members {
                current
                    .memberships
                    .insert((id, user_id(&state, &member.login)), member.expire_time);
            }
        }

        let mut resource_ids = HashMap::new();
        for resource in &organization.resources {
            let key =
                ResourceKey::lookup(&registry, &resource.resource_type, &resource.external_id);
            resource_ids.insert(key, ResourceId::generate());
        }
        for resource in &organization.resources {
            let key =
                ResourceKey::lookup(&registry, &resource.resource_type, &resource.external_id);
            let parent = resource.parent.as_ref().map(|parent| {
                resource_ids[&ResourceKey::lookup(&registry, &resource.resource_type, parent)]
            });
            current.resources.insert(
                resource_ids[&key],
                CurrentResource {
                    resource_type: resource.resource_type.clone(),
                    external_id: resource.external_id.clone(),
                    display_name: resource
                        .display_name
                        .clone()
                        .unwrap_or_else(|| resource.external_id.clone()),
                    parent,
                    inherits: resource.inherits,
                },
            );
        }
        for grant in &organization.grants {
            let resource_id = resource_ids
                [&ResourceKey::lookup(&registry, &grant.resource_type, &grant.external_id)];
            let subject = match &grant.subject {
                SubjectName::Team(name) => Subject::Team(team_ids[&team_key(name)]),
                SubjectName::User(login) => Subject::User(user_id(&state, login)),
            };
            let value = desired_grant_value(grant, &registry);
            current.grants.insert(
                (resource_id, subject),
                CurrentGrant {
                    permissions: value.permissions,
                    no_access: value.no_access,
                    expire_time: value.expire_time,
                },
            );
        }
        state
            .organizations
            .insert(organization_key(&organization.name), current);
    }
    state
}

fn plan_of(desired: &DesiredState, current: &CurrentState, prune: bool) -> Plan {
    compute_plan(desired, current, &registry(), PlanOptions { prune })
}

const COMPANY: &str = "\
organizations:
  - name: acme
    settings:
      defaults:
        kchat.channel: { base_level: member, administrators_get_highest_level: true }
    members:
      - { login: alice, role: owner, display_name: Alice }
      - { login: bob }
      - { login: carol }
      - { login: dave }
      - { login: erin }
    teams:
      - name: Support
        leaders: [alice]
        members: [bob, carol, dave, erin]
      - name: Tier 2
        parent: Support
        members: [carol]
    resources:
      - type: mail.mailbox
        external_id: help@acme.example
        grants:
          - { team: Support, permissions: [send, read] }
          - { user: bob, permissions: [read] }
          - { user: carol, permissions: [read] }
          - { user: dave, permissions: [read] }
          - { user: erin, permissions: [read] }
      - type: kdrive.folder
        external_id: \"10\"
        grants:
          - { team: Tier 2, level: modify }
";

#[test]
fn new_organization_adds_everything() {
    let desired = desired(COMPANY);
    let plan = plan_of(&desired, &CurrentState::default(), false);
    let organization = &plan.organizations[0];
    assert!(organization.is_created());
    assert_eq!(plan.users_created.len(), 5);
    assert_eq!(organization.members.added.len(), 5);
    assert_eq!(organization.teams.added.len(), 2);
    assert_eq!(organization.memberships.added.len(), 6);
    assert_eq!(organization.resources.added.len(), 2);
    assert_eq!(organization.grants.added.len(), 6);
}

#[test]
fn applied_state_plans_nothing() {
    let desired = desired(COMPANY);
    let current = applied(&desired);
    let plan = plan_of(&desired, &current, true);
    assert!(plan.is_empty(), "{plan:#?}");
}

#[test]
fn permission_order_does_not_matter() {
    let desired = desired(COMPANY);
    let mut current = applied(&desired);
    for grant in current
        .organizations
        .get_mut("acme")
        .unwrap()
        .grants
        .values_mut()
    {
        grant.permissions.reverse();
    }
    assert!(plan_of(&desired, &current, true).is_empty());
}

#[test]
fn login_case_variant_is_same_user() {
    let desired_state = desired(COMPANY);
    let mut current = applied(&desired_state);
    let bob = current.users.get_mut("bob").unwrap();
    bob.login = "BOB".to_owned();
    let plan = plan_of(&desired_state, &current, true);
    assert!(plan.users_created.is_empty());
    assert!(plan.is_empty());
}

#[test]
fn previous_name_renames_team() {
    let before = desired(COMPANY);
    let current = applied(&before);
    let support_id = current.organizations["acme"]
        .teams
        .iter()
        .find(|(_, team)| team.name == "Support")
        .map(|(id, _)| *id)
        .unwrap();

    let renamed = COMPANY
        .replace(
            "      - name: Support\n",
            "      - name: Helpdesk\n        previous_names: [Support]\n",
        )
        .replace("parent: Support", "parent: Helpdesk")
        .replace("team: Support", "team: Helpdesk");
    let plan = plan_of(&desired(&renamed), &current, true);
    let organization = &plan.organizations[0];

    assert!(organization.teams.added.is_empty());
    assert!(organization.teams.removed.is_empty());
    assert_eq!(organization.teams.changed.len(), 1);
    assert_eq!(organization.teams.changed[0].id, support_id);
    assert_eq!(
        organization.teams.changed[0].rename,
        Some(Change {
            from: "Support".to_owned(),
            to: "Helpdesk".to_owned()
        })
    );
    assert!(organization.grants.added.is_empty());
    assert!(organization.memberships.added.is_empty());
}

#[test]
fn previous_external_id_renames_resource() {
    let before = desired(COMPANY);
    let current = applied(&before);
    let renamed = COMPANY.replace(
        "        external_id: help@acme.example\n",
        "        external_id: support@acme.example\n        previous_external_ids: [help@acme.example]\n",
    );
    let plan = plan_of(&desired(&renamed), &current, true);
    let organization = &plan.organizations[0];
    assert!(organization.resources.added.is_empty());
    assert_eq!(organization.resources.changed.len(), 1);
    assert!(organization.grants.added.is_empty());
    assert!(organization.grants.removed.is_empty());
}

#[test]
fn removals_are_listed_and_counted() {
    let before = desired(COMPANY);
    let current = applied(&before);
    let smaller = COMPANY
        .replace(
            "      - name: Tier 2\n        parent: Support\n        members: [carol]\n",
            "",
        )
        .replace(
            "        grants:\n          - { team: Tier 2, level: modify }\n",
            "",
        )
        .replace("          - { user: erin, permissions: [read] }\n", "");
    let plan = plan_of(&desired(&smaller), &current, true);
    let organization = &plan.organizations[0];

    assert_eq!(organization.teams.removed.len(), 1);
    assert_eq!(organization.teams.removed[0].membership_count, 1);
    assert_eq!(organization.teams.removed[0].grant_count, 1);
    assert_eq!(organization.grants.removed.len(), 1);
    assert_eq!(organization.removed_grants(), 2);
    assert_eq!(organization.removed_memberships(), 1);
}

#[test]
fn removal_guard_uses_share() {
    let before = desired(COMPANY);
    let current = applied(&before);
    let smaller = COMPANY
        .replace("          - { user: erin, permissions: [read] }\n", "")
        .replace("          - { user: dave, permissions: [read] }\n", "");
    let plan = plan_of(&desired(&smaller), &current, true);

    // 2 of 6 grants is 33 %.
    let over = plan.removals_over(20);
    assert_eq!(over.len(), 1);
    assert_eq!(over[0].kind, "grants");
    assert_eq!((over[0].removed, over[0].current), (2, 6));
    assert!(plan.removals_over(40).is_empty());
}

#[test]
fn nothing_removed_is_empty_without_prune() {
    let before = desired(COMPANY);
    let current = applied(&before);
    let smaller = COMPANY.replace("          - { user: erin, permissions: [read] }\n", "");
    let plan = plan_of(&desired(&smaller), &current, false);
    assert!(plan.is_empty());
    assert_eq!(plan.removal_count(), 1);
}

#[test]
fn unmentioned_leader_stays_without_prune() {
    let before = desired(COMPANY);
    let mut current = applied(&before);
    let frank = UserId::generate();
    current.add_user(CurrentUser {
        id: frank,
        login: "frank".to_owned(),
        email: None,
        display_name: String::new(),
    });
    let organization = current.organizations.get_mut("acme").unwrap();
    organization.members.insert(
        frank,
        CurrentMember {
            role: MemberRole::Collaborator,
            status: workteams_domain::MemberStatus::Active,
        },
    );
    let support_id = organization
        .teams
        .iter()
        .find(|(_, team)| team.name == "Support")
        .map(|(id, _)| *id)
        .unwrap();
    organization
        .teams
        .get_mut(&support_id)
        .unwrap()
        .leaders
        .insert(frank);
    organization.memberships.insert((support_id, frank), None);

    let kept = plan_of(&before, &current, false);
    assert!(kept.organizations[0].teams.changed.is_empty());

    let pruned = plan_of(&before, &current, true);
    let change = &pruned.organizations[0].teams.changed[0];
    assert_eq!(
        change.leaders.as_ref().unwrap().to,
        vec!["alice".to_owned()]
    );
}

#[test]
fn changed_role_and_expiry_are_changes() {
    let before = desired(COMPANY);
    let current = applied(&before);
    let changed = COMPANY
        .replace(
            "      - { login: bob }\n",
            "      - { login: bob, role: administrator }\n",
        )
        .replace(
            "        members: [carol]\n",
            "        members: [{ login: carol, expires: 2031-01-01 }]\n",
        );
    let plan = plan_of(&desired(&changed), &current, false);
    let organization = &plan.organizations[0];
    assert_eq!(organization.members.changed.len(), 1);
    assert_eq!(
        organization.members.changed[0].role.to,
        MemberRole::Administrator
    );
    assert_eq!(organization.memberships.changed.len(), 1);
}

#[test]
fn settings_keep_base_level_when_unmanaged() {
    let current = OrganizationSettings {
        leaders_manage_members: true,
        resource_type_defaults: vec![ResourceTypeDefault {
            resource_type: "git.repository".to_owned(),
            base_level: Some("read".to_owned()),
            administrators_get_highest_level: false,
        }],
    };
    let mut desired = DesiredSettings::default();
    desired.resource_type_defaults.insert(
        "git.repository".to_owned(),
        Some(crate::desired::TypeDefault {
            base_level: BaseLevel::Keep,
            administrators_get_highest_level: true,
        }),
    );
    let merged = merge_settings(&desired, &current);
    assert!(merged.leaders_manage_members);
    assert_eq!(
        merged.resource_type_defaults[0].base_level.as_deref(),
        Some("read")
    );
    assert!(merged.resource_type_defaults[0].administrators_get_highest_level);
}

#[test]
fn parent_change_is_detected() {
    let before = desired(COMPANY);
    let current = applied(&before);
    let moved = COMPANY.replace("        parent: Support\n", "");
    let plan = plan_of(&desired(&moved), &current, false);
    let change = &plan.organizations[0].teams.changed[0];
    assert_eq!(
        change.parent,
        Some(Change {
            from: Some("Support".to_owned()),
            to: None
        })
    );
}

#[test]
fn team_role_change_is_detected() {
    let before = desired(COMPANY);
    let current = applied(&before);
    let with_role = COMPANY.replace(
        "      - name: Tier 2\n",
        "      - name: Tier 2\n        organization_role: administrator\n",
    );
    let plan = plan_of(&desired(&with_role), &current, false);
    let change = &plan.organizations[0].teams.changed[0];
    assert_eq!(
        change.organization_role,
        Some(Change {
            from: None,
            to: Some(MemberRole::Administrator)
        })
    );

    let unmanaged = plan_of(&before, &applied(&desired(&with_role)), false);
    assert!(unmanaged.is_empty());
}
