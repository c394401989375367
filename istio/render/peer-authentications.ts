import type { Deployment } from './deployment-schema.js';
import { labels, type Resource, workloadResourceName } from './names.js';

/**
 * STRICT mTLS for each protected workload and for the server's namespace.
 * Without it a plaintext caller reaches the sidecar with no peer certificate,
 * so there is no SPIFFE identity to decide on (the server denies it as
 * no_identity, but plaintext should not get that far).
 */
export function peerAuthentications(d: Deployment): Resource[] {
  const strict = { mtls: { mode: 'STRICT' } };
  return [
    {
      apiVersion: 'security.istio.io/v1',
      kind: 'PeerAuthentication',
      metadata: { name: 'infergate-authz-strict', namespace: d.namespace, labels: labels('authorization') },
      spec: strict,
    },
    ...d.workloads.map(
      (w): Resource => ({
        apiVersion: 'security.istio.io/v1',
        kind: 'PeerAuthentication',
        metadata: { name: workloadResourceName(w, '-strict'), namespace: w.namespace, labels: labels('authorization') },
        spec: { selector: { matchLabels: { ...w.selector } }, ...strict },
      }),
    ),
  ];
}
