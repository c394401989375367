import { z } from 'zod';
import { issueError } from '../../ext-authz/src/config-error.js';
import { GUARD_MODULES, type GuardModule, MODULE_PLACEHOLDER, guardCovers, guardModuleFor, guardNeeds } from './guard-modules.js';

/**
 * The `deployment` section of infergate.yaml: how `infergate render` installs
 * infergate in an Istio mesh. Validated as strictly as the access manifest
 * (unknown keys are errors), because a misspelt limit that silently falls back
 * to a default is a security bug. The filter configs mirror exactly what the
 * proxy-wasm filters accept in on_configure (filters/*\/config.ts), so a config
 * Envoy would reject is caught here, before anything reaches a cluster.
 */

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_PREFIX = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;
// Proto JSON Duration (meshConfig is proto, not a CRD): seconds with an "s" suffix.
const DURATION = /^[0-9]{1,5}(\.[0-9]{1,9})?s$/;
const CPU = /^([1-9][0-9]{0,5}m|[0-9]{1,3}(\.[0-9]{1,3})?)$/;
const MEMORY = /^[1-9][0-9]{0,5}(Ki|Mi|Gi)$/;
// The filters' own bounds (filters/*/config.ts).
const MAX_BYTES = 1125899906842624;
const MAX_RATE = 1_000_000;
const MAX_IDENTITY_BYTES = 2048;
const MAX_IDLE_SECONDS = 3600;

function labelKeyError(k: string): string | null {
  const slash = k.indexOf('/');
  const prefix = slash >= 0 ? k.slice(0, slash) : null;
  const name = slash >= 0 ? k.slice(slash + 1) : k;
  if (prefix !== null && !LABEL_PREFIX.test(prefix)) return `bad label key "${k}": prefix must be a DNS subdomain`;
  if (!LABEL_NAME.test(name)) return `bad label key "${k}": name must be 1-63 letters, digits, "-", "_", "." starting and ending alphanumeric`;
  return null;
}

const dnsLabel = (what: string) => z.string().refine((s) => DNS_LABEL.test(s), { message: `bad ${what}: use a DNS label (lowercase letters, digits, "-", at most 63)` });

const Selector = z
  .record(z.string(), z.string())
  .superRefine((labels, ctx) => {
    const keys = Object.keys(labels);
    if (keys.length === 0) ctx.addIssue({ code: 'custom', message: 'must not be empty: an empty selector would protect every workload in the namespace', path: [] });
    for (const k of keys) {
      const err = labelKeyError(k);
      if (err !== null) ctx.addIssue({ code: 'custom', message: err, path: [k] });
      else if (!LABEL_VALUE.test(labels[k]!)) ctx.addIssue({ code: 'custom', message: `bad label value "${labels[k]}"`, path: [k] });
    }
  });

const Workload = z.strictObject({
  /** Names the rendered per-workload resources: infergate-<name>. */
  name: dnsLabel('workload name'),
  namespace: dnsLabel('namespace'),
  /** matchLabels of the pods to protect. */
  selector: Selector,
  /** Only these ports are gated (default: every port of the workload). */
  ports: z.array(z.number().int().min(1).max(65535)).min(1).optional(),
});

const Resources = z.strictObject({
  cpu: z.string().refine((s) => CPU.test(s), { message: 'bad cpu quantity: use millicores like "250m" or cores like "1"' }),
  memory: z.string().refine((s) => MEMORY.test(s), { message: 'bad memory quantity: use Ki, Mi or Gi, like "256Mi"' }),
});

const image = z.string().refine((s) => /^[a-z0-9][a-z0-9._\/:-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})$/.test(s) && !s.endsWith(':latest'), {
  message: 'bad image: pin a tag (not latest) or a sha256 digest',
});
// At least 2: the PodDisruptionBudget keeps one up, and with one replica it would block every node drain.
const replicas = z.number().int().min(2).max(100);
const ResourcePair = z.strictObject({ requests: Resources, limits: Resources });

const Server = z.strictObject({
  image,
  replicas: replicas.optional(),
  resources: ResourcePair.optional(),
  /** Passes --dry-run: every request is allowed, would-be denials are logged and counted. */
  dryRun: z.boolean().optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).optional(),
});

