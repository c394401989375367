import type { Deployment } from './deployment-schema.js';
import { labels, MANIFEST_CONFIG_MAP, MANIFEST_KEY, type Resource } from './names.js';

/**
 * The access manifest the server reads. Editing it (kubectl edit, or render
 * and apply again) changes decisions without a restart: the kubelet swaps the
 * mounted directory's symlink and the server's directory watch reloads.
 */
export function serverConfigMap(d: Deployment, accessManifest: string): Resource {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: MANIFEST_CONFIG_MAP, namespace: d.namespace, labels: labels('ext-authz') },
    data: { [MANIFEST_KEY]: accessManifest },
  };
}
