import { parseArgs } from 'node:util';
import { availableCpus } from './cpu-count.js';
import { REPO_ROOT } from './repo-root.js';
import { DEFAULTS, type ServerOptions } from './server.js';
import type { TracingOptions } from './tracing.js';

/** --workers' default, read from affinity and the cgroup files once per process. */
const DEFAULT_WORKERS = availableCpus().cpus;

export const USAGE = `Usage: infergate-authz [options]

Envoy ext_authz (v3, gRPC) server: decides each request from the caller's
SPIFFE identity and the route, with a Rego policy compiled to WebAssembly.

Options:
  --manifest FILE        access manifest (YAML or JSON) for the default policy
  --bundle FILE          policy bundle from "opa build -t wasm -e infergate/authz/decision"
                         (default: the built-in policy, build/policy/bundle.tar.gz)
  --listen HOST:PORT     gRPC over TCP (default ${DEFAULTS.listen}; "off" to serve only --socket)
  --socket PATH          also serve gRPC on this unix socket
  --metrics HOST:PORT    /metrics, /healthz, /readyz (default ${DEFAULTS.metricsListen}; "off" to disable)
  --dry-run              allow everything, but log and count what would have been denied
  --cache-size N         decision cache entries, 0 turns the cache off (default ${DEFAULTS.cacheSize})
  --cache-ttl SECONDS    decision cache TTL; entries expire up to 10% early (default ${DEFAULTS.cacheTtlSeconds})
  --input-header NAME    copy this request header into the policy input (repeatable)
  --trust-xfcc           take the caller from the last x-forwarded-client-cert element
                         (only behind a trusted front proxy that sets it)
  --decision-log DEST    stdout, stderr, off, or a file path (default ${DEFAULTS.decisionLog})
  --log-level LEVEL      fatal, error, warn, info, debug, trace (default ${DEFAULTS.logLevel})
  --no-watch             do not reload when the manifest or bundle changes
  --otlp-endpoint URL    export a span per check over OTLP/HTTP (e.g. http://collector:4318/v1/traces);
                         off by default
  --trace-ratio R        share of checks without a sampled traceparent that start a trace
                         (0 to 1, default 0: follow the mesh's sampling only)
  --workers N            evaluation processes behind the one --listen/--socket address, with one
                         decision log and one /metrics (default: the CPUs this process may use,
                         after affinity and a cgroup CPU quota; here ${DEFAULT_WORKERS}); 1 runs a single process
  --check                load and validate manifest and bundle, print the revision, exit
  -h, --help             this text
`;

export class UsageError extends Error {}

export const DEFAULT_BUNDLE = `${REPO_ROOT}build/policy/bundle.tar.gz`;

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function hostPort(flag: string, v: string): string {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(v);
  if (!m || Number(m[2]) > 65535) throw new UsageError(`${flag}: expected HOST:PORT, got "${v}"`);
  return v;
}

function count(flag: string, v: string, max: number): number {
  if (!/^[0-9]+$/.test(v) || Number(v) > max) throw new UsageError(`${flag}: expected a whole number from 0 to ${max}, got "${v}"`);
  return Number(v);
}

function tracingOptions(endpoint: string | undefined, ratio: string | undefined): TracingOptions | null {
  if (endpoint === undefined) {
    if (ratio !== undefined) throw new UsageError('--trace-ratio needs --otlp-endpoint URL');
    return null;
  }
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new UsageError(`--otlp-endpoint: expected an http(s) URL, got "${endpoint}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--otlp-endpoint: expected an http(s) URL, got "${endpoint}"`);
  const r = Number(ratio ?? '0');
  if (ratio !== undefined && (!/^(0|1|0?\.[0-9]+|1\.0*)$/.test(ratio) || r > 1)) throw new UsageError(`--trace-ratio: expected a number from 0 to 1, got "${ratio}"`);
  return { endpoint, ratio: r };
}

export type Parsed = { help: true } | { help: false; check: boolean; options: ServerOptions };

/** Parses argv (without node and script); throws UsageError with a one-line message. */
export function parseCliArgs(argv: string[]): Parsed {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        manifest: { type: 'string' },
        bundle: { type: 'string' },
        listen: { type: 'string' },
        socket: { type: 'string' },
        metrics: { type: 'string' },
        'dry-run': { type: 'boolean' },
        'cache-size': { type: 'string' },
        'cache-ttl': { type: 'string' },
        'input-header': { type: 'string', multiple: true },
        'trust-xfcc': { type: 'boolean' },
        'decision-log': { type: 'string' },
        'log-level': { type: 'string' },
        'no-watch': { type: 'boolean' },
        'otlp-endpoint': { type: 'string' },
        'trace-ratio': { type: 'string' },
        workers: { type: 'string' },
        check: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]!);
  }
  if (values.help) return { help: true };
  const listen = values.listen === 'off' ? null : hostPort('--listen', values.listen ?? DEFAULTS.listen);
  const metrics = values.metrics === 'off' ? null : hostPort('--metrics', values.metrics ?? DEFAULTS.metricsListen);
  const logLevel = values['log-level'] ?? DEFAULTS.logLevel;
  if (!LEVELS.has(logLevel)) throw new UsageError(`--log-level: expected one of ${[...LEVELS].join(', ')}, got "${logLevel}"`);
  const headers = values['input-header'] ?? [];
  for (const h of headers) if (!HEADER_NAME.test(h)) throw new UsageError(`--input-header: "${h}" is not a header name`);
  if (listen === null && values.socket === undefined) throw new UsageError('--listen off needs --socket PATH');
  const tracing = tracingOptions(values['otlp-endpoint'], values['trace-ratio']);
  return {
    help: false,
    check: values.check ?? false,
    options: {
      bundlePath: values.bundle ?? DEFAULT_BUNDLE,
      manifestPath: values.manifest ?? null,
      listen,
      socket: values.socket ?? null,
      metricsListen: metrics,
      dryRun: values['dry-run'] ?? false,
      cacheSize: count('--cache-size', values['cache-size'] ?? String(DEFAULTS.cacheSize), 10_000_000),
      cacheTtlSeconds: count('--cache-ttl', values['cache-ttl'] ?? String(DEFAULTS.cacheTtlSeconds), 86_400),
      trustXfcc: values['trust-xfcc'] ?? false,
      inputHeaders: headers.map((h) => h.toLowerCase()),
      decisionLog: values['decision-log'] ?? DEFAULTS.decisionLog,
      logLevel,
      watch: !(values['no-watch'] ?? false),
      tracing,
      workers: values.workers === undefined ? DEFAULT_WORKERS : workerCount(values.workers),
    },
  };
}

/** More processes than this is a typo, not a machine. */
export const MAX_WORKERS = 256;

function workerCount(v: string): number {
  if (!/^[0-9]+$/.test(v) || Number(v) < 1 || Number(v) > MAX_WORKERS) throw new UsageError(`--workers: expected a whole number from 1 to ${MAX_WORKERS}, got "${v}"`);
  return Number(v);
}
