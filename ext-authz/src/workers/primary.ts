import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import pino, { type Logger } from 'pino';
import { AggregatorRegistry, Registry } from 'prom-client';
import { startAdminServer, type AdminServer } from '../admin-http.js';
import { decisionLogDestination, type DecisionLogDestination } from '../decision-log.js';
import { RemoteKeySets } from '../end-users/end-users.js';
import type { RemoteKeySet } from '../end-users/key-sets.js';
import { AuthzError, REASONS, errorMessage } from '../errors.js';
import { Metrics } from '../metrics.js';
import { LoadError, PolicyStore, type PolicyContent } from '../policy-store.js';
import { hostOf, removeStaleSocket, servingFields, type ServerOptions } from '../server.js';
import type { FromWorker, MetricsJson, ToWorker } from './messages.js';

const WORKER_MAIN = fileURLToPath(new URL('./worker-main.js', import.meta.url));
/** A worker builds a policy in well under a second; this long means it is stuck, and it is replaced. */
const PREPARE_TIMEOUT_MS = 30_000;
/** Beyond the switch-over time, how long a worker may take to confirm it switched before it is replaced. */
const COMMIT_TIMEOUT_MS = 5_000;
const METRICS_TIMEOUT_MS = 2_000;
const START_TIMEOUT_MS = 60_000;
/**
 * How far ahead a commit's switch-over time is set: long enough for the
 * commit message to reach every worker first, even one busy with a burst of
 * checks, so that all switch at the same instant (measured late: see
 * infergate_policy_swap_window_seconds). A reload is in force this much later.
 */
const SWITCH_AHEAD_NS = 30_000_000n;
/** A worker that dies within this long of starting counts as failing fast: it is restarted with a growing delay. */
const FAST_FAILURE_MS = 10_000;

interface Slot {
  /** 1 to N; a replacement takes the slot of the worker it replaces. */
  readonly n: number;
  worker: Worker | null;
  state: 'starting' | 'serving' | 'gone';
  revision: string | null;
  /** The --listen address this slot's worker was given. */
  listen: string | null;
  startedAt: number;
  fastFailures: number;
  respawn: NodeJS.Timeout | null;
  /** The worker's last words, if it reported why it could not start. */
  fatal: string | null;
}

interface Waiter {
  readonly slot: Slot;
  readonly match: (m: FromWorker) => boolean;
  readonly resolve: (m: FromWorker | null) => void;
}

/**
 * The primary never verifies tokens, only validates manifests: remote key
 * sets are not fetched here (each worker fetches its own).
 */
class ValidationKeySets extends RemoteKeySets {
  override get(): Promise<RemoteKeySet> {
    const unused = {
      getKey: () => {
        throw new AuthzError(REASONS.invalid_token, 'the primary does not verify tokens');
      },
      unknownKey: () => undefined,
    };
    return Promise.resolve(unused as unknown as RemoteKeySet);
  }
}

/**
 * --workers N above 1: N node:cluster worker processes (workers/worker.ts)
 * behind the one --listen address and --socket (the primary holds the
 * listening sockets and hands each new connection to the next worker in
 * turn), and this process, which holds everything that must exist once:
 *
 * - the policy: it watches the files and validates a change once; a bad
 *   change is rejected (logged and counted once, the last good policy kept
 *   by every worker), a good one is prepared by every worker and then
 *   switched to by all at one instant (messages.ts);
 * - the decision log: workers send it whole lines and it alone writes;
 * - /metrics (every worker's metrics and its own, aggregated), /healthz,
 *   and /readyz (ready when every worker serves, all by the same revision);
 * - the workers themselves: one that dies is replaced (its connections, and
 *   with them its checks in flight, are cut: Envoy fails them closed), and
 *   stop() drains them all.
 */
export class ClusterPrimary {
  private readonly slots: Slot[];
  private readonly waiters = new Set<Waiter>();
  private readonly store: PolicyStore;
  private readonly decisionLog: DecisionLogDestination | null;
  private admin: AdminServer | null = null;
  private seq = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private started = false;
  private stopping = false;
  private startFailed: ((err: Error) => void) | null = null;
  private startWaiter: (() => void) | null = null;
  /** The bound gRPC TCP port, once the first worker has bound it. */
  port: number | null = null;
  metricsPort: number | null = null;

