import type { Deployment } from './deployment-schema.js';
import { labels, MANIFEST_CONFIG_MAP, MANIFEST_KEY, type Resource } from './names.js';

/**
 * The access manifest the server reads, and the JWKS files it names, under
 * the names they have beside it (the volume is the manifest's directory, so
 * `jwks: {file: jwks.json}` resolves to the key jwks.json). Editing it
 * (kubectl edit, or render and apply again) changes decisions without a
 * restart: the kubelet swaps the mounted directory's `..data` symlink,
 * replacing manifest and keys in one step, and the server's directory watch
 * reloads both.
 */
export function serverConfigMap(d: Deployment, accessManifest: string, jwksFiles: Readonly<Record<string, string>>): Resource {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: MANIFEST_CONFIG_MAP, namespace: d.namespace, labels: labels('ext-authz') },
    data: { [MANIFEST_KEY]: accessManifest, ...jwksFiles },
  };
}
