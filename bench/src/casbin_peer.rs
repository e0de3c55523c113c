//! casbin (crate `casbin`) in process, at the small size at most: its
//! matcher scans every policy line per request.

use std::time::Instant;

use ::casbin::{CoreApi, DefaultModel, Enforcer, MemoryAdapter, MgmtApi};
use workteams_bench::dataset::Size;
use workteams_bench::engine::{
    CheckEngine, CheckWorker, EngineInfo, LoadReport, PeerEngine, PeerFactory, Transport,
};
use workteams_bench::graph::{CheckCase, Graph, non_portable_rules};
use workteams_bench::writers::casbin;

use crate::allocator::live_bytes;

pub struct CasbinFactory;

pub struct CasbinEngine {
    enforcer: Enforcer,
}

impl PeerFactory for CasbinFactory {
    fn name(&self) -> &str {
        "casbin"
    }

    fn build(
        &self,
        graph: &Graph<'_>,
        runtime: &tokio::runtime::Handle,
    ) -> anyhow::Result<Result<(PeerEngine, LoadReport), String>> {
        if graph.dataset.size > Size::Small {
            return Ok(Err(format!(
                "casbin evaluates its matcher against every policy line, so a check at the {} size would scan \
                 hundreds of thousands of lines; run at the small size only",
                graph.dataset.size.name()
            )));
        }
        let policies = casbin::policies(graph);

        let before = live_bytes();
        let started = Instant::now();
        let enforcer = runtime.block_on(async {
            let model = DefaultModel::from_str(casbin::MODEL).await?;
            let mut enforcer = Enforcer::new(model, MemoryAdapter::default()).await?;
            enforcer.add_policies(policies.permissions).await?;
            enforcer
                .add_named_grouping_policies("g", policies.team_links)
                .await?;
            enforcer
                .add_named_grouping_policies("g2", policies.resource_links)
                .await?;
            anyhow::Ok(enforcer)
        })?;
        let elapsed = started.elapsed();
        let bytes = live_bytes().saturating_sub(before);

        Ok(Ok((
            PeerEngine::Check(Box::new(CasbinEngine { enforcer })),
            LoadReport {
                elapsed,
                bytes: Some(bytes),
            },
        )))
    }
}

impl CheckEngine for CasbinEngine {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            name: "casbin".to_owned(),
            version: "casbin 2.20.0".to_owned(),
            transport: Transport::InProcess,
            model: "RBAC with two role graphs: `g` links users to teams and teams to parent teams, `g2` links an \
                    inheriting resource to its parent; one policy line per grant and implied permission (casbin has no \
                    ordered levels); matcher `g(r.sub, p.sub) && g2(r.obj, p.obj) && r.act == p.act`."
                .to_owned(),
            unsupported: non_portable_rules(),
            notes: vec!["casbin's default matcher scans every policy line, so it runs at the small size only.".to_owned()],
        }
    }

    fn worker(&self, graph: &Graph<'_>, cases: &[CheckCase]) -> anyhow::Result<CheckWorker<'_>> {
        anyhow::ensure!(!cases.is_empty(), "no checks to run");
        let requests: Vec<(String, String, String)> = cases
            .iter()
            .map(|case| casbin::request(graph, *case))
            .collect();
        Ok(Box::new(move |position| {
            let (subject, object, action) = &requests[position % requests.len()];
            Ok(self
                .enforcer
                .enforce((subject.as_str(), object.as_str(), action.as_str()))?)
        }))
    }
}