const Provider = z.strictObject({
  name: dnsLabel('provider name').optional(),
  /** Istio's default is 600s: far too long for a check on every inference call. */
  timeout: z.string().refine((s) => DURATION.test(s), { message: 'bad timeout: use seconds with an "s" suffix, like "0.5s"' }).optional(),
  /** HTTP status when the server cannot be reached (Istio default 403). */
  statusOnError: z.enum(['403', '500', '503']).optional(),
});

const PayloadRoute = z
  .strictObject({
    prefix: z.string().optional(),
    path: z.string().optional(),
    maxBytes: z.number().int().min(0).max(MAX_BYTES),
  })
  .superRefine((r, ctx) => {
    if ((r.prefix === undefined) === (r.path === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'needs exactly one of "prefix" or "path"', path: [] });
      return;
    }
    const key = r.prefix !== undefined ? 'prefix' : 'path';
    const pattern = (r.prefix ?? r.path)!;
    if (!pattern.startsWith('/')) ctx.addIssue({ code: 'custom', message: 'pattern must start with /', path: [key] });
    else if (key === 'prefix' && pattern.includes('*')) ctx.addIssue({ code: 'custom', message: '"prefix" takes no wildcard; use "path"', path: [key] });
  });

export const PayloadLimitConfig = z.strictObject({
  defaultMaxBytes: z.number().int().min(0).max(MAX_BYTES),
  routes: z.array(PayloadRoute).optional(),
  maxResponseBytes: z.number().int().min(0).max(MAX_BYTES).optional(),
});

const limitFields = { perSecond: z.number().int().min(1).max(MAX_RATE), burst: z.number().int().min(1).max(MAX_RATE) };

export const RateLimitConfig = z.strictObject({
  identity: z.string().refine((s) => s === 'peer_certificate' || /^header:.+$/.test(s), { message: 'identity must be "peer_certificate" or "header:<name>"' }),
  default: z.strictObject(limitFields),
  callers: z
    .array(
      z.strictObject({
        match: z.string()
          .refine((m) => m.length > 0 && m !== '*' && (!m.includes('*') || m.indexOf('*') === m.length - 1), {
            message: 'match must be an identity, or a prefix ending in a single trailing *',
          })
          .refine((m) => Buffer.byteLength(m.replace(/\*$/, '')) <= MAX_IDENTITY_BYTES, { message: `match is longer than ${MAX_IDENTITY_BYTES} bytes, the longest identity` }),
        ...limitFields,
      }),
    )
    .superRefine((callers, ctx) => {
      callers.forEach((c, i) => {
        const first = callers.findIndex((o) => o.match === c.match);
        if (first < i) ctx.addIssue({ code: 'custom', message: `match repeats callers[${first}].match`, path: [i, 'match'] });
      });
    })
    .optional(),
  unauthenticated: z.enum(['deny', 'allow']).optional(),
  /** Shared slots; each exact `callers` rule has a bucket of its own on top. */
  maxCallers: z.number().int().min(1).max(MAX_RATE).optional(),
  idleSeconds: z.number().int().min(0).max(MAX_IDLE_SECONDS).optional(),
  failureMode: z.enum(['deny', 'allow']).optional(),
  /** x-ratelimit-* on allowed responses (default true); false lets the guard skip the response side entirely. */
  budgetHeaders: z.boolean().optional(),
}).superRefine((c, ctx) => {
  const maxCallers = c.maxCallers ?? 10000;
  const reserved = (c.callers ?? []).filter((r) => !r.match.endsWith('*')).length;
  if (maxCallers + reserved > MAX_RATE) {
    ctx.addIssue({ code: 'custom', message: `maxCallers (${maxCallers}) plus one bucket for each of the ${reserved} exact callers rules must be at most ${MAX_RATE}`, path: ['maxCallers'] });
  }
});

const wasmUrl = z.string().refine((s) => /^(oci|https|file):\/\/\S+$/.test(s), { message: 'bad url: use oci://, https:// or file://' });
const sha256 = z.string().refine((s) => /^[0-9a-f]{64}$/.test(s), { message: 'bad sha256: 64 lowercase hex digits' });

