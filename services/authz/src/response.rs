//! Conversion of decisions and listing entries into response messages.

use std::time::Duration;

use workteams_domain::ResourceTypeDef;
use workteams_evaluation::{AccessEntry, DenyReason, Evaluation, Index, Reason, ReasonKind};
use workteams_proto::authz::v1 as proto;

use crate::access::{Decision, Denial};

/// Fills the decision fields of a check response; the caller adds the
/// revision, token and staleness.
pub fn check_response(decision: &Decision) -> proto::CheckAccessResponse {
    let evaluation = decision.evaluation.as_ref();
    proto::CheckAccessResponse {
        allowed: decision.allowed(),
        level: evaluation.and_then(Evaluation::level).unwrap_or_default().to_owned(),
        permissions: evaluation
            .map(|evaluation| evaluation.permission_names().into_iter().map(str::to_owned).collect())
            .unwrap_or_default(),
        reasons: evaluation.map(reasons).unwrap_or_default(),
        deny_reason: decision.denial.map_or(proto::DenyReason::Unspecified, deny_reason).into(),
        consistency_token: String::new(),
        revision: 0,
        staleness: None,
        user_id: decision.user_id.map(|id| id.to_string()).unwrap_or_default(),
        resource_id: decision.resource_id.map(|id| id.to_string()).unwrap_or_default(),
    }
}

/// Converts one listing entry, looking up the login and resource details.
pub fn access_entry(index: &Index, entry: &AccessEntry) -> proto::AccessEntry {
    let AccessEntry {
        user_id,
        resource_id,
        organization_id,
        evaluation,
    } = entry;
    let resource = index.resource(*resource_id);

    proto::AccessEntry {
        user_id: user_id.to_string(),
        user_login: index.user(*user_id).map(|user| user.login.to_owned()).unwrap_or_default(),
        resource_id: resource_id.to_string(),
        resource_type: resource.map(|resource| resource.resource_type.to_owned()).unwrap_or_default(),
        external_id: resource.map(|resource| resource.external_id.to_owned()).unwrap_or_default(),
        organization_id: organization_id.to_string(),
        level: evaluation.level().unwrap_or_default().to_owned(),
        permissions: evaluation.permission_names().into_iter().map(str::to_owned).collect(),
        reasons: reasons(evaluation),
    }
}

fn reasons(evaluation: &Evaluation) -> Vec<proto::Reason> {
    let definition = evaluation.resource_type.as_deref();
    evaluation.reasons.iter().map(|reason| self::reason(definition, reason)).collect()
}

fn reason(definition: Option<&ResourceTypeDef>, reason: &Reason) -> proto::Reason {
    let Reason {
        kind,
        resource_id,
        team_id,
        via_team_id,
        permissions,
        no_access,
    } = reason;

    let kind = match kind {
        ReasonKind::IndividualGrant => proto::ReasonKind::IndividualGrant,
        ReasonKind::TeamGrant => proto::ReasonKind::TeamGrant,
        ReasonKind::OrganizationBaseLevel => proto::ReasonKind::OrganizationBaseLevel,
        ReasonKind::OrganizationAdministrator => proto::ReasonKind::OrganizationAdministrator,
    };
    proto::Reason {
        kind: kind.into(),
        resource_id: resource_id.to_string(),
        team_id: team_id.map(|id| id.to_string()).unwrap_or_default(),
        via_team_id: via_team_id.map(|id| id.to_string()).unwrap_or_default(),
        permissions: definition
            .map(|definition| {
                definition
                    .permission_names(*permissions)
                    .into_iter()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        no_access: *no_access,
    }
}

pub fn deny_reason(denial: Denial) -> proto::DenyReason {
    match denial {
        Denial::Evaluated(DenyReason::NoGrant) => proto::DenyReason::NoGrant,
        Denial::Evaluated(DenyReason::IndividualOverride) => proto::DenyReason::IndividualOverride,
        Denial::Evaluated(DenyReason::PermissionNotHeld) => proto::DenyReason::PermissionNotHeld,
        Denial::Evaluated(DenyReason::NotActiveMember) => proto::DenyReason::NotActiveMember,
        Denial::Evaluated(DenyReason::UnknownUser) | Denial::UnknownUser => proto::DenyReason::UnknownUser,
        Denial::Evaluated(DenyReason::UnknownResource) | Denial::UnknownResource => proto::DenyReason::UnknownResource,
        Denial::UnknownOrganization => proto::DenyReason::UnknownOrganization,
    }
}

pub fn proto_duration(duration: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(duration.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(duration.subsec_nanos()).unwrap_or(0),
    }
}
