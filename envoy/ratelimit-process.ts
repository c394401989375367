import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, requireFile } from '../ext-authz/src/repo-root.js';
import { freePort, startService, type ServiceProcess } from './service-process.js';

export interface RateLimitProcess extends ServiceProcess {
  /** gRPC (envoy.service.ratelimit.v3.RateLimitService). */
  readonly grpcPort: number;
  /** HTTP: /healthcheck, /json. */
  readonly httpPort: number;
  /** Debug HTTP: /rlconfig, the limits the service actually loaded. */
  readonly debugPort: number;
  /** The directory it reads its configuration from; a new file there is picked up (RUNTIME_WATCH_ROOT). */
  readonly configDir: string;
  /** The same service again on the same ports, e.g. after it was killed. */
  restart(): Promise<RateLimitProcess>;
}

export function rateLimitBinary(): string {
  return requireFile(`${REPO_ROOT}.tools/bin/ratelimit`, 'run `make setup` (go install github.com/envoyproxy/ratelimit/src/service_cmd at the version in scripts/versions.sh)');
}

export interface RateLimitOptions {
  /** The service's YAML configuration (what `infergate render` writes), one domain per file. */
  readonly config: string;
  readonly redisPort: number;
  readonly grpcPort?: number;
  readonly httpPort?: number;
}

/**
 * Envoy's reference global rate-limit service (envoyproxy/ratelimit) on
 * loopback, reading one configuration file, counting in Redis. Its own
 * x-ratelimit response headers are off: Envoy's ratelimit filter computes
 * them from the service's answer (enable_x_ratelimit_headers).
 */
export async function startRateLimit(o: RateLimitOptions): Promise<RateLimitProcess> {
  const grpcPort = o.grpcPort ?? (await freePort());
  const httpPort = o.httpPort ?? (await freePort());
  const debugPort = await freePort();
  const root = mkdtempSync(join(tmpdir(), 'infergate-ratelimit-'));
  const configDir = join(root, 'ratelimit', 'config');
  mkdirSync(configDir, { recursive: true });
  writeFileSync(join(configDir, 'infergate.yaml'), o.config);
  const proc = await startService('ratelimit', rateLimitBinary(), [], {
    USE_STATSD: 'false',
    // Without a stats sink the service logs every timer to stdout, a line or two per request: a parent
    // that stops reading for a moment (a blocked event loop) fills the pipe and the service hangs after
    // about a hundred requests. Envoy's ratelimit filters keep their own counters.
    DISABLE_STATS: 'true',
    LOG_LEVEL: 'warn',
    LOG_FORMAT: 'json',
    REDIS_SOCKET_TYPE: 'tcp',
    REDIS_URL: `127.0.0.1:${o.redisPort}`,
    RUNTIME_ROOT: root,
    RUNTIME_SUBDIRECTORY: 'ratelimit',
    RUNTIME_APPDIRECTORY: 'config',
    RUNTIME_WATCH_ROOT: 'false',
    HOST: '127.0.0.1',
    PORT: String(httpPort),
    GRPC_HOST: '127.0.0.1',
    GRPC_PORT: String(grpcPort),
    DEBUG_HOST: '127.0.0.1',
    DEBUG_PORT: String(debugPort),
  }, async () => (await fetch(`http://127.0.0.1:${httpPort}/healthcheck`)).status === 200);
  const stop = async (): Promise<void> => {
    await proc.stop();
    rmSync(root, { recursive: true, force: true });
  };
  return { ...proc, stop, grpcPort, httpPort, debugPort, configDir, restart: () => startRateLimit({ ...o, grpcPort, httpPort }) };
}