const filter = <T extends z.ZodType>(config: T) =>
  z.strictObject({
    /** WasmPlugin url (form separate only); default file://<moduleDir>/<filter>.wasm, the same file the EnvoyFilter form loads. */
    url: wasmUrl.optional(),
    sha256: sha256.optional(),
    config,
  });

const FORMS = ['guard', 'separate'] as const;

const Filters = z
  .strictObject({
    /** Where the .wasm modules sit inside each protected pod's istio-proxy container. */
    moduleDir: z.string().refine((s) => /^\/[A-Za-z0-9._\/-]*[^\/]$/.test(s), { message: 'bad moduleDir: an absolute path without a trailing /' }).optional(),
    /**
     * guard (default): one module (filters/guard) runs both checks in one
     * filter, cheaper than two; separate: one module and filter per check.
     */
    form: z.enum(FORMS).optional(),
    /**
     * The guard module's location. Guard is built several times, each build
     * exporting only the callbacks some configurations need (guard-modules.ts);
     * render picks the smallest build the configuration needs, unless
     * `module` pins one. `url` names the build with {module} (default
     * file://<moduleDir>/{module}.wasm); `sha256` maps a build to its digest.
     */
    guard: z.strictObject({
      module: z.enum(GUARD_MODULES).optional(),
      url: wasmUrl.optional(),
      sha256: z.record(z.string(), sha256).optional(),
    }).optional(),
    payloadLimit: filter(PayloadLimitConfig).optional(),
    rateLimit: filter(RateLimitConfig).optional(),
  })
  .superRefine((f, ctx) => {
    // A module location where the form loads no such module would be silently ignored.
    if ((f.form ?? 'guard') === 'guard') {
      for (const part of ['payloadLimit', 'rateLimit'] as const) {
        for (const key of ['url', 'sha256'] as const) {
          if (f[part]?.[key] !== undefined) {
            ctx.addIssue({ code: 'custom', message: `${key} is per module: with filters.form guard (the default) set filters.guard.${key}`, path: [part, key] });
          }
        }
      }
      if (f.guard !== undefined && f.payloadLimit === undefined && f.rateLimit === undefined) {
        ctx.addIssue({ code: 'custom', message: 'guard has nothing to check: configure filters.rateLimit, filters.payloadLimit or both', path: ['guard'] });
      } else if (f.guard !== undefined) {
        guardModuleIssues(f.guard, f.rateLimit?.config ?? null, f.payloadLimit?.config ?? null, ctx);
      }
    } else if (f.guard !== undefined) {
      ctx.addIssue({ code: 'custom', message: 'guard is only for filters.form guard: with filters.form separate set url and sha256 on rateLimit and payloadLimit', path: ['guard'] });
    }
  });

const BUILDS = GUARD_MODULES.join(', ');

/**
 * filters.guard against the configuration: a pinned build must export every
 * callback the configuration needs (the module would refuse it at start-up;
 * better to say so before anything reaches a cluster), a url must tell the
 * builds apart, and a sha256 map must pin the build actually deployed.
 */
function guardModuleIssues(
  g: { module?: GuardModule; url?: string; sha256?: Record<string, string> },
  rl: RateLimit | null,
  pl: PayloadLimit | null,
  ctx: z.RefinementCtx,
): void {
  const needs = guardNeeds(rl, pl);
  if (g.module !== undefined && !guardCovers(g.module, needs)) {
    const why = needs.responseBody
      ? `payloadLimit.config.maxResponseBytes (${pl!.maxResponseBytes}) needs the response-headers and response-body callbacks, which ${g.module} does not export: use guard`
      : `rateLimit.config.budgetHeaders (true, the default) needs the response-headers callback, which ${g.module} does not export: use guard-no-response-body or guard, or set budgetHeaders to false`;
    ctx.addIssue({ code: 'custom', message: why, path: ['guard', 'module'] });
    return;
  }
  if (g.url !== undefined && g.module === undefined && !g.url.includes(MODULE_PLACEHOLDER)) {
    ctx.addIssue({
      code: 'custom',
      message: `url has no ${MODULE_PLACEHOLDER}: each guard build (${BUILDS}) is its own file, and render picks the one the configuration needs; put ${MODULE_PLACEHOLDER} where the build's name goes, or pin one build with filters.guard.module`,
      path: ['guard', 'url'],
    });
    return;
  }
  const digests = g.sha256 ?? {};
  for (const key of Object.keys(digests)) {
    if (!(GUARD_MODULES as readonly string[]).includes(key)) {
      ctx.addIssue({ code: 'custom', message: `unknown guard build "${key}": the builds are ${BUILDS}`, path: ['guard', 'sha256', key] });
      return;
    }
  }
  const module = g.module ?? guardModuleFor(rl, pl);
  if (g.sha256 !== undefined && digests[module] === undefined) {
    ctx.addIssue({ code: 'custom', message: `no sha256 for ${module}, the guard build this configuration deploys: add it, or the module would go unpinned`, path: ['guard', 'sha256'] });
  }
}

