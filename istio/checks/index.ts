import { customPolicyErrors } from './custom-policy.js';
import { envoyFilterErrors, wasmPluginErrors } from './filter-placement.js';
import { globalQuotaErrors } from './global-quotas.js';
import { providerErrors } from './provider-match.js';

export { customPolicyErrors, envoyFilterErrors, globalQuotaErrors, providerErrors, wasmPluginErrors };

/** Every Istio rule a schema cannot express, over one rendered set. */
export function meshRuleErrors(resources: readonly unknown[], meshConfigOverlay: unknown): string[] {
  return [
    ...resources.flatMap((r) => [...customPolicyErrors(r), ...envoyFilterErrors(r), ...wasmPluginErrors(r)]),
    ...providerErrors(resources, meshConfigOverlay),
    ...globalQuotaErrors(resources),
  ];
}
