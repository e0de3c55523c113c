//! Closed-loop latency and throughput measurement.
//!
//! Each worker issues one operation at a time and times it with a monotonic
//! clock; workers run as threads for in-process engines and as tasks for
//! gRPC clients. A run stops at whichever budget ends first: a number of
//! operations or a wall-clock time. Every timed operation keeps its
//! latency, so percentiles are exact over the run.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::engine::BoxFuture;

/// When a run stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Operations per worker.
    pub operations_per_worker: u64,
    pub time: Duration,
}

impl Budget {
    pub const fn new(operations_per_worker: u64, time: Duration) -> Self {
        Self {
            operations_per_worker,
            time,
        }
    }
}

/// Latency percentiles and throughput of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyStats {
    pub operations: u64,
    pub concurrency: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub mean: Duration,
}

impl LatencyStats {
    /// Operations per second over the whole run.
    pub fn throughput(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.operations as f64 / seconds
        } else {
            0.0
        }
    }

    /// Computes the statistics of latencies in nanoseconds.
    pub fn from_latencies(
        mut nanoseconds: Vec<u64>,
        concurrency: usize,
        elapsed: Duration,
    ) -> Self {
        nanoseconds.sort_unstable();
        let operations = nanoseconds.len() as u64;
        let total: u128 = nanoseconds.iter().map(|value| u128::from(*value)).sum();
        let mean = if operations == 0 {
            0
        } else {
            (total / u128::from(operations)) as u64
        };
        Self {
            operations,
            concurrency,
            elapsed,
            p50: Duration::from_nanos(percentile(&nanoseconds, 0.50)),
            p99: Duration::from_nanos(percentile(&nanoseconds, 0.99)),
            p999: Duration::from_nanos(percentile(&nanoseconds, 0.999)),
            mean: Duration::from_nanos(mean),
        }
    }
}

/// Returns the value at quantile `q` of sorted values (nearest rank).
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs `threads` workers, each calling its operation with the positions
/// 0, 1, 2… (offset per worker), until the budget ends. `make_worker`
/// builds each thread's operation.
pub fn run_threads<W, F>(
    threads: usize,
    budget: Budget,
    make_worker: F,
) -> anyhow::Result<LatencyStats>
where
    F: Fn(usize) -> anyhow::Result<W> + Sync,
    W: FnMut(usize) -> anyhow::Result<()>,
{
    let threads = threads.max(1);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let results: Vec<anyhow::Result<Vec<u64>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|worker| {
                let stop = &stop;
                let make_worker = &make_worker;
                scope.spawn(move || -> anyhow::Result<Vec<u64>> {
                    let mut operation = make_worker(worker)?;
                    let capacity = budget.operations_per_worker.min(1 << 22) as usize;
                    let mut latencies = Vec::with_capacity(capacity);
                    let offset = worker * 7_919;
                    for position in 0..budget.operations_per_worker as usize {
                        // Reading the clock every 64 operations keeps the
                        // check cheap next to sub-microsecond operations.
                        if position % 64 == 0
                            && (stop.load(Ordering::Relaxed) || started.elapsed() >= budget.time)
                        {
                            stop.store(true, Ordering::Relaxed);
                            break;
                        }
                        let before = Instant::now();
                        operation(offset + position)?;
                        latencies.push(before.elapsed().as_nanos() as u64);
                    }
                    Ok(latencies)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a benchmark worker panicked")))
            })
            .collect()
    });
    let elapsed = started.elapsed();
    let mut latencies = Vec::new();
    for result in results {
        latencies.extend(result?);
    }
    Ok(LatencyStats::from_latencies(latencies, threads, elapsed))
}

/// An operation measured by [`run_tasks_interleaved`], called with a
/// position.
pub type TaskOperation = Arc<dyn Fn(usize) -> BoxFuture<anyhow::Result<()>> + Send + Sync>;