  private constructor(
    private readonly opts: ServerOptions,
    readonly log: Logger,
    readonly metrics: Metrics,
    readonly workers: number,
  ) {
    this.slots = Array.from({ length: workers }, (_v, i) => ({
      n: i + 1, worker: null, state: 'gone', revision: null, listen: null, startedAt: 0, fastFailures: 0, respawn: null, fatal: null,
    }));
    this.decisionLog = decisionLogDestination(opts.decisionLog);
    this.store = new PolicyStore({
      bundlePath: opts.bundlePath,
      manifestPath: opts.manifestPath,
      log,
      metrics,
      remoteKeys: new ValidationKeySets(log, () => undefined),
      distribute: (content) => this.exclusive(() => this.distribute(content)),
      onSwap: () => this.catchUp(),
      ...(opts.pollMs !== undefined ? { pollMs: opts.pollMs } : {}),
    });
  }

  static async start(opts: ServerOptions): Promise<ClusterPrimary> {
    const workers = opts.workers ?? 1;
    const log = pino({ level: opts.logLevel, base: { component: 'infergate-authz' } }, pino.destination(2));
    const primary = new ClusterPrimary(opts, log, new Metrics('primary'), workers);
    try {
      await primary.begin();
    } catch (err) {
      await primary.abandon();
      throw err;
    }
    return primary;
  }

