import type { Deployment } from './deployment-schema.js';
import { labels, type Resource } from './names.js';

/** The server's namespace, with sidecar injection: the server is reached over mesh mTLS like any workload. */
export function serverNamespace(d: Deployment): Resource {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: d.namespace, labels: { ...labels('ext-authz'), 'istio-injection': 'enabled' } },
  };
}
