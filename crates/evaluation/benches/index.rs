//! Benchmarks of the access index on a generated directory.
//!
//! `cargo bench -p workteams-evaluation` runs a small directory (2,000
//! users). Set `WORKTEAMS_BENCH_SIZE=large` for 100,000 users, 10,000 teams
//! and 1,000,000 resources and grants. Besides the criterion timings the run
//! prints generation and load times and the index's memory, counted by the
//! instrumented global allocator below.

use std::alloc::System;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use workteams_domain::Revision;
use workteams_evaluation::generator::{CheckSample, GeneratedDirectory, GeneratorConfig, generate};
use workteams_evaluation::{AccessFilter, Index};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Distinct questions in the uniform benchmarks: enough that the index,
/// not the sample list, decides what stays in cache.
const UNIFORM_SAMPLES: usize = 1 << 20;
/// Questions in the hot benchmark, asked over and over.
const HOT_SAMPLES: usize = 64;

fn selected_config() -> (GeneratorConfig, &'static str) {
    match std::env::var("WORKTEAMS_BENCH_SIZE").as_deref() {
        Ok("large") => (GeneratorConfig::large(), "large"),
        _ => (GeneratorConfig::small(), "small"),
    }
}

fn load(directory: &GeneratedDirectory) -> Index {
    let mut index = Index::new(directory.types.clone());
    for entity in &directory.entities {
        index.apply_entity(entity.clone());
    }
    index.set_revision(Revision(1));
    index
}

/// Net heap bytes allocated while `build` runs and still held by its result.
fn measure_heap<T>(build: impl FnOnce() -> T) -> (T, i128) {
    let region = Region::new(ALLOCATOR);
    let value = build();
    let change = region.change();
    // Reallocations are already included in both totals.
    let bytes = change.bytes_allocated as i128 - change.bytes_deallocated as i128;
    (value, bytes)
}

fn report_load(directory: &GeneratedDirectory, size: &str) -> Index {
    let started = Instant::now();
    let (index, bytes) = measure_heap(|| load(directory));
    let load_time = started.elapsed();

    let stats = index.stats();
    let edges = stats.memberships + stats.grants;
    let entities =
        stats.organizations + stats.users + stats.members + stats.teams + stats.resources;
    println!("size: {size}");
    println!("stats: {stats:?}");
    println!(
        "snapshot load: {:.3} s for {} entities",
        load_time.as_secs_f64(),
        directory.entities.len()
    );
    println!(
        "index heap: {:.1} MiB, {:.1} bytes per edge ({edges} memberships and grants), {:.1} bytes per edge and entity",
        bytes as f64 / 1_048_576.0,
        bytes as f64 / edges.max(1) as f64,
        bytes as f64 / (edges + entities).max(1) as f64,
    );
    index
}

/// Prints how many uniform checks are allowed and the time per check when
/// all of them run back to back, as a batch check does. Unlike the criterion
/// loop, consecutive checks here can overlap their memory accesses.
fn report_answers(index: &Index, samples: &[CheckSample], now: chrono::DateTime<chrono::Utc>) {
    let started = Instant::now();
    let allowed = samples
        .iter()
        .filter(|sample| index.check(sample.user, sample.resource, sample.permission_index, now))
        .count();
    let elapsed = started.elapsed();
    println!(
        "uniform checks allowed: {allowed} of {} ({:.1}%); back to back: {:.0} ns per check",
        samples.len(),
        100.0 * allowed as f64 / samples.len().max(1) as f64,
        elapsed.as_nanos() as f64 / samples.len().max(1) as f64,
    );
}

fn main() {
    let (config, size) = selected_config();
    let started = Instant::now();
    let directory = generate(&config);
    println!(
        "generated in {:.3} s; mean folder depth {:.2}",
        started.elapsed().as_secs_f64(),
        directory.mean_folder_depth
    );

    let index = report_load(&directory, size);
    let now = directory.now;
    let uniform = directory.sample_checks(1, UNIFORM_SAMPLES);
    let hot: Vec<CheckSample> = uniform.iter().copied().take(HOT_SAMPLES).collect();
    report_answers(&index, &uniform, now);
    let batches: Vec<_> = (0..64)
        .map(|seed| directory.sample_batch(seed, Revision(2)))
        .collect();

    let mut criterion = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();

    let mut group = criterion.benchmark_group(format!("index-{size}"));
    let mut position = 0_usize;
    group.bench_function("check hot", |bencher| {
        bencher.iter(|| {
            position = (position + 1) % hot.len();
            let sample = hot[position];
            black_box(index.check(sample.user, sample.resource, sample.permission_index, now))
        });
    });
    group.bench_function("check uniform", |bencher| {
        bencher.iter(|| {
            position = (position + 1) % uniform.len();
            let sample = uniform[position];
            black_box(index.check(sample.user, sample.resource, sample.permission_index, now))
        });
    });
    group.bench_function("evaluate uniform", |bencher| {
        bencher.iter(|| {
            position = (position + 1) % uniform.len();
            let sample = uniform[position];
            black_box(index.evaluate(sample.user, sample.resource, now))
        });
    });
    let filter = AccessFilter::default();
    group.bench_function("list user access", |bencher| {
        bencher.iter(|| {
            position = (position + 1) % uniform.len();
            black_box(index.list_user_access(uniform[position].user, &filter, now))
        });
    });
    group.bench_function("list resource access", |bencher| {
        bencher.iter(|| {
            position = (position + 1) % uniform.len();
            black_box(index.list_resource_access(uniform[position].resource, now))
        });
    });
    group.bench_function("clone and apply small batch", |bencher| {
        bencher.iter_batched(
            || {
                position = (position + 1) % batches.len();
                &batches[position]
            },
            |batch| {
                let mut next = index.clone();
                next.apply_batch(batch);
                next
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();

    if size == "small" {
        let mut group = criterion.benchmark_group("load-small");
        group.sample_size(10);
        group.bench_function("snapshot load", |bencher| bencher.iter(|| load(&directory)));
        group.finish();
    }

    criterion.final_summary();
}
