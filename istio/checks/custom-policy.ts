import { asArray, isRecord, resourceId } from './resource-id.js';

/**
 * Istio's own rules for an AuthorizationPolicy with action CUSTOM that its
 * CRD schema does not express (istiod's validation.go rejects them, or the
 * policy silently never triggers):
 *  - it must have `rules` (an empty list never calls the provider; `[{}]` means every request);
 *  - its rules cannot use identity: no principals/namespaces-style fields in
 *    `from.source`, no identity keys in `when` ("not supported with CUSTOM action");
 *  - it names a provider.
 */

const IDENTITY_SOURCE_FIELDS = [
  'principals', 'notPrincipals', 'namespaces', 'notNamespaces', 'requestPrincipals', 'notRequestPrincipals',
  'serviceAccounts', 'notServiceAccounts',
] as const;
const IDENTITY_WHEN_KEYS = /^(source\.principal|source\.namespace|source\.serviceAccount|request\.auth\..*)$/;

export function customPolicyErrors(policy: unknown): string[] {
  if (!isRecord(policy) || policy.kind !== 'AuthorizationPolicy') return [];
  const spec = isRecord(policy.spec) ? policy.spec : {};
  if (spec.action !== 'CUSTOM') return [];
  const id = resourceId(policy);
  const errors: string[] = [];
  const providerName = isRecord(spec.provider) ? spec.provider.name : undefined;
  if (typeof providerName !== 'string' || providerName === '') errors.push(`${id}: CUSTOM policy needs provider.name`);
  if (!Array.isArray(spec.rules) || spec.rules.length === 0) {
    errors.push(`${id}: CUSTOM policy needs rules (use [{}] to check every request)`);
  }
  asArray(spec.rules).forEach((rule, i) => {
    if (!isRecord(rule)) return;
    asArray(rule.from).forEach((from, j) => {
      const source = isRecord(from) && isRecord(from.source) ? from.source : {};
      for (const f of IDENTITY_SOURCE_FIELDS) {
        if (source[f] !== undefined) errors.push(`${id}: rules[${i}].from[${j}].source.${f} is not supported with CUSTOM action`);
      }
    });
    asArray(rule.when).forEach((cond, j) => {
      const key = isRecord(cond) ? cond.key : undefined;
      if (typeof key === 'string' && IDENTITY_WHEN_KEYS.test(key)) {
        errors.push(`${id}: rules[${i}].when[${j}].key "${key}" is not supported with CUSTOM action`);
      }
    });
  });
  return errors;
}