export const DeploymentSchema = z
  .strictObject({
    /** Namespace of the ext_authz server. */
    namespace: dnsLabel('namespace'),
    server: Server,
    provider: Provider.optional(),
    workloads: z.array(Workload).min(1),
    filters: Filters.optional(),
    /** The global rate-limit service (envoyproxy/ratelimit), only with a globalQuotas section. */
    rateLimitService: z
      .strictObject({ image: image.optional(), replicas: replicas.optional(), resources: ResourcePair.optional(), logLevel: z.enum(['debug', 'info', 'warn', 'error']).optional() })
      .optional(),
    /** Its Redis: one replica, in memory only (a restart loses at most the current window). */
    redis: z.strictObject({ image: image.optional(), resources: ResourcePair.optional() }).optional(),
  })
  .superRefine((d, ctx) => {
    const seen = new Map<string, number>();
    d.workloads.forEach((w, i) => {
      const first = seen.get(w.name);
      if (first !== undefined) ctx.addIssue({ code: 'custom', message: `duplicate workload name "${w.name}", first used at workloads[${first}]`, path: ['workloads', i, 'name'] });
      seen.set(w.name, i);
      // The server's own sidecar would have to ask the server whether it may reach the server.
      if (w.namespace === d.namespace) {
        ctx.addIssue({ code: 'custom', message: `workload namespace "${w.namespace}" is the ext_authz server's namespace; protect workloads elsewhere`, path: ['workloads', i, 'namespace'] });
      }
    });
  });

export type DeploymentInput = z.infer<typeof DeploymentSchema>;
export type Workload = z.infer<typeof Workload>;
export type PayloadLimit = z.infer<typeof PayloadLimitConfig>;
export type RateLimit = z.infer<typeof RateLimitConfig>;

/** Where a wasm module comes from (WasmPlugin url, optional sha256). */
export interface WasmModule {
  url: string;
  sha256: string | null;
}

/** A filter's configuration; in the separate form also its own module. */
export interface FilterSpec<C> extends WasmModule {
  config: C;
}

export type FilterForm = (typeof FORMS)[number];

/** Form guard: one module (a guard build) runs every configured check. */
export interface GuardFilters {
  form: 'guard';
  moduleDir: string;
  /** The build deployed (pinned, or the smallest the configuration needs), its url and sha256. */
  guard: WasmModule & { module: GuardModule };
  payloadLimit: { config: PayloadLimit } | null;
  rateLimit: { config: RateLimit } | null;
}

/** Form separate: one module per configured check. */
export interface SeparateFilters {
  form: 'separate';
  moduleDir: string;
  payloadLimit: FilterSpec<PayloadLimit> | null;
  rateLimit: FilterSpec<RateLimit> | null;
}

/** The deployment with every default filled in: renderers never guess. */
export interface Deployment {
  namespace: string;
  server: {
    image: string;
    replicas: number;
    resources: ResourcesPair;
    dryRun: boolean;
    logLevel: string;
  };
  provider: { name: string; timeout: string; statusOnError: string | null };
  workloads: Workload[];
  filters: GuardFilters | SeparateFilters;
  /** Defaults filled in whether or not the manifest has globalQuotas; rendered only if it has. */
  rateLimitService: { image: string; replicas: number; resources: ResourcesPair; logLevel: string };
  redis: { image: string; resources: ResourcesPair };
}

