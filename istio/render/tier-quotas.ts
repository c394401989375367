import { ManifestError } from '../../ext-authz/src/config-error.js';
import type { PolicyData } from '../../ext-authz/src/manifest.js';
import type { Deployment, RateLimit } from './deployment-schema.js';

/**
 * Tier quotas: each `tiers.<name>.rateLimit` of the access manifest becomes a
 * rate-limit `callers` rule `tenant/<name>/*` in the guard filter's (or the
 * rate-limit filter's) configuration. The filter then has to key on the
 * quota header the server sets on every request it allows
 * (ext-authz/src/check-response.ts quotaKey): `tenant/<tier>/<tenant>` for an
 * end user, `workload/<spiffe id>` for workload traffic. A prefix rule gives
 * each identity it matches a bucket of its own, so each tenant of a tier gets
 * the tier's budget, shared by every workload that calls for that tenant.
 *
 * Errors, all strict, because a quota that silently never applies is a
 * security bug:
 *  - a tier quota without a rate limit keyed on the quota header;
 *  - a `callers` rule for `tenant/<tier>/*` where that tier has a rateLimit
 *    (two places for one budget: which one wins would be a guess);
 *  - with the quota header as identity, a `callers` match no quota key can
 *    have (a `spiffe://` ID left over from `identity: peer_certificate`).
 */

export const QUOTA_HEADER = 'x-infergate-quota';
export const QUOTA_IDENTITY = `header:${QUOTA_HEADER}`;
/** The two shapes of quota key the server sets. */
const QUOTA_KEY_KINDS = ['tenant/', 'workload/'] as const;

export function tierMatch(tier: string): string {
  return `tenant/${tier}/*`;
}

/** The filter reads header names case-insensitively (filters/rate-limit/config.ts lower-cases them). */
function keysOnQuotaHeader(identity: string): boolean {
  return identity.toLowerCase() === QUOTA_IDENTITY;
}

/** True if some quota key can match: an exact match must be one; a prefix must overlap one of the two kinds. */
function canMatchQuotaKey(match: string): boolean {
  const prefix = match.endsWith('*');
  const stem = prefix ? match.slice(0, -1) : match;
  return QUOTA_KEY_KINDS.some((k) => stem.startsWith(k) || (prefix && k.startsWith(stem)));
}

/** The deployment with each tier quota added to its rate-limit rules; errors are ManifestErrors naming `file`. */
export function withTierQuotas(d: Deployment, tiers: PolicyData['tiers'], file: string): Deployment {
  const rl = d.filters.rateLimit;
  const quotas = Object.entries(tiers ?? {}).flatMap(([name, t]) => (t.rate_limit !== null ? [{ name, ...t.rate_limit }] : []));
  const cfgAt = 'deployment.filters.rateLimit.config';
  if (rl !== null && keysOnQuotaHeader(rl.config.identity)) {
    (rl.config.callers ?? []).forEach((c, i) => {
      if (!canMatchQuotaKey(c.match)) {
        const hint = c.match.startsWith('spiffe://') ? `; write "workload/${c.match}"` : '';
        throw new ManifestError(file, `match "${c.match}" can never match: with identity "${QUOTA_IDENTITY}" the rate limit keys on "workload/<spiffe id>" or "tenant/<tier>/<tenant>"${hint}`, `${cfgAt}.callers[${i}].match`);
      }
    });
  }
  if (quotas.length === 0) return d;
  const first = quotas[0]!.name;
  if (rl === null) {
    throw new ManifestError(file, `a tier quota needs the rate-limit filter: configure deployment.filters.rateLimit with identity "${QUOTA_IDENTITY}"`, `tiers.${first}.rateLimit`);
  }
  if (!keysOnQuotaHeader(rl.config.identity)) {
    throw new ManifestError(file, `tier quotas (tiers.${first}.rateLimit) need identity "${QUOTA_IDENTITY}", the quota key the server sets; got "${rl.config.identity}"`, `${cfgAt}.identity`);
  }
  const callers = rl.config.callers ?? [];
  for (const q of quotas) {
    const i = callers.findIndex((c) => c.match === tierMatch(q.name));
    if (i !== -1) {
      throw new ManifestError(file, `match "${tierMatch(q.name)}" is tier ${q.name}'s quota, which tiers.${q.name}.rateLimit sets; remove one of the two`, `${cfgAt}.callers[${i}].match`);
    }
  }
  const config: RateLimit = { ...rl.config, callers: [...callers, ...quotas.map((q) => ({ match: tierMatch(q.name), perSecond: q.per_second, burst: q.burst }))] };
  return { ...d, filters: { ...d.filters, rateLimit: { ...rl, config } } as Deployment['filters'] };
}
