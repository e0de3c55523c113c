//! Rego through `regorus` in process.

use std::time::Instant;

use regorus::{Engine, Value};
use workteams_bench::engine::{
    CheckEngine, CheckWorker, EngineInfo, LoadReport, PeerEngine, PeerFactory, Transport,
};
use workteams_bench::graph::{CheckCase, Graph, non_portable_rules};
use workteams_bench::writers::rego;

use crate::allocator::live_bytes;

pub struct RegoFactory;

/// A loaded engine; each worker evaluates on its own clone, since an engine
/// holds the input it evaluates.
pub struct RegoEngine {
    engine: Engine,
}

impl PeerFactory for RegoFactory {
    fn name(&self) -> &str {
        "regorus"
    }

    fn build(
        &self,
        graph: &Graph<'_>,
        _runtime: &tokio::runtime::Handle,
    ) -> anyhow::Result<Result<(PeerEngine, LoadReport), String>> {
        let data = rego::data(graph).to_string();

        let before = live_bytes();
        let started = Instant::now();
        let mut engine = Engine::new();
        engine.add_policy("workteams.rego".to_owned(), rego::POLICY.to_owned())?;
        engine.add_data(Value::from_json_str(&data)?)?;
        let elapsed = started.elapsed();
        let bytes = live_bytes().saturating_sub(before);

        Ok(Ok((
            PeerEngine::Check(Box::new(RegoEngine { engine })),
            LoadReport {
                elapsed,
                bytes: Some(bytes),
            },
        )))
    }
}

impl CheckEngine for RegoEngine {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            name: "regorus (Rego)".to_owned(),
            version: "regorus 0.14.1".to_owned(),
            transport: Transport::InProcess,
            model: "One Rego policy over a data document holding each user's direct teams, each team's parent, each \
                    inheriting resource's parent, each resource's grants and the rank of every level; the policy walks \
                    both hierarchies with `graph.reachable` at query time. The input is the user, the resource and the \
                    permission."
                .to_owned(),
            unsupported: non_portable_rules(),
            notes: vec![
                "Rego is a general language: every Work Teams rule could be written in it, at the cost of a policy \
                 that restates the whole evaluator; the harness keeps Rego to the portable model like the other peers."
                    .to_owned(),
            ],
        }
    }

    fn worker(&self, graph: &Graph<'_>, cases: &[CheckCase]) -> anyhow::Result<CheckWorker<'_>> {
        anyhow::ensure!(!cases.is_empty(), "no checks to run");
        let inputs = cases
            .iter()
            .map(|case| Value::from_json_str(&rego::input(graph, *case).to_string()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut engine = self.engine.clone();
        let allow = Value::from(true);
        Ok(Box::new(move |position| {
            engine.set_input(inputs[position % inputs.len()].clone());
            let value = engine.eval_rule(rego::ALLOW_RULE.to_owned())?;
            Ok(value == allow)
        }))
    }
}
