import type { Deployment, Workload } from './deployment-schema.js';
import { labels, type Resource, workloadResourceName } from './names.js';

/**
 * One CUSTOM AuthorizationPolicy per protected workload. CUSTOM rules cannot
 * name callers (Istio rejects principals/namespaces there), so the rule only
 * says *when* to ask infergate: on every request, or on the listed ports. The
 * caller decision itself is the server's.
 */
export function authorizationPolicy(d: Deployment, w: Workload): Resource {
  const rule = w.ports ? { to: [{ operation: { ports: w.ports.map(String) } }] } : {};
  return {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: workloadResourceName(w), namespace: w.namespace, labels: labels('authorization') },
    spec: {
      selector: { matchLabels: { ...w.selector } },
      action: 'CUSTOM',
      provider: { name: d.provider.name },
      // Istio rejects a CUSTOM policy without rules; `{}` matches every request.
      rules: [rule],
    },
  };
}

export function authorizationPolicies(d: Deployment): Resource[] {
  return d.workloads.map((w) => authorizationPolicy(d, w));
}