/// Measures several operations in alternating rounds and pools each one's
/// latencies over the rounds, so a disturbance on the machine (another
/// process, a background flush) falls on every operation instead of on
/// whichever ran at that moment. Each operation runs for `time` in all.
pub async fn run_tasks_interleaved(
    concurrency: usize,
    time: Duration,
    rounds: usize,
    operations: &[TaskOperation],
) -> anyhow::Result<Vec<LatencyStats>> {
    let concurrency = concurrency.max(1);
    let rounds = rounds.max(1);
    let round_time = time / u32::try_from(rounds).unwrap_or(u32::MAX);
    let mut latencies = vec![Vec::new(); operations.len()];
    let mut elapsed = vec![Duration::ZERO; operations.len()];

    for round in 0..rounds {
        // Reversing the order every other round keeps one operation from
        // always running right after another.
        let mut order: Vec<usize> = (0..operations.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        // Each round starts further along the positions, so a round does
        // not repeat the previous round's checks.
        let first_position = round * ROUND_POSITION_STRIDE;

        for index in order {
            let operation = Arc::clone(&operations[index]);
            let (round_latencies, round_elapsed) = task_latencies(
                concurrency,
                Budget::new(u64::MAX, round_time),
                first_position,
                move |position| operation(position),
            )
            .await?;
            latencies[index].extend(round_latencies);
            elapsed[index] += round_elapsed;
        }
    }

    Ok(latencies
        .into_iter()
        .zip(elapsed)
        .map(|(latencies, elapsed)| LatencyStats::from_latencies(latencies, concurrency, elapsed))
        .collect())
}

/// Distance between the first positions of two rounds of
/// [`run_tasks_interleaved`]: a prime, so rounds start at different cases
/// whatever their number.
const ROUND_POSITION_STRIDE: usize = 1_000_003;

/// Runs `concurrency` tasks, each awaiting `operation(position)` in turn
/// until the budget ends, and returns every latency in nanoseconds with the
/// wall time of the run.
async fn task_latencies<F, Fut>(
    concurrency: usize,
    budget: Budget,
    first_position: usize,
    operation: F,
) -> anyhow::Result<(Vec<u64>, Duration)>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let operation = Arc::new(operation);
    let started = Instant::now();
    let deadline = started + budget.time;
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let operation = Arc::clone(&operation);
        tasks.spawn(async move {
            let mut latencies =
                Vec::with_capacity(budget.operations_per_worker.min(1 << 20) as usize);
            let offset = first_position + worker * 7_919;
            for position in 0..budget.operations_per_worker as usize {
                let before = Instant::now();
                if before >= deadline {
                    break;
                }
                operation(offset + position).await?;
                latencies.push(before.elapsed().as_nanos() as u64);
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(result) = tasks.join_next().await {
        latencies.extend(result??);
    }
    Ok((latencies, started.elapsed()))
}

/// Times one operation.
pub fn time<T>(operation: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let value = operation();
    (value, started.elapsed())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn percentile_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.5), 50);
        assert_eq!(percentile(&values, 0.99), 99);
        assert_eq!(percentile(&values, 1.0), 100);
    }

    #[test]
    fn percentile_of_nothing_is_zero() {
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn threads_stop_at_operation_budget() {
        let stats = run_threads(2, Budget::new(100, Duration::from_secs(10)), |_| {
            Ok(|_| Ok(()))
        })
        .unwrap();
        assert_eq!(stats.operations, 200);
    }

    #[test]
    fn threads_report_errors() {
        let result = run_threads(1, Budget::new(10, Duration::from_secs(10)), |_| {
            Ok(|_| Err(anyhow::anyhow!("engine failed")))
        });
        assert!(result.is_err());
    }

    #[tokio::test]
    async fn tasks_stop_at_operation_budget() {
        let (latencies, _) =
            task_latencies(4, Budget::new(25, Duration::from_secs(10)), 0, |_| async {
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(latencies.len(), 100);
    }

    fn counting_operation(calls: Arc<std::sync::atomic::AtomicU64>) -> TaskOperation {
        Arc::new(move |_| {
            calls.fetch_add(1, Ordering::Relaxed);
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(1)).await;
                Ok(())
            })
        })
    }

    #[tokio::test]
    async fn interleaved_pools_every_round() {
        let first_calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let second_calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let operations = [
            counting_operation(Arc::clone(&first_calls)),
            counting_operation(Arc::clone(&second_calls)),
        ];

        let stats = run_tasks_interleaved(2, Duration::from_millis(80), 4, &operations)
            .await
            .unwrap();

        assert_eq!(stats.len(), 2);
        assert_eq!(stats[0].operations, first_calls.load(Ordering::Relaxed));
        assert_eq!(stats[1].operations, second_calls.load(Ordering::Relaxed));
        assert!(stats[0].operations >= 8, "{:?}", stats[0]);
        assert!(stats[1].operations >= 8, "{:?}", stats[1]);
        assert_eq!(stats[0].concurrency, 2);
        assert!(
            stats[0].elapsed >= Duration::from_millis(80),
            "{:?}",
            stats[0]
        );
    }

    #[tokio::test]
    async fn interleaved_rounds_move_positions() {
        let positions = Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorded = Arc::clone(&positions);
        let operation: TaskOperation = Arc::new(move |position| {
            recorded.lock().unwrap().push(position);
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(1)).await;
                Ok(())
            })
        });

        run_tasks_interleaved(1, Duration::from_millis(20), 2, &[operation])
            .await
            .unwrap();

        let positions = positions.lock().unwrap();
        assert_eq!(positions.first(), Some(&0));
        assert!(positions.contains(&ROUND_POSITION_STRIDE), "{positions:?}");
    }

    #[tokio::test]
    async fn interleaved_passes_errors() {
        let failing: TaskOperation =
            Arc::new(|_| Box::pin(async { Err(anyhow::anyhow!("engine failed")) }));

        let result = run_tasks_interleaved(1, Duration::from_millis(10), 2, &[failing]).await;

        assert!(result.is_err());
    }
}
