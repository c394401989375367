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

/** The global rate-limit service (envoyproxy/ratelimit) and its Redis, beside the server. */
export const RATELIMIT_NAME = 'infergate-ratelimit';
export const RATELIMIT_CONFIG_MAP = 'infergate-ratelimit-config';
/** The service loads every *.yaml in its config directory; one domain per file. */
export const RATELIMIT_CONFIG_KEY = 'infergate.yaml';
/** envoyproxy/ratelimit's defaults: gRPC 8081, HTTP (healthcheck) 8080; Prometheus metrics on 9090. */
export const RATELIMIT_GRPC_PORT = 8081;
export const RATELIMIT_HTTP_PORT = 8080;
export const RATELIMIT_METRICS_PORT = 9090;
export const REDIS_NAME = 'infergate-redis';
export const REDIS_PORT = 6379;
/** uid/gid of the redis user in the official Redis image. */
export const REDIS_RUN_AS = 999;
export const RATELIMIT_SELECTOR = { 'app.kubernetes.io/name': 'infergate', 'app.kubernetes.io/component': 'ratelimit' } as const;
export const REDIS_SELECTOR = { 'app.kubernetes.io/name': 'infergate', 'app.kubernetes.io/component': 'ratelimit-redis' } as const;

export function rateLimitHost(d: Deployment): string {
  return `${RATELIMIT_NAME}.${d.namespace}.svc.cluster.local`;
}

export function redisHost(d: Deployment): string {
  return `${REDIS_NAME}.${d.namespace}.svc.cluster.local`;
}

/** The sidecar's cluster for the rate-limit Service, as Istio names every outbound service cluster. */
export function rateLimitCluster(d: Deployment): string {
  return `outbound|${RATELIMIT_GRPC_PORT}||${rateLimitHost(d)}`;
}
