//! The plan as text for a person: per organization, what is added (`+`),
//! changed (`~`) and removed (`-`), grouped by kind, then a summary.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use workteams_domain::{MemberRole, MemberStatus, OrganizationSettings, ResourceTypeDefault};

use crate::desired::SubjectName;
use crate::plan::{GrantValue, OrganizationPlan, Plan};

/// Renders the whole plan. Removals are listed under a note when the plan
/// was made without `--prune`.
pub fn render_plan(plan: &Plan) -> String {
    let mut out = String::new();

    if !plan.users_created.is_empty() || !plan.users_changed.is_empty() {
        out.push_str("users\n");
        let mut new_logins: Vec<&str> = plan
            .users_created
            .iter()
            .map(|user| user.login.as_str())
            .collect();
        new_logins.sort_by_key(|login| login.to_lowercase());
        if !new_logins.is_empty() {
            let head = format!("  + {} new: ", count(new_logins.len(), "user"));
            out.push_str(&wrapped_list(&head, &new_logins, 4));
        }
        for user in &plan.users_changed {
            let mut parts = Vec::new();
            if let Some(email) = &user.email {
                parts.push(format!(
                    "e-mail {} → {}",
                    optional_text(email.from.as_deref()),
                    optional_text(email.to.as_deref())
                ));
            }
            if let Some(name) = &user.display_name {
                parts.push(format!("display name {:?} → {:?}", name.from, name.to));
            }
            let _ = writeln!(out, "  ~ {}: {}", user.login, parts.join("; "));
        }
        out.push('\n');
    }

    for organization in &plan.organizations {
        render_organization(&mut out, organization, plan.options.prune);
    }

    let added = plan.upsert_count();
    let removed = plan.removal_count();
    if plan.is_empty() {
        out.push_str("No changes.\n");
    } else if plan.options.prune {
        let _ = writeln!(
            out,
            "Plan: {} to add or change, {} to remove.",
            count(added, "item"),
            count(removed, "item")
        );
    } else {
        let _ = writeln!(out, "Plan: {} to add or change.", count(added, "item"));
    }
    if !plan.options.prune && removed > 0 {
        let _ = writeln!(
            out,
            "Note: {} in the directory {} not in the file; they are kept unless you pass --prune.",
            count(removed, "item"),
            if removed == 1 { "is" } else { "are" }
        );
    }
    out
}

fn render_organization(out: &mut String, organization: &OrganizationPlan, prune: bool) {
    let has_upserts = organization.upsert_count() > 0;
    let has_removals = organization.removal_count() > 0;
    if !has_upserts && !has_removals {
        return;
    }

    if organization.is_created() {
        let _ = writeln!(out, "organization {} (new)", organization.name);
        let _ = writeln!(out, "  + display name {:?}", organization.new_display_name);
        if organization.new_settings != OrganizationSettings::default() {
            let _ = writeln!(
                out,
                "  + settings: {}",
                settings_text(&organization.new_settings)
            );
        }
    } else {
        let _ = writeln!(out, "organization {}", organization.name);
        if let Some(name) = &organization.display_name {
            let _ = writeln!(out, "  ~ display name {:?} → {:?}", name.from, name.to);
        }
        if let Some(settings) = &organization.settings {
            let _ = writeln!(
                out,
                "  ~ settings: {} → {}",
                settings_text(&settings.from),
                settings_text(&settings.to)
            );
        }
    }

    if has_upserts {
        render_upserts(out, organization);
    }
    if has_removals {
        if prune {
            render_removals(out, organization, "  ");
        } else {
            out.push_str("  not in the file (removed only with --prune):\n");
            render_removals(out, organization, "    ");
        }
    }
    out.push('\n');
}

