import type { Deployment, Workload } from './deployment-schema.js';

/** Names, ports and paths shared by the renderers, so the Service, probes and provider entry can never disagree. */

export const SERVER_NAME = 'infergate-authz';
export const MANIFEST_CONFIG_MAP = 'infergate-authz-manifest';
/** The server's defaults (ext-authz/src/cli-args.ts), listened on all interfaces in a pod. */
export const GRPC_PORT = 9191;
export const METRICS_PORT = 9464;
/** The ConfigMap is mounted as this directory (never subPath: subPath mounts do not receive updates). */
export const MANIFEST_DIR = '/etc/infergate';
export const MANIFEST_KEY = 'manifest.yaml';
/** uid/gid of the image's non-root user (Dockerfile). */
export const RUN_AS = 65532;

export interface Resource {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export function labels(component: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'infergate',
    'app.kubernetes.io/component': component,
    'app.kubernetes.io/managed-by': 'infergate-render',
  };
}

/** Pod labels of the ext_authz server, and its selector. */
export const SERVER_SELECTOR = { 'app.kubernetes.io/name': 'infergate', 'app.kubernetes.io/component': 'ext-authz' } as const;

export function serverHost(d: Deployment): string {
  return `${SERVER_NAME}.${d.namespace}.svc.cluster.local`;
}

export function workloadResourceName(w: Workload, suffix = ''): string {
  return `infergate-${w.name}${suffix}`;
}