  private async begin(): Promise<void> {
    const { opts } = this;
    // Validated here before any worker starts: a bad manifest fails the start with one line, as with one process.
    await this.store.load();
    if (opts.watch) await this.store.watch();
    if (opts.socket !== null) removeStaleSocket(opts.socket);
    cluster.schedulingPolicy = cluster.SCHED_RR;
    cluster.setupPrimary({ exec: WORKER_MAIN, args: [], serialization: 'advanced' });

    const allServing = new Promise<void>((resolve, reject) => {
      this.startWaiter = resolve;
      this.startFailed = reject;
    });
    const timeout = setTimeout(() => this.startFailed?.(new Error(`workers did not start within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
    for (const slot of this.slots) this.fork(slot);
    try {
      await allServing;
    } finally {
      clearTimeout(timeout);
      this.startWaiter = null;
      this.startFailed = null;
    }
    this.started = true;

    if (opts.metricsListen !== null) {
      this.admin = await startAdminServer(opts.metricsListen, () => this.metricsText(), Registry.PROMETHEUS_CONTENT_TYPE, () => this.ready);
      this.metricsPort = this.admin.port;
    }
    this.log.info(
      { ...servingFields(opts, this.port, this.metricsPort, opts.cacheSize > 0), workers: this.workers, worker_pids: this.slots.map((s) => s.worker?.process.pid ?? null) },
      'infergate-authz serving',
    );
  }

  /** Every worker serves, all by the revision in force. */
  get ready(): boolean {
    const revision = this.store.current()?.revision;
    return this.started && !this.stopping && this.slots.every((s) => s.state === 'serving' && s.revision === revision);
  }

  get revision(): string | null {
    return this.store.current()?.revision ?? null;
  }

  /** Re-reads bundle and manifest now (the watcher does this on its own). */
  reload(): Promise<boolean> {
    return this.store.reload();
  }

  private fork(slot: Slot): void {
    slot.respawn = null;
    slot.state = 'starting';
    slot.revision = null;
    slot.fatal = null;
    slot.startedAt = Date.now();
    slot.listen = this.listenFor(slot);
    const worker = cluster.fork();
    slot.worker = worker;
    worker.on('message', (m: FromWorker) => {
      if (slot.worker === worker) this.onMessage(slot, worker, m);
    });
    worker.on('exit', (code, signal) => {
      if (slot.worker === worker) this.onExit(slot, worker, code, signal);
    });
    // An IPC write to a worker that just died; its exit is handled above.
    worker.on('error', (err) => this.log.debug({ worker: slot.n, error: errorMessage(err) }, 'worker channel error'));
  }

  /**
   * The address a new worker listens on. Workers share one listening
   * socket only while they ask for the same address, so a replacement asks
   * for what the serving ones asked for; when none serves (the socket has
   * closed), for the port the server has had all along, never port 0 again.
   */
  private listenFor(slot: Slot): string | null {
    const { listen } = this.opts;
    if (listen === null || this.port === null) return listen;
    return this.slots.find((s) => s !== slot && s.state === 'serving')?.listen ?? `${hostOf(listen)}:${this.port}`;
  }

  private send(slot: Slot, msg: ToWorker): void {
    const w = slot.worker;
    if (w !== null && w.isConnected()) w.send(msg);
  }

  private onMessage(slot: Slot, worker: Worker, m: FromWorker): void {
    switch (m.t) {
      case 'log':
        this.decisionLog?.write(m.text);
        return;
      case 'hello': {
        const content = this.store.content!;
        this.send(slot, { t: 'init', slot: slot.n, opts: { ...this.opts, listen: slot.listen }, content, expectPort: this.opts.listen !== null ? this.port : null });
        return;
      }
      case 'serving':
        slot.state = 'serving';
        slot.revision = m.revision;
        this.port ??= m.port;
        this.servingChanged();
        // The start-up line names the first ones; a replacement is news.
        if (this.started) this.log.info({ worker: slot.n, pid: worker.process.pid, revision: m.revision }, 'worker serving');
        if (this.startWaiter !== null && this.slots.every((s) => s.state === 'serving')) this.startWaiter();
        // It was given the policy in force when it started; a reload may have happened since.
        this.catchUp();
        return;
      case 'fatal':
        slot.fatal = m.error;
        return;
      default:
        for (const w of this.waiters) {
          if (w.slot === slot && w.match(m)) {
            this.waiters.delete(w);
            w.resolve(m);
          }
        }
    }
  }

  private onExit(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    slot.worker = null;
    slot.state = 'gone';
    slot.revision = null;
    this.servingChanged();
    for (const w of this.waiters) {
      if (w.slot === slot) {
        this.waiters.delete(w);
        w.resolve(null);
      }
    }
    if (this.stopping) return;
    if (!this.started) {
      this.startFailed?.(new Error(slot.fatal ?? `worker ${slot.n} exited during start-up (${signal ?? `code ${code}`})`));
      return;
    }
    slot.fastFailures = Date.now() - slot.startedAt < FAST_FAILURE_MS ? slot.fastFailures + 1 : 0;
    const delay = slot.fastFailures <= 1 ? 0 : Math.min(10_000, 250 * 2 ** (slot.fastFailures - 2));
    this.metrics.workerRestarts.inc();
    this.log.error(
      { worker: slot.n, pid: worker.process.pid, code, signal, error: slot.fatal ?? undefined, restart_in_ms: delay },
      'worker exited unexpectedly; its connections were cut; starting a new one',
    );
    slot.respawn = setTimeout(() => this.fork(slot), delay);
  }

  private servingChanged(): void {
    this.metrics.workersServing.set(this.slots.filter((s) => s.state === 'serving').length);
  }

  /** Sends `msg` and waits for the worker's answer; null if the worker exits first. */
  private ask(slot: Slot, msg: ToWorker, match: (m: FromWorker) => boolean, timeoutMs: number): Promise<FromWorker | null> {
    return new Promise((resolve, reject) => {
      if (slot.worker === null || !slot.worker.isConnected()) return resolve(null);
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`worker ${slot.n} did not answer "${msg.t}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter: Waiter = { slot, match, resolve: (m) => (clearTimeout(timer), resolve(m)) };
      this.waiters.add(waiter);
      this.send(slot, msg);
    });
  }

  /** Reloads and catch-ups run one at a time. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The PolicyStore's distribute hook: a validated change, put in force in every serving worker. */
  private async distribute(content: PolicyContent): Promise<Record<string, unknown>> {
    const targets = this.slots.filter((s) => s.state === 'serving');
    const r = await this.transact(targets, content);
    if ('failed' in r) throw new LoadError(r.failed.source, `worker ${r.failed.slot} could not build it: ${r.failed.error}`);
    this.metrics.swapWindow.set(r.windowNs / 1e9);
    return { workers: r.switched, swap_window_us: Math.round(r.windowNs / 1000) };
  }

  /**
   * Two phases: every target builds `content` (prepare), and only if all
   * could, all switch at one instant (commit). A worker that does not
   * answer in time is replaced rather than left on an unknown revision.
   */
  private async transact(
    targets: Slot[],
    content: PolicyContent,
  ): Promise<{ switched: number; windowNs: number } | { failed: { slot: number; source: 'manifest' | 'bundle'; error: string } }> {
    const seq = ++this.seq;
    const answers = await Promise.all(targets.map((s) =>
      this.ask(s, { t: 'prepare', seq, content }, (m) => (m.t === 'prepared' || m.t === 'prepare-failed') && m.seq === seq, PREPARE_TIMEOUT_MS)
        .catch((err: unknown) => this.replace(s, errorMessage(err))),
    ));
    const failed = answers.findIndex((m) => m?.t === 'prepare-failed');
    if (failed >= 0) {
      for (const s of targets) this.send(s, { t: 'abort', seq });
      const m = answers[failed] as Extract<FromWorker, { t: 'prepare-failed' }>;
      return { failed: { slot: targets[failed]!.n, source: m.source, error: m.error } };
    }
    const prepared = targets.filter((_s, i) => answers[i] !== null);
    const at = process.hrtime.bigint() + SWITCH_AHEAD_NS;
    const acks = await Promise.all(prepared.map((s) =>
      this.ask(s, { t: 'commit', seq, at }, (m) => m.t === 'committed' && m.seq === seq, Number(SWITCH_AHEAD_NS / 1_000_000n) + COMMIT_TIMEOUT_MS)
        .catch((err: unknown) => this.replace(s, errorMessage(err))),
    ));
    let windowNs = 0;
    let switched = 0;
    prepared.forEach((s, i) => {
      const a = acks[i];
      if (a?.t !== 'committed') return;
      s.revision = a.revision;
      windowNs = Math.max(windowNs, a.lateNs);
      switched++;
    });
    return { switched, windowNs };
  }

  /** A worker that stopped answering: killed, so a replacement starts with the policy in force. */
  private replace(slot: Slot, why: string): null {
    this.log.error({ worker: slot.n, error: why }, 'worker not answering; replacing it');
    slot.worker?.process.kill('SIGKILL');
    return null;
  }

  /** Serving workers on another revision than the one in force (started during a reload) are brought to it. */
  private catchUp(): void {
    void this.exclusive(async () => {
      const content = this.store.content;
      if (content === null || this.stopping) return;
      const revision = this.store.current()!.revision;
      const stale = this.slots.filter((s) => s.state === 'serving' && s.revision !== revision);
      if (stale.length === 0) return;
      const r = await this.transact(stale, content);
      if ('failed' in r) for (const s of stale) this.replace(s, r.failed.error);
      else this.log.info({ workers: stale.map((s) => s.n), revision }, 'workers brought to the policy in force');
    });
  }

  /** Every serving worker's metrics and the primary's own, aggregated (counters and histograms summed). */
  private async metricsText(): Promise<string> {
    const seq = ++this.seq;
    const serving = this.slots.filter((s) => s.state === 'serving');
    const answers = await Promise.all(serving.map((s) => this.ask(s, { t: 'metrics', seq }, (m) => m.t === 'metrics' && m.seq === seq, METRICS_TIMEOUT_MS)));
    const all: MetricsJson[] = answers.flatMap((a) => (a?.t === 'metrics' ? [a.metrics] : []));
    all.push(await this.metrics.registry.getMetricsAsJSON());
    return AggregatorRegistry.aggregate(all).metrics();
  }

  /** Drains every worker (each answers its checks in flight, then exits), then stops. */
  async stop(graceMs = 2000): Promise<void> {
    this.stopping = true;
    this.store.close();
    for (const s of this.slots) if (s.respawn !== null) clearTimeout(s.respawn);
    const live = this.slots.filter((s) => s.worker !== null);
    const exits = live.map((s) => new Promise<void>((resolve) => s.worker!.once('exit', () => resolve())));
    for (const s of live) this.send(s, { t: 'drain', graceMs });
    const kill = setTimeout(() => {
      for (const s of live) s.worker?.process.kill('SIGKILL');
    }, graceMs + 3000);
    await Promise.all(exits);
    clearTimeout(kill);
    await this.admin?.close();
    await this.closeDecisionLog();
  }

  /** After a failed start: no worker is left behind. */
  private async abandon(): Promise<void> {
    this.stopping = true;
    this.store.close();
    for (const s of this.slots) s.worker?.process.kill('SIGKILL');
    await this.closeDecisionLog();
  }

  private closeDecisionLog(): Promise<void> {
    const dest = this.decisionLog;
    if (dest === null || (dest as { destroyed?: boolean }).destroyed === true) return Promise.resolve();
    return new Promise((resolve) => {
      dest.once('close', () => resolve());
      dest.end();
    });
  }
}
