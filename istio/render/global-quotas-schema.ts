import { z } from 'zod';
import { ManifestError, issueError, where } from '../../ext-authz/src/config-error.js';
import { compileManifest, type PolicyData } from '../../ext-authz/src/manifest.js';
import { pathRegex, pathRegexSizeError } from './path-regex.js';

/**
 * The manifest's `globalQuotas` section: budgets that Envoy's global
 * rate-limit service (envoyproxy/ratelimit) enforces across every replica,
 * counted in one Redis. Validated as strictly as the rest of the manifest,
 * because a budget that silently never applies is a bug that bills, or
 * starves, someone:
 *
 *   globalQuotas:
 *     failureMode: deny          # default for every budget: deny (fail closed) | allow
 *     timeout: 0.25s             # how long Envoy waits for the service
 *     budgets:
 *       - name: free-tenants-hourly
 *         per: tenant            # tenant | tier | caller | route
 *         tiers: [free]          # optional filters: tiers, tenants, callers, paths
 *         limit: { requests: 1000, unit: hour }
 *         failureMode: allow     # optional override
 *
 * `per` says what gets a bucket of its own: each tenant, each tier, each
 * calling workload (SPIFFE ID), or (`route`) one bucket shared by every
 * request to the budget's paths. The filters narrow which requests count.
 * Every value comes from what ext_authz verified and forwarded
 * (istio/render/global-quotas.ts), never from a client's header.
 */

export const UNITS = ['second', 'minute', 'hour', 'day'] as const;
export const PER = ['tenant', 'tier', 'caller', 'route'] as const;
export const FAILURE_MODES = ['deny', 'allow'] as const;
export type Unit = (typeof UNITS)[number];
export type Per = (typeof PER)[number];
export type FailureMode = (typeof FAILURE_MODES)[number];

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DURATION = /^[0-9]{1,2}(\.[0-9]{1,3})?s$/;
/** requests_per_unit is a uint32 in the service's configuration. */
const MAX_REQUESTS = 4_294_967_295;
/** Each is checked on every request (istio/render/global-quotas.ts): keep the product of a budget's filter values small. */
export const MAX_RULES_PER_BUDGET = 64;

const values = z.array(z.string().min(1)).min(1);

const BudgetSchema = z.strictObject({
  name: z.string().refine((s) => DNS_LABEL.test(s), { message: 'bad budget name: use a DNS label (lowercase letters, digits, "-", at most 63)' }),
  per: z.enum(PER),
  tiers: values.optional(),
  tenants: values.optional(),
  callers: values.optional(),
  paths: values.optional(),
  limit: z.strictObject({ requests: z.number().int().min(1).max(MAX_REQUESTS), unit: z.enum(UNITS) }),
  failureMode: z.enum(FAILURE_MODES).optional(),
});

export const GlobalQuotasSchema = z.strictObject({
  failureMode: z.enum(FAILURE_MODES).optional(),
  timeout: z
    .string()
    .refine((s) => DURATION.test(s) && Number(s.slice(0, -1)) > 0, { message: 'bad timeout: use seconds with an "s" suffix, more than 0 and under 100, like "0.25s"' })
    .optional(),
  budgets: z.array(BudgetSchema).min(1),
});

/** One budget, every default filled in. Filters are null when absent (every request passes them). */
export interface Budget {
  name: string;
  per: Per;
  tiers: string[] | null;
  tenants: string[] | null;
  /** SPIFFE IDs, or prefixes ending in /* (the manifest's caller patterns). */
  callers: string[] | null;
  /** The manifest's path globs. */
  paths: string[] | null;
  limit: { requests: number; unit: Unit };
  failureMode: FailureMode;
}

export interface GlobalQuotas {
  /** The check's timeout, as a proto Duration string. */
  timeout: string;
  budgets: Budget[];
}

export const DEFAULT_FAILURE_MODE: FailureMode = 'deny';
export const DEFAULT_TIMEOUT = '0.25s';

/**
 * Why the server would refuse `pattern` as a rule's caller or path glob, or
 * null: a one-rule manifest through the server's own compiler, so a budget
 * takes exactly the syntax (and gets exactly the messages) rules do.
 */
