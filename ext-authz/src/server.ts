import { lstatSync, unlinkSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import pino, { type Logger } from 'pino';
import { Authorizer, denyVerdict, resultOf, type ActivePolicy, type Verdict } from './authorizer.js';
import type { CheckRequest } from './check-request.js';
import { toCheckResponse, type CheckResponse } from './check-response.js';
import { DecisionCache } from './decision-cache.js';
import { EncodedAllows } from './encoded-allows.js';
import { checkResponseEncoder } from './check-response-encode.js';
import { createDecisionLogger, logDecision } from './decision-log.js';
import type { PolicyDecision } from './decision.js';
import { AuthzError, REASONS, errorMessage } from './errors.js';
import { startAdminServer, type AdminServer } from './admin-http.js';
import { Metrics } from './metrics.js';
import { PolicyStore } from './policy-store.js';
import { requestContext } from './request-context.js';
import { CheckTracing, type TracingOptions } from './tracing.js';
import { authorizationServiceTakingBytes, encodeCheckResponse } from './protos.js';

export interface ServerOptions {
  readonly bundlePath: string;
  readonly manifestPath: string | null;
  /** host:port for gRPC over TCP; port 0 picks a free one. */
  readonly listen: string | null;
  /** Path of a unix socket to serve gRPC on as well. */
  readonly socket: string | null;
  /** host:port for /metrics, /healthz and /readyz; null turns it off. */
  readonly metricsListen: string | null;
  readonly dryRun: boolean;
  readonly cacheSize: number;
  readonly cacheTtlSeconds: number;
  readonly trustXfcc: boolean;
  readonly inputHeaders: readonly string[];
  readonly decisionLog: string;
  readonly logLevel: string;
  readonly watch: boolean;
  readonly pollMs?: number;
  /** OpenTelemetry spans per check; null (the default) turns them off. */
  readonly tracing?: TracingOptions | null;
  /**
   * Evaluation processes behind the one address (the CLI's --workers; its
   * default is the CPUs the process may use). AuthzServer is one of them:
   * more than 1 is the cluster primary's business (workers/primary.ts).
   */
  readonly workers?: number;
}

export const DEFAULTS = {
  listen: '127.0.0.1:9191',
  metricsListen: '127.0.0.1:9464',
  cacheSize: 10_000,
  cacheTtlSeconds: 30,
  decisionLog: 'stdout',
  logLevel: 'info',
} as const;

const SERVICE_NAME = 'envoy.service.auth.v3.Authorization';

export class AuthzServer {
  ready = false;
  private admin: AdminServer | null = null;
  private tracing: CheckTracing | null = null;
  /** The bound port of /metrics, /healthz and /readyz, or null when off. */
  metricsPort: number | null = null;

  private constructor(
    private readonly grpcServer: grpc.Server,
    private readonly store: PolicyStore,
    private readonly health: HealthImplementation,
    readonly metrics: Metrics,
    readonly log: Logger,
    /** The bound gRPC TCP port, or null when only a socket is served. */
    readonly port: number | null,
  ) {}

  static async start(opts: ServerOptions): Promise<AuthzServer> {
    if ((opts.workers ?? 1) > 1) throw new Error('AuthzServer is one process; --workers above 1 runs workers/primary.ts');
    const log = pino({ level: opts.logLevel, base: { component: 'infergate-authz' } }, pino.destination(2));
    const metrics = new Metrics();
    const cache = newDecisionCache(opts);
    const store = new PolicyStore({
      bundlePath: opts.bundlePath,
      manifestPath: opts.manifestPath,
      log,
      metrics,
      // The revision is in every key already; clearing frees memory held by the old policy's answers.
      onSwap: () => cache.clear(),
      ...(opts.pollMs !== undefined ? { pollMs: opts.pollMs } : {}),
    });
    await store.load();
    if (opts.watch) await store.watch();
    metrics.cacheSize = () => cache.size;

    const tracing = opts.tracing ? CheckTracing.start(opts.tracing) : null;
    const check = checkHandler({ opts, current: store.current, cache, metrics, log, decisionLog: createDecisionLogger(opts.decisionLog), tracing });
    const { grpcServer, health, port } = await serveGrpc(check, opts, true);

    const server = new AuthzServer(grpcServer, store, health, metrics, log, port);
    server.tracing = tracing;
    if (opts.metricsListen !== null) {
      server.admin = await startAdminServer(opts.metricsListen, () => metrics.registry.metrics(), metrics.registry.contentType, () => server.ready);
      server.metricsPort = server.admin.port;
    }
    server.ready = true;
    setServing(health, true);
    log.info(servingFields(opts, port, server.metricsPort, cache.enabled), 'infergate-authz serving');
    return server;
  }

  get revision(): string | null {
    return this.store.current()?.revision ?? null;
  }

  /** Re-reads bundle and manifest now (the watcher does this on its own). */
  reload(): Promise<boolean> {
    return this.store.reload();
  }

  async stop(graceMs = 2000): Promise<void> {
    this.ready = false;
    setServing(this.health, false);
    this.store.close();
    await drainGrpc(this.grpcServer, graceMs);
    await this.admin?.close();
    await this.tracing?.shutdown();
  }
}

export function newDecisionCache(opts: ServerOptions): DecisionCache<PolicyDecision> {
  return new DecisionCache<PolicyDecision>({ max: opts.cacheSize, ttlMs: opts.cacheTtlSeconds * 1000, jitter: 0.1 });
}

export interface CheckDeps {
  readonly opts: ServerOptions;
  /** The policy in force, read once per check. */
  readonly current: () => ActivePolicy | null;
  readonly cache: DecisionCache<PolicyDecision>;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly decisionLog: Logger | null;
  readonly tracing: CheckTracing | null;
}

/** The Check handler: authorizer, response, metrics, decision log and span for one call. */
export function checkHandler(d: CheckDeps): grpc.handleUnaryCall<CheckRequest, CheckResponse> {
  const { opts, cache, metrics, log, decisionLog, tracing } = d;
  const authorizer = new Authorizer(d.current, cache, {
    trustXfcc: opts.trustXfcc,
    inputHeaders: [...opts.inputHeaders].map((h) => h.toLowerCase()).sort(),
  });
  const dryRun = opts.dryRun;
  const cacheOn = cache.enabled;
  const protobufjs = encodeCheckResponse();
  const encoded = new EncodedAllows(protobufjs, dryRun);
  const encode = checkResponseEncoder(protobufjs);

  return (call: grpc.ServerUnaryCall<CheckRequest, CheckResponse>, callback: grpc.sendUnaryData<CheckResponse>): void => {
    const started = process.hrtime.bigint();
    const ctx = decisionLog !== null || tracing !== null ? requestContext(call.request.attributes?.request?.http, traceParentOf(call.metadata)) : null;
    const span = tracing !== null ? tracing.begin(ctx!, Date.now()) : null;
    const finish = (verdict: Verdict): void => {
      // Bytes, served as they are (authorizationServiceTakingBytes): kept per cache entry for a hit that allows.
      const response = (encoded.forHit(verdict) ?? encode(toCheckResponse(verdict, dryRun))) as unknown as CheckResponse;
      const elapsed = Number(process.hrtime.bigint() - started);
      metrics.checkDuration.observe(elapsed / 1e9);
      metrics.countDecision(resultOf(verdict, dryRun), verdict.code);
      if (cacheOn && verdict.revision !== null) {
        if (verdict.cacheHit) metrics.cacheHits.inc();
        else metrics.cacheMisses.inc();
      }
      if (decisionLog !== null) logDecision(decisionLog, verdict, dryRun, Math.round(elapsed / 1000), ctx!);
      if (span !== null) tracing!.end(span, verdict, ctx!.requestId);
      callback(null, response);
    };
    // Authorizer catches its own errors; anything else is a bug, and a bug must deny.
    const bug = (err: unknown): void => {
      const verdict = denyVerdict(new AuthzError(REASONS.internal_error, errorMessage(err)), null, null);
      log.error({ error: verdict.detail }, 'check failed unexpectedly');
      finish(verdict);
    };
    let result: Verdict | Promise<Verdict>;
    try {
      result = authorizer.check(call.request);
    } catch (err) {
      bug(err);
      return;
    }
    // Synchronous unless an end-user token had to be verified.
    if (result instanceof Promise) result.then(finish, bug);
    else finish(result);
  };
}

/**
 * A gRPC server with the Authorization and health services on --listen and
 * --socket. `ownSocket` is false in a cluster worker: the primary holds the
 * socket file (and removed a stale one before the workers started).
 */
export async function serveGrpc(
  check: grpc.handleUnaryCall<CheckRequest, CheckResponse>,
  opts: Pick<ServerOptions, 'listen' | 'socket'>,
  ownSocket: boolean,
  channelOptions: grpc.ServerOptions = {},
): Promise<{ grpcServer: grpc.Server; health: HealthImplementation; port: number | null }> {
  const grpcServer = new grpc.Server({ 'grpc.max_concurrent_streams': 10_000, ...channelOptions });
  grpcServer.addService(authorizationServiceTakingBytes(), { Check: check });
  const health = new HealthImplementation({ '': 'NOT_SERVING', [SERVICE_NAME]: 'NOT_SERVING' });
  health.addToServer(grpcServer);

  let port: number | null = null;
  if (opts.listen !== null) port = await bind(grpcServer, opts.listen);
  if (opts.socket !== null) {
    if (ownSocket) removeStaleSocket(opts.socket);
    await bind(grpcServer, `unix:${opts.socket}`);
  }
  if (port === null && opts.socket === null) throw new Error('nothing to listen on: give --listen or --socket');
  return { grpcServer, health, port };
}

export function setServing(health: HealthImplementation, serving: boolean): void {
  const status = serving ? 'SERVING' : 'NOT_SERVING';
  health.setStatus('', status);
  health.setStatus(SERVICE_NAME, status);
}

/** Stops taking calls and answers the ones in flight; after `graceMs` the rest are cut off. */
export function drainGrpc(grpcServer: grpc.Server, graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      grpcServer.forceShutdown();
      resolve();
    }, graceMs);
    grpcServer.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** The fields of the "infergate-authz serving" line, which tools read the bound ports from. */
export function servingFields(opts: ServerOptions, port: number | null, metricsPort: number | null, cacheOn: boolean): Record<string, unknown> {
  return {
    grpc: opts.listen !== null ? `${hostOf(opts.listen)}:${port}` : null,
    socket: opts.socket,
    metrics: metricsPort !== null ? `${hostOf(opts.metricsListen!)}:${metricsPort}` : null,
    dryRun: opts.dryRun,
    cache: cacheOn ? opts.cacheSize : 0,
    tracing: opts.tracing?.endpoint ?? null,
  };
}

/** The Check call's own trace context, which Envoy sends when it traces its ext_authz calls. */
function traceParentOf(md: grpc.Metadata): string | undefined {
  const v = md.get('traceparent')[0];
  return typeof v === 'string' ? v : undefined;
}

export function hostOf(hostPort: string): string {
  return hostPort.slice(0, hostPort.lastIndexOf(':'));
}

function bind(server: grpc.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) reject(new Error(`cannot listen on ${address}: ${err.message}`));
      else resolve(port);
    });
  });
}

/** A socket file left by a crashed process would make bind fail; anything else at that path is left alone. */
export function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // Absent: nothing to remove.
  }
}