fn render_upserts(out: &mut String, organization: &OrganizationPlan) {
    let members = &organization.members;
    if !members.added.is_empty() || !members.changed.is_empty() {
        out.push_str("  members\n");
        // Owners first, as MemberRole orders them; suspended after active.
        let mut by_role: BTreeMap<(MemberRole, bool), Vec<&str>> = BTreeMap::new();
        for member in &members.added {
            let suspended = member.status == MemberStatus::Suspended;
            by_role
                .entry((member.role, suspended))
                .or_default()
                .push(member.login.as_str());
        }
        for ((role, suspended), logins) in by_role {
            let label = if suspended {
                format!("{}, suspended", role.as_str())
            } else {
                role.as_str().to_owned()
            };
            let head = format!("    + {} ({label}): ", count(logins.len(), "member"));
            out.push_str(&wrapped_list(&head, &logins, 6));
        }
        for member in &members.changed {
            let mut parts = Vec::new();
            if member.role.from != member.role.to {
                parts.push(format!(
                    "{} → {}",
                    member.role.from.as_str(),
                    member.role.to.as_str()
                ));
            }
            if member.status.from != member.status.to {
                parts.push(format!(
                    "{} → {}",
                    member.status.from.as_str(),
                    member.status.to.as_str()
                ));
            }
            let _ = writeln!(out, "    ~ {}: {}", member.login, parts.join(", "));
        }
    }

    let resources = &organization.resources;
    if !resources.added.is_empty() || !resources.changed.is_empty() {
        out.push_str("  resources\n");
        for resource in &resources.added {
            let mut details = Vec::new();
            if resource.display_name != resource.external_id {
                details.push(format!("{:?}", resource.display_name));
            }
            if let Some(parent) = &resource.parent {
                details.push(format!("in {parent}"));
            }
            if !resource.inherits {
                details.push("inheritance broken".to_owned());
            }
            let suffix = if details.is_empty() {
                String::new()
            } else {
                format!(" ({})", details.join(", "))
            };
            let _ = writeln!(
                out,
                "    + {} {}{suffix}",
                resource.resource_type, resource.external_id
            );
        }
        for resource in &resources.changed {
            let mut parts = Vec::new();
            if let Some(rename) = &resource.rename {
                parts.push(format!("renamed from {}", rename.from));
            }
            if let Some(name) = &resource.display_name {
                parts.push(format!("display name {:?} → {:?}", name.from, name.to));
            }
            if let Some(parent) = &resource.parent {
                parts.push(format!(
                    "parent {} → {}",
                    optional_text(parent.from.as_deref()),
                    optional_text(parent.to.as_deref())
                ));
            }
            if let Some(inherits) = &resource.inherits {
                parts.push(
                    if inherits.to {
                        "inherits again"
                    } else {
                        "inheritance broken"
                    }
                    .to_owned(),
                );
            }
            let _ = writeln!(
                out,
                "    ~ {} {}: {}",
                resource.resource_type,
                resource.external_id,
                parts.join("; ")
            );
        }
    }

    let teams = &organization.teams;
    if !teams.added.is_empty() || !teams.changed.is_empty() {
        out.push_str("  teams\n");
        for team in &teams.added {
            let mut details = Vec::new();
            if let Some(parent) = &team.parent {
                details.push(format!("in {parent}"));
            }
            if !team.leaders.is_empty() {
                details.push(format!("led by {}", team.leaders.join(", ")));
            }
            if let Some(role) = team.organization_role {
                details.push(format!("members are {}s", role.as_str()));
            }
            let suffix = if details.is_empty() {
                String::new()
            } else {
                format!(" ({})", details.join(", "))
            };
            let _ = writeln!(out, "    + {}{suffix}", team.name);
        }
        for team in &teams.changed {
            let mut parts = Vec::new();
            if let Some(rename) = &team.rename {
                parts.push(format!("renamed from {}", rename.from));
            }
            if let Some(description) = &team.description {
                parts.push(format!(
                    "description {:?} → {:?}",
                    description.from, description.to
                ));
            }
            if let Some(color) = &team.color {
                parts.push(format!(
                    "color {} → {}",
                    optional_text(Some(color.from.as_str()).filter(|text| !text.is_empty())),
                    optional_text(Some(color.to.as_str()).filter(|text| !text.is_empty()))
                ));
            }
            if let Some(parent) = &team.parent {
                parts.push(format!(
                    "parent {} → {}",
                    optional_text(parent.from.as_deref()),
                    optional_text(parent.to.as_deref())
                ));
            }
            if let Some(role) = &team.organization_role {
                parts.push(format!(
                    "organization role {} → {}",
                    role.from.map_or("none", MemberRole::as_str),
                    role.to.map_or("none", MemberRole::as_str)
                ));
            }
            if let Some(leaders) = &team.leaders {
                parts.push(format!(
                    "leaders {} → {}",
                    list_text(&leaders.from),
                    list_text(&leaders.to)
                ));
            }
            let _ = writeln!(out, "    ~ {}: {}", team.name, parts.join("; "));
        }
    }

    let memberships = &organization.memberships;
    if !memberships.added.is_empty() || !memberships.changed.is_empty() {
        out.push_str("  team members\n");
        let mut by_team: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for membership in &memberships.added {
            let entry = match membership.expire_time {
                Some(expiry) => format!("{} (until {})", membership.login, time_text(expiry)),
                None => membership.login.clone(),
            };
            by_team
                .entry(membership.team.as_str())
                .or_default()
                .push(entry);
        }
        for (team, logins) in by_team {
            out.push_str(&wrapped_list(&format!("    + {team}: "), &logins, 6));
        }
        for membership in &memberships.changed {
            let _ = writeln!(
                out,
                "    ~ {} in {}: expiry {} → {}",
                membership.login,
                membership.team,
                expiry_text(membership.expire_time.from),
                expiry_text(membership.expire_time.to)
            );
        }
    }

    let grants = &organization.grants;
    if !grants.added.is_empty() || !grants.changed.is_empty() {
        out.push_str("  grants\n");
        for grant in &grants.added {
            let _ = writeln!(
                out,
                "    + {} {} to {}: {}",
                grant.resource_type,
                grant.external_id,
                subject_text(&grant.subject),
                grant_text(&grant.value)
            );
        }
        for grant in &grants.changed {
            let _ = writeln!(
                out,
                "    ~ {} {} to {}: {} → {}",
                grant.resource_type,
                grant.external_id,
                subject_text(&grant.subject),
                grant_text(&grant.value.from),
                grant_text(&grant.value.to)
            );
        }
    }
}