function accessPatternError(kind: 'callers' | 'paths', pattern: string, allowSemicolons: boolean): string | null {
  const probe = { trustDomains: ['probe.invalid'], requestPaths: { allowSemicolons }, rules: [{ name: 'probe', callers: ['spiffe://probe.invalid/x'], [kind]: [pattern] }] };
  try {
    compileManifest(probe, 'probe');
    return null;
  } catch (err) {
    if (!(err instanceof ManifestError)) throw err;
    return err.message.replace(/^probe: /, '').replace(/ \([^()]*\)$/, '');
  }
}

function trustDomainOf(pattern: string): string {
  const rest = pattern.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  return slash === -1 ? rest : rest.slice(0, slash);
}

/**
 * Validates the `globalQuotas` value of `file` against the access manifest
 * it sits in (`policy`: tiers, end-user claims, trust domains, path syntax)
 * and fills in defaults; errors are ManifestErrors naming `file`.
 */
export function parseGlobalQuotas(value: unknown, file: string, policy: PolicyData): GlobalQuotas {
  const parsed = GlobalQuotasSchema.safeParse(value, { reportInput: true });
  if (!parsed.success) throw issueError(file, parsed.error.issues, ['globalQuotas']);
  const q = parsed.data;
  const fail = (what: string, ...path: PropertyKey[]): never => {
    throw new ManifestError(file, what, where(['globalQuotas', ...path]));
  };
  const claims = policy.end_users?.claims ?? null;
  const allowSemicolons = policy.request_paths.allow_semicolons;
  const seen = new Map<string, number>();
  const budgets = q.budgets.map((b, i): Budget => {
    const at = (...rest: PropertyKey[]): PropertyKey[] => ['budgets', i, ...rest];
    const first = seen.get(b.name);
    if (first !== undefined) fail(`duplicate budget name "${b.name}", first used at budgets[${first}]`, ...at('name'));
    seen.set(b.name, i);
    for (const key of ['tiers', 'tenants', 'callers', 'paths'] as const) {
      b[key]?.forEach((v, j) => {
        const k = b[key]!.indexOf(v);
        if (k < j) fail(`"${v}" repeats ${key}[${k}]`, ...at(key, j));
      });
    }
    // A budget whose key or filter no request can carry would never apply.
    if (b.per === 'tenant' && claims?.tenant == null) {
      fail('per "tenant" needs endUsers.claims.tenant: no request would carry a verified tenant, so the budget would never apply', ...at('per'));
    }
    if (b.per === 'tier' && claims?.tier == null) {
      fail('per "tier" needs endUsers.claims.tier: no request would carry a verified tier, so the budget would never apply', ...at('per'));
    }
    if (b.tenants !== undefined && claims?.tenant == null) fail('"tenants" needs endUsers.claims.tenant (which claim holds it)', ...at('tenants'));
    b.tiers?.forEach((t, j) => {
      if (policy.tiers === null || !(t in policy.tiers)) fail(`unknown tier "${t}": not in the tiers section`, ...at('tiers', j));
    });
    b.callers?.forEach((c, j) => {
      const err = accessPatternError('callers', c, allowSemicolons);
      if (err !== null) fail(err, ...at('callers', j));
      const td = trustDomainOf(c);
      if (!(td in policy.trust_domains)) fail(`caller pattern "${c}": trust domain "${td}" is not in trustDomains, so no such caller is ever allowed`, ...at('callers', j));
    });
    b.paths?.forEach((g, j) => {
      const err = accessPatternError('paths', g, allowSemicolons) ?? pathRegexSizeError(g, pathRegex(g));
      if (err !== null) fail(err, ...at('paths', j));
    });
    if (b.per === 'route' && b.paths === undefined) fail('per "route" needs paths: the model routes whose requests share the bucket', ...at());
    const rules = [b.tiers, b.tenants, b.callers, b.paths].reduce((n, v) => n * (v?.length ?? 1), 1);
    if (rules > MAX_RULES_PER_BUDGET) {
      fail(`its filters make ${rules} rate-limit rules (tiers × tenants × callers × paths), more than ${MAX_RULES_PER_BUDGET}; each is checked on every request`, ...at());
    }
    return {
      name: b.name,
      per: b.per,
      tiers: b.tiers ?? null,
      tenants: b.tenants ?? null,
      callers: b.callers ?? null,
      paths: b.paths ?? null,
      limit: { ...b.limit },
      failureMode: b.failureMode ?? q.failureMode ?? DEFAULT_FAILURE_MODE,
    };
  });
  return { timeout: q.timeout ?? DEFAULT_TIMEOUT, budgets };
}