export interface ResourcesPair {
  requests: { cpu: string; memory: string };
  limits: { cpu: string; memory: string };
}

export const DEFAULTS = {
  replicas: 2,
  resources: { requests: { cpu: '250m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } },
  providerName: 'infergate',
  timeout: '0.5s',
  moduleDir: '/var/local/lib/wasm-filters',
  form: 'guard',
  // The envoyproxy/ratelimit commit scripts/versions.sh pins (its images are tagged with 8 hex digits of it),
  // and the Redis release Debian ships, which the tests run.
  rateLimitImage: 'docker.io/envoyproxy/ratelimit:3fb70258',
  rateLimitResources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { cpu: '1', memory: '256Mi' } },
  redisImage: 'docker.io/library/redis:7.0.15-bookworm',
  redisResources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { cpu: '1', memory: '256Mi' } },
} as const;

/** Validates the `deployment` value of `file` and fills in defaults; errors are ManifestErrors. */
export function parseDeployment(value: unknown, file: string): Deployment {
  const parsed = DeploymentSchema.safeParse(value, { reportInput: true });
  if (!parsed.success) throw issueError(file, parsed.error.issues, ['deployment']);
  const d = parsed.data;
  const moduleDir = d.filters?.moduleDir ?? DEFAULTS.moduleDir;
  const module = (m: { url?: string; sha256?: string } | undefined, id: string): WasmModule => ({ url: m?.url ?? `file://${moduleDir}/${id}.wasm`, sha256: m?.sha256 ?? null });
  const pl = d.filters?.payloadLimit;
  const rl = d.filters?.rateLimit;
  const filters: GuardFilters | SeparateFilters =
    (d.filters?.form ?? DEFAULTS.form) === 'guard'
      ? { form: 'guard', moduleDir, guard: guardModule(d.filters?.guard, moduleDir, rl?.config ?? null, pl?.config ?? null), payloadLimit: pl ? { config: pl.config } : null, rateLimit: rl ? { config: rl.config } : null }
      : {
          form: 'separate',
          moduleDir,
          payloadLimit: pl ? { ...module(pl, 'payload-limit'), config: pl.config } : null,
          rateLimit: rl ? { ...module(rl, 'rate-limit'), config: rl.config } : null,
        };
  return {
    namespace: d.namespace,
    server: {
      image: d.server.image,
      replicas: d.server.replicas ?? DEFAULTS.replicas,
      resources: d.server.resources ?? structuredClone(DEFAULTS.resources),
      dryRun: d.server.dryRun ?? false,
      logLevel: d.server.logLevel ?? 'info',
    },
    provider: { name: d.provider?.name ?? DEFAULTS.providerName, timeout: d.provider?.timeout ?? DEFAULTS.timeout, statusOnError: d.provider?.statusOnError ?? null },
    workloads: d.workloads,
    filters,
    rateLimitService: {
      image: d.rateLimitService?.image ?? DEFAULTS.rateLimitImage,
      replicas: d.rateLimitService?.replicas ?? DEFAULTS.replicas,
      resources: d.rateLimitService?.resources ?? structuredClone(DEFAULTS.rateLimitResources),
      logLevel: d.rateLimitService?.logLevel ?? 'warn',
    },
    redis: { image: d.redis?.image ?? DEFAULTS.redisImage, resources: d.redis?.resources ?? structuredClone(DEFAULTS.redisResources) },
  };
}

/** The guard build to deploy, with its url (the template filled in) and sha256 (its entry in the map). */
function guardModule(
  g: { module?: GuardModule; url?: string; sha256?: Record<string, string> } | undefined,
  moduleDir: string,
  rl: RateLimit | null,
  pl: PayloadLimit | null,
): WasmModule & { module: GuardModule } {
  const module = g?.module ?? guardModuleFor(rl, pl);
  const url = (g?.url ?? `file://${moduleDir}/${MODULE_PLACEHOLDER}.wasm`).replaceAll(MODULE_PLACEHOLDER, module);
  return { module, url, sha256: g?.sha256?.[module] ?? null };
}
