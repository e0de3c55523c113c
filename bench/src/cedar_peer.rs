//! Cedar (crate `cedar-policy`) in process.

use std::str::FromStr;
use std::time::Instant;

use cedar_policy::{Authorizer, Context, Decision, Entities, EntityUid, PolicySet, Request};
use workteams_bench::engine::{
    CheckEngine, CheckWorker, EngineInfo, LoadReport, PeerEngine, PeerFactory, Transport,
};
use workteams_bench::graph::{CheckCase, Graph, non_portable_rules};
use workteams_bench::writers::cedar;

use crate::allocator::live_bytes;

pub struct CedarFactory;

pub struct CedarEngine {
    policies: PolicySet,
    entities: Entities,
    authorizer: Authorizer,
}

impl PeerFactory for CedarFactory {
    fn name(&self) -> &str {
        "Cedar"
    }

    fn build(
        &self,
        graph: &Graph<'_>,
        _runtime: &tokio::runtime::Handle,
    ) -> anyhow::Result<Result<(PeerEngine, LoadReport), String>> {
        let policies = PolicySet::from_str(&cedar::policies(graph))
            .map_err(|error| anyhow::anyhow!("invalid Cedar policies: {error}"))?;
        let json = cedar::entities(graph);

        let before = live_bytes();
        let started = Instant::now();
        let entities = Entities::from_json_value(json, None)?;
        let elapsed = started.elapsed();
        let bytes = live_bytes().saturating_sub(before);

        let engine = CedarEngine {
            policies,
            entities,
            authorizer: Authorizer::new(),
        };
        Ok(Ok((
            PeerEngine::Check(Box::new(engine)),
            LoadReport {
                elapsed,
                bytes: Some(bytes),
            },
        )))
    }
}

impl CheckEngine for CedarEngine {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            name: "Cedar".to_owned(),
            version: "cedar-policy 4.14".to_owned(),
            transport: Transport::InProcess,
            model: "Users' teams are their parent entities and a team's parent team its parent, so `principal in` covers \
                    nesting; each resource carries one attribute per permission with the set of granted users and teams; \
                    an inheriting resource carries its parent folder as an attribute. One policy per type and permission \
                    (no policy per grant) accepts the permission or any higher level on the resource or, unrolled to the \
                    deepest folder level the generator creates, on its inheriting ancestors. Entities are loaded from \
                    Cedar's JSON format, which computes the ancestor closure."
                .to_owned(),
            unsupported: non_portable_rules(),
            notes: vec![
                "Expiry could be written as `datetime` attributes compared with a `context` time, but teams as \
                 parents leave no place for a membership's expiry; not modeled."
                    .to_owned(),
                "Individual precedence needs the nearest individual grant on the path to decide alone, a walk Cedar's \
                 non-recursive policies cannot express beyond a fixed depth; not modeled."
                    .to_owned(),
            ],
        }
    }

    fn worker(&self, graph: &Graph<'_>, cases: &[CheckCase]) -> anyhow::Result<CheckWorker<'_>> {
        anyhow::ensure!(!cases.is_empty(), "no checks to run");
        let requests = cases
            .iter()
            .map(|case| {
                let (principal, action, resource) = cedar::request(graph, *case);
                let request = Request::new(
                    EntityUid::from_str(&principal)?,
                    EntityUid::from_str(&action)?,
                    EntityUid::from_str(&resource)?,
                    Context::empty(),
                    None,
                )?;
                anyhow::Ok(request)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Box::new(move |position| {
            let request = &requests[position % requests.len()];
            let response = self
                .authorizer
                .is_authorized(request, &self.policies, &self.entities);
            // An evaluation error denies in Cedar; here it would hide a
            // modeling mistake, so it fails the run instead.
            if let Some(error) = response.diagnostics().errors().next() {
                anyhow::bail!("Cedar evaluation error: {error}");
            }
            Ok(response.decision() == Decision::Allow)
        }))
    }
}
