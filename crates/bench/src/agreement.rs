//! Comparing every engine's answers with Work Teams' own.
//!
//! A check that touches a rule an engine cannot express is left out of that
//! engine's comparison and counted as excluded. Every other difference is a
//! disagreement, reported with the input that shows it.

use chrono::{DateTime, Utc};

use crate::graph::{CheckCase, Graph, Rule, RuleSet};

/// One check on which an engine and Work Teams differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    pub user_login: String,
    pub user_id: String,
    pub resource_type: String,
    pub resource_external_id: String,
    pub resource_id: String,
    pub permission: String,
    pub ours: bool,
    pub theirs: bool,
    /// Rules the check touches, all of them portable.
    pub rules: Vec<Rule>,
}

impl Disagreement {
    pub fn new(
        graph: &Graph<'_>,
        case: CheckCase,
        ours: bool,
        theirs: bool,
        rules: RuleSet,
    ) -> Self {
        let user = &graph.dataset.users[case.user];
        let resource = &graph.dataset.resources[case.resource];
        Self {
            user_login: user.login.clone(),
            user_id: user.id.to_string(),
            resource_type: resource.resource_type.clone(),
            resource_external_id: resource.external_id.clone(),
            resource_id: resource.id.to_string(),
            permission: graph.definitions[case.resource].permissions[case.permission].clone(),
            ours,
            theirs,
            rules: rules.iter().collect(),
        }
    }
}

/// An engine's comparison with Work Teams.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Agreement {
    pub engine: String,
    pub compared: usize,
    pub excluded: usize,
    pub agreed: usize,
    /// The rules that excluded checks, with how many each excluded.
    pub excluded_by_rule: Vec<(Rule, usize)>,
    pub disagreements: Vec<Disagreement>,
}

/// Computes the rules each case touches, once per sample.
pub fn classify(graph: &Graph<'_>, cases: &[CheckCase], now: DateTime<Utc>) -> Vec<RuleSet> {
    cases
        .iter()
        .map(|case| graph.rules_touched(*case, now))
        .collect()
}

/// Compares `theirs` (one answer per case, `None` where the engine was not
/// asked) with `ours`.
pub fn compare(
    graph: &Graph<'_>,
    engine: &str,
    cases: &[CheckCase],
    rules: &[RuleSet],
    unsupported: RuleSet,
    ours: &[bool],
    theirs: &[Option<bool>],
) -> Agreement {
    let mut agreement = Agreement {
        engine: engine.to_owned(),
        ..Agreement::default()
    };
    let mut excluded_by_rule: Vec<(Rule, usize)> = Vec::new();
    for (position, case) in cases.iter().enumerate() {
        let touched = rules[position];
        if touched.intersects(unsupported) {
            agreement.excluded += 1;
            for rule in touched.iter().filter(|rule| unsupported.contains(*rule)) {
                match excluded_by_rule
                    .iter_mut()
                    .find(|(known, _)| *known == rule)
                {
                    Some((_, count)) => *count += 1,
                    None => excluded_by_rule.push((rule, 1)),
                }
            }
            continue;
        }
        let Some(answer) = theirs[position] else {
            continue;
        };
        agreement.compared += 1;
        if answer == ours[position] {
            agreement.agreed += 1;
        } else {
            agreement.disagreements.push(Disagreement::new(
                graph,
                *case,
                ours[position],
                answer,
                touched,
            ));
        }
    }
    excluded_by_rule.sort();
    agreement.excluded_by_rule = excluded_by_rule;
    agreement
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::dataset::{Size, generate};
    use crate::graph::non_portable_rules;

    #[test]
    fn excluded_cases_are_not_compared() {
        let dataset = generate(Size::Tiny, 4, Utc::now());
        let graph = Graph::new(&dataset).unwrap();
        let cases = vec![
            CheckCase {
                user: 0,
                resource: 0,
                permission: 0
            };
            2
        ];
        let rules = vec![RuleSet::of(&[Rule::GrantExpiry]), RuleSet::EMPTY];
        let agreement = compare(
            &graph,
            "peer",
            &cases,
            &rules,
            non_portable_rules(),
            &[true, true],
            &[Some(false), Some(true)],
        );
        assert_eq!(
            (agreement.compared, agreement.excluded, agreement.agreed),
            (1, 1, 1)
        );
    }

    #[test]
    fn difference_is_reported_with_input() {
        let dataset = generate(Size::Tiny, 4, Utc::now());
        let graph = Graph::new(&dataset).unwrap();
        let cases = vec![CheckCase {
            user: 1,
            resource: 2,
            permission: 0,
        }];
        let agreement = compare(
            &graph,
            "peer",
            &cases,
            &[RuleSet::EMPTY],
            RuleSet::EMPTY,
            &[true],
            &[Some(false)],
        );
        assert_eq!(agreement.disagreements.len(), 1);
        assert_eq!(
            agreement.disagreements[0].user_login,
            dataset.users[1].login
        );
    }
}
