import * as grpc from '@grpc/grpc-js';
import pino, { type Logger } from 'pino';
import { createWorkerDecisionLogger } from '../decision-log.js';
import { errorMessage } from '../errors.js';
import { Metrics } from '../metrics.js';
import { LoadError } from '../policy-store.js';
import { checkHandler, drainGrpc, newDecisionCache, serveGrpc, setServing } from '../server.js';
import { CheckTracing } from '../tracing.js';
import type { FromWorker, ToWorker } from './messages.js';
import { WorkerPolicy } from './worker-policy.js';

/** Decision lines are sent to the primary in batches: at this many characters, or after FLUSH_MS. */
const BATCH_CHARS = 64 * 1024;
const FLUSH_MS = 5;
/** How long a client connection stays with one worker before it is asked to reconnect (grpc-js adds ±10 % jitter). */
const CONNECTION_AGE_MS = 30_000;
const CONNECTION_AGE_GRACE_MS = 10_000;

/** Set once the gRPC server is bound; from then on a drain waits for the checks in flight. */
let serving = false;

function send(msg: FromWorker): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected) return resolve();
    process.send!(msg, undefined, undefined, () => resolve());
  });
}

/**
 * Collects whole decision log lines and hands them to the primary, which is
 * the only writer of the decision log. Nothing here can split a line.
 */
class LineRelay {
  private lines: string[] = [];
  private chars = 0;
  private timer: NodeJS.Timeout | null = null;

  readonly write = (line: string): void => {
    this.lines.push(line);
    this.chars += line.length;
    if (this.chars >= BATCH_CHARS) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), FLUSH_MS);
  };

  flush(): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.lines.length === 0) return Promise.resolve();
    const text = this.lines.join('');
    this.lines = [];
    this.chars = 0;
    return send({ t: 'log', text });
  }
}

/**
 * One evaluation worker of --workers N: a cluster worker process with the
 * whole Check path (its own gRPC server on the shared address, decision
 * cache, policy engine, metrics), and nothing that must exist once: the
 * primary validates and reloads the policy, writes the decision log,
 * aggregates /metrics and answers probes.
 */
export function runWorker(): void {
  // Ctrl-C signals the whole process group, and systemd may signal every
  // process of the unit: the primary drains the workers, in order.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => undefined);
  process.on('message', (msg: ToWorker) => {
    if (msg.t === 'init') void start(msg).catch((err: unknown) => fatal(errorMessage(err)));
    // Stopped before it served: nothing can be in flight here yet.
    else if (msg.t === 'drain' && !serving) process.exit(0);
  });
  void send({ t: 'hello' });
}

async function fatal(error: string): Promise<never> {
  await send({ t: 'fatal', error: error.split('\n')[0]! });
  process.exit(1);
}

async function start(init: Extract<ToWorker, { t: 'init' }>): Promise<void> {
  const { opts, slot } = init;
  const log: Logger = pino({ level: opts.logLevel, base: { component: 'infergate-authz', worker: slot } }, pino.destination(2));
  const metrics = new Metrics('worker', String(slot));
  const cache = newDecisionCache(opts);
  metrics.cacheSize = () => cache.size;
  const policy = new WorkerPolicy(log, (seq, p, lateNs) => {
    // The revision is in every key, so old answers are never served; clearing them is housekeeping, kept off the check path.
    setImmediate(() => cache.clear());
    void send({ t: 'committed', seq, revision: p.revision, lateNs });
  });
  const first = await policy.load(init.content);
  const relay = opts.decisionLog === 'off' ? null : new LineRelay();
  const tracing = opts.tracing ? CheckTracing.start(opts.tracing) : null;
  const decide = checkHandler({
    opts,
    current: policy.current,
    cache,
    metrics,
    log,
    decisionLog: relay !== null ? createWorkerDecisionLogger(slot, relay.write) : null,
    tracing,
  });
  // A worker whose primary has died gets no reloads (a quarantine edit would never reach it), so it decides
  // nothing more. The kernel re-parents it before anyone can see the primary gone; the channel's close,
  // on which the worker exits, is only read on its next turn of the event loop.
  const primary = process.ppid;
  const check: typeof decide = (call, callback) => {
    if (process.ppid === primary) return decide(call, callback);
    callback({ code: grpc.status.UNAVAILABLE, details: 'infergate-authz: this worker has lost its primary and is stopping' });
    setImmediate(() => process.exit(1));
  };
  const { grpcServer, health, port } = await serveGrpc(check, opts, false, {
    // Connections are shared out when they open, so a client's connections stay with the workers that were
    // there then. Asking clients to reconnect now and then (GOAWAY; calls in flight finish) spreads them again
    // over all workers, a replaced one included.
    'grpc.max_connection_age_ms': CONNECTION_AGE_MS,
    'grpc.max_connection_age_grace_ms': CONNECTION_AGE_GRACE_MS,
  });
  if (init.expectPort !== null && port !== init.expectPort) {
    // The shared listening socket closed before this worker joined it (every other worker had exited), and port 0 picked another port.
    throw new Error(`bound port ${port}, not the server's port ${init.expectPort}`);
  }
  setServing(health, true);

  let draining = false;
  process.on('message', (msg: ToWorker) => {
    switch (msg.t) {
      case 'prepare':
        policy.prepare(msg.seq, msg.content).then(
          () => send({ t: 'prepared', seq: msg.seq }),
          (err: unknown) => send({ t: 'prepare-failed', seq: msg.seq, source: err instanceof LoadError ? err.source : 'bundle', error: errorMessage(err) }),
        );
        return;
      case 'commit':
        policy.commit(msg.seq, msg.at);
        return;
      case 'abort':
        policy.abort(msg.seq);
        return;
      case 'metrics':
        metrics.registry.getMetricsAsJSON().then((json) => send({ t: 'metrics', seq: msg.seq, metrics: json }));
        return;
      case 'drain':
        if (draining) return;
        draining = true;
        setServing(health, false);
        void (async () => {
          await drainGrpc(grpcServer, msg.graceMs);
          await relay?.flush();
          await tracing?.shutdown();
          policy.close();
          await send({ t: 'drained' });
          process.exit(0);
        })();
        return;
      default:
        return;
    }
  });
  serving = true;
  await send({ t: 'serving', port, revision: first.revision });
}