fn render_removals(out: &mut String, organization: &OrganizationPlan, indent: &str) {
    for member in &organization.members.removed {
        let _ = writeln!(
            out,
            "{indent}- member {} ({}), with their team memberships and grants",
            member.login,
            member.role.as_str()
        );
    }
    for team in &organization.teams.removed {
        let _ = writeln!(
            out,
            "{indent}- team {} (with {} and {})",
            team.name,
            count(team.membership_count, "membership"),
            count(team.grant_count, "grant")
        );
    }
    let mut by_team: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for membership in &organization.memberships.removed {
        by_team
            .entry(membership.team.as_str())
            .or_default()
            .push(membership.login.as_str());
    }
    for (team, logins) in by_team {
        let head = format!("{indent}- team members of {team}: ");
        out.push_str(&wrapped_list(&head, &logins, indent.len() + 2));
    }
    for resource in &organization.resources.removed {
        let _ = writeln!(
            out,
            "{indent}- {} {} (with {})",
            resource.resource_type,
            resource.external_id,
            count(resource.grant_count, "grant")
        );
    }
    for grant in &organization.grants.removed {
        let _ = writeln!(
            out,
            "{indent}- grant on {} {} to {}: {}",
            grant.resource_type,
            grant.external_id,
            subject_text(&grant.subject_name),
            grant_text(&grant.value)
        );
    }
}

/// Width at which long lists of names wrap, in characters.
const LINE_WIDTH: usize = 100;

/// Writes `head` followed by the comma-separated `items`, wrapped at
/// [`LINE_WIDTH`] with continuation lines indented by `indent` spaces.
fn wrapped_list<S: AsRef<str>>(head: &str, items: &[S], indent: usize) -> String {
    let mut text = String::from(head);
    let mut line_length = head.chars().count();
    for (index, item) in items.iter().enumerate() {
        let item = item.as_ref();
        let separator = if index + 1 < items.len() { "," } else { "" };
        let width = item.chars().count() + separator.len();
        if index > 0 {
            if line_length + 1 + width > LINE_WIDTH {
                text.push('\n');
                text.extend(std::iter::repeat_n(' ', indent));
                line_length = indent;
            } else {
                text.push(' ');
                line_length += 1;
            }
        }
        text.push_str(item);
        text.push_str(separator);
        line_length += width;
    }
    text.push('\n');
    text
}

pub fn subject_text(subject: &SubjectName) -> String {
    match subject {
        SubjectName::Team(name) => format!("team {name}"),
        SubjectName::User(login) => format!("user {login}"),
    }
}

fn grant_text(value: &GrantValue) -> String {
    let access = if value.no_access {
        "no access".to_owned()
    } else {
        value.permissions.join(", ")
    };
    match value.expire_time {
        Some(expiry) => format!("{access} until {}", time_text(expiry)),
        None => access,
    }
}

fn settings_text(settings: &OrganizationSettings) -> String {
    let mut parts = vec![format!(
        "leaders {} members",
        if settings.leaders_manage_members {
            "manage"
        } else {
            "do not manage"
        }
    )];
    for default in &settings.resource_type_defaults {
        parts.push(default_text(default));
    }
    parts.join(", ")
}

fn default_text(default: &ResourceTypeDefault) -> String {
    let base = default.base_level.as_deref().unwrap_or("none");
    if default.administrators_get_highest_level {
        format!(
            "{} base {base}, administrators highest",
            default.resource_type
        )
    } else {
        format!("{} base {base}", default.resource_type)
    }
}

pub fn time_text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn expiry_text(time: Option<DateTime<Utc>>) -> String {
    time.map_or_else(|| "never".to_owned(), time_text)
}

fn optional_text(text: Option<&str>) -> String {
    text.map_or_else(|| "none".to_owned(), str::to_owned)
}

fn list_text(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

pub fn count(number: usize, noun: &str) -> String {
    if number == 1 {
        format!("1 {noun}")
    } else {
        format!("{number} {noun}s")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn long_lists_wrap() {
        let logins: Vec<String> = (0..30).map(|number| format!("dev{number:04}")).collect();
        let text = wrapped_list("  + 30 users new: ", &logins, 4);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines.iter().all(|line| line.chars().count() <= LINE_WIDTH));
        assert!(lines[1].starts_with("    dev"));
        assert!(text.ends_with("dev0029\n"));
    }

    #[test]
    fn short_list_stays_on_one_line() {
        assert_eq!(
            wrapped_list("  + team: ", &["a", "b"], 4),
            "  + team: a, b\n"
        );
    }
}
