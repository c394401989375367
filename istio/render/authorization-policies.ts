import type { Deployment, Workload } from './deployment-schema.js';
import { labels, RATELIMIT_GRPC_PORT, RATELIMIT_NAME, RATELIMIT_SELECTOR, REDIS_NAME, REDIS_PORT, REDIS_SELECTOR, type Resource, workloadResourceName } from './names.js';

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

/**
 * Who may reach the global rate-limit service and its Redis, once there are
 * global quotas: the protected workloads' namespaces (their sidecars call
 * the service; Istio knows their pods by label only, not by service account)
 * on the gRPC port, and only the service's own identity on Redis. Without
 * them any pod in the mesh could spend a tenant's budget by calling the
 * service itself, or reset every counter in Redis.
 */
export function rateLimitPolicies(d: Deployment): Resource[] {
  const namespaces = [...new Set(d.workloads.map((w) => w.namespace))];
  return [
    {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: RATELIMIT_NAME, namespace: d.namespace, labels: labels('authorization') },
      spec: {
        selector: { matchLabels: { ...RATELIMIT_SELECTOR } },
        action: 'ALLOW',
        rules: [{ from: [{ source: { namespaces } }], to: [{ operation: { ports: [String(RATELIMIT_GRPC_PORT)] } }] }],
      },
    },
    {
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: REDIS_NAME, namespace: d.namespace, labels: labels('authorization') },
      spec: {
        selector: { matchLabels: { ...REDIS_SELECTOR } },
        action: 'ALLOW',
        // Any trust domain: the mesh's, whatever it is called.
        rules: [{ from: [{ source: { principals: [`*/ns/${d.namespace}/sa/${RATELIMIT_NAME}`] } }], to: [{ operation: { ports: [String(REDIS_PORT)] } }] }],
      },
    },
  ];
}
