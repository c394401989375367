import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Which process's share of the metrics a registry holds. One process
 * (`single`) has all of them. With --workers, a `worker` has the check
 * metrics (summed over workers at scrape time) and the `primary` the policy
 * metrics (it alone validates and reloads, so a reload counts once); both
 * have the process metrics (summed: the server's total CPU and memory).
 */
export type MetricsRole = 'single' | 'primary' | 'worker';

export type DecisionResult = 'allow' | 'deny' | 'dry_run_deny';
const DECISION_RESULTS: readonly DecisionResult[] = ['allow', 'deny', 'dry_run_deny'];
type DecisionCounts = Record<DecisionResult, number>;

const CHECKS = ['infergate_decisions_total', 'infergate_check_duration_seconds', 'infergate_decision_cache_hits_total', 'infergate_decision_cache_misses_total', 'infergate_decision_cache_entries'];
const POLICY = ['infergate_policy_revision_info', 'infergate_policy_reloads_total', 'infergate_policy_reload_errors_total', 'infergate_policy_last_reload_success'];
const PRIMARY = ['infergate_workers_serving', 'infergate_worker_restarts_total', 'infergate_policy_swap_window_seconds'];
const WORKER = ['infergate_worker_checks_total'];
const ROLES: Record<MetricsRole, { drop: readonly string[] }> = {
  single: { drop: [...PRIMARY, ...WORKER] },
  primary: { drop: [...CHECKS, ...WORKER] },
  worker: { drop: [...POLICY, ...PRIMARY] },
};

/**
 * The server's Prometheus metrics, on a registry of their own so several
 * servers (tests, benchmarks) can live in one process. Labels are reason
 * codes from errors.ts, so cardinality is bounded by the policy.
 */
export class Metrics {
  readonly registry = new Registry();
  /**
   * Decisions counted since the last scrape, by reason code, then result:
   * prom-client's inc(labels) builds a label hash string on every call, so
   * the check path counts here and a scrape adds the counts in.
   */
  private readonly decisionCounts = new Map<string, DecisionCounts>();
  readonly decisions = new Counter({
    name: 'infergate_decisions_total',
    help: 'Authorization decisions by result (allow, deny, dry_run_deny) and reason code',
    labelNames: ['result', 'reason'] as const,
    registers: [this.registry],
    collect: () => this.flushDecisions(),
  });

  /** One decision; on the check path: no strings built, no allocation once a reason has been seen. */
  countDecision(result: DecisionResult, reason: string): void {
    let counts = this.decisionCounts.get(reason);
    if (counts === undefined) {
      counts = { allow: 0, deny: 0, dry_run_deny: 0 };
      this.decisionCounts.set(reason, counts);
    }
    counts[result]++;
  }

  /** Adds the decisions counted since the last scrape; a worker's are also its share of the checks (workerChecks). */
  private flushDecisions(): void {
    let answered = 0;
    for (const [reason, counts] of this.decisionCounts) {
      for (const result of DECISION_RESULTS) {
        if (counts[result] > 0) {
          this.decisions.inc({ result, reason }, counts[result]);
          answered += counts[result];
          counts[result] = 0;
        }
      }
    }
    if (this.workerSlot !== null && answered > 0) this.workerChecks.inc({ worker: this.workerSlot }, answered);
  }
  readonly checkDuration = new Histogram({
    name: 'infergate_check_duration_seconds',
    help: 'Time spent in the Check handler, from request decoded to response ready',
    // Microsecond-range buckets: a cache hit is a few µs, a policy evaluation tens of µs.
    buckets: [5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2, 0.25],
    registers: [this.registry],
  });
  readonly cacheHits = new Counter({ name: 'infergate_decision_cache_hits_total', help: 'Decisions answered from the cache', registers: [this.registry] });
  readonly cacheMisses = new Counter({ name: 'infergate_decision_cache_misses_total', help: 'Decisions that needed a policy evaluation', registers: [this.registry] });
  /** Read at scrape time; the server points it at its cache. */
  cacheSize: () => number = () => 0;
  readonly cacheEntries: Gauge = new Gauge({
    name: 'infergate_decision_cache_entries',
    help: 'Entries in the decision cache',
    registers: [this.registry],
    collect: (): void => this.cacheEntries.set(this.cacheSize()),
  });
  readonly policyRevision = new Gauge({
    name: 'infergate_policy_revision_info',
    help: 'The policy revision in force (value 1); revision is a hash of bundle and manifest',
    labelNames: ['revision'] as const,
    registers: [this.registry],
  });
  readonly reloads = new Counter({
    name: 'infergate_policy_reloads_total',
    help: 'Policy and manifest loads by result (success, error)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly reloadErrors = new Counter({
    name: 'infergate_policy_reload_errors_total',
    help: 'Rejected policy or manifest changes by source (manifest, bundle); the last good policy stays in force',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });
  readonly lastReloadOk = new Gauge({
    name: 'infergate_policy_last_reload_success',
    help: '1 if the last load of policy and manifest succeeded, 0 if the last good one is still in force after an error',
    registers: [this.registry],
  });

  /** Checks answered by each worker (label: its slot, 1 to N), so the spread over workers shows: its decisions, summed at scrape time. */
  readonly workerChecks = new Counter({
    name: 'infergate_worker_checks_total',
    help: 'Checks answered, by worker (--workers above 1 only)',
    labelNames: ['worker'] as const,
    registers: [this.registry],
    collect: () => this.flushDecisions(),
  });
  readonly workersServing = new Gauge({
    name: 'infergate_workers_serving',
    help: 'Workers serving, out of --workers (--workers above 1 only)',
    registers: [this.registry],
  });
  readonly workerRestarts = new Counter({
    name: 'infergate_worker_restarts_total',
    help: 'Workers that exited unexpectedly and were replaced (--workers above 1 only)',
    registers: [this.registry],
  });
  readonly swapWindow = new Gauge({
    name: 'infergate_policy_swap_window_seconds',
    help: 'For the last reload, how long some workers decided by the old revision after the switch-over time (0: all switched on time; --workers above 1 only)',
    registers: [this.registry],
  });

  /** `workerSlot`: a worker's slot (1 to N), the label of its infergate_worker_checks_total. */
  constructor(role: MetricsRole = 'single', private readonly workerSlot: string | null = null) {
    for (const name of ROLES[role].drop) this.registry.removeSingleMetric(name);
    collectDefaultMetrics({ register: this.registry, prefix: 'infergate_' });
  }

  setRevision(revision: string): void {
    this.policyRevision.reset();
    this.policyRevision.set({ revision }, 1);
  }
}
