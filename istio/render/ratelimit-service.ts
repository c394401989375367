import type { Deployment } from './deployment-schema.js';
import type { GlobalQuotas } from './global-quotas-schema.js';
import { rateLimitServiceYaml } from './global-quotas.js';
import {
  labels, RATELIMIT_CONFIG_KEY, RATELIMIT_CONFIG_MAP, RATELIMIT_GRPC_PORT, RATELIMIT_HTTP_PORT, RATELIMIT_METRICS_PORT, RATELIMIT_NAME,
  RATELIMIT_SELECTOR, REDIS_NAME, REDIS_PORT, REDIS_RUN_AS, REDIS_SELECTOR, redisHost, type Resource, RUN_AS,
} from './names.js';
import { imageVersion } from './server-deployment.js';

/**
 * The global rate-limit service (envoyproxy/ratelimit) and its Redis, in the
 * server's namespace, hardened like the server (non-root, read-only root,
 * no capabilities, RuntimeDefault seccomp, no API token, resources, probes).
 * The service is stateless: two or more replicas behind a `grpc` Service
 * (sidecars balance per request), a PodDisruptionBudget, zero-downtime
 * rollouts. Redis is one replica, in memory only, replaced with Recreate:
 * two Redis pods behind the Service, even for the seconds of a rolling
 * update, would each count half the requests and admit twice the budget.
 * Redis restarting loses at most the current window of each budget.
 */

const SECCOMP = { type: 'RuntimeDefault' };

function containerSecurity(uid: number): Record<string, unknown> {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: uid,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    privileged: false,
    capabilities: { drop: ['ALL'] },
    seccompProfile: SECCOMP,
  };
}

function serviceAccount(d: Deployment, name: string, component: string): Resource {
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: d.namespace, labels: labels(component) }, automountServiceAccountToken: false };
}

/** The service's configuration, mounted as its config directory (never subPath, so an update reaches the running pods). */
export function rateLimitConfigMap(d: Deployment, q: GlobalQuotas): Resource {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: RATELIMIT_CONFIG_MAP, namespace: d.namespace, labels: labels('ratelimit') },
    data: { [RATELIMIT_CONFIG_KEY]: rateLimitServiceYaml(q) },
  };
}

/** Where the service reads its configuration: RUNTIME_ROOT/RUNTIME_SUBDIRECTORY/RUNTIME_APPDIRECTORY. */
export const RATELIMIT_CONFIG_DIR = '/data/ratelimit/config';

/**
 * The service's environment. RUNTIME_WATCH_ROOT=false makes it watch the
 * config directory itself, where the kubelet swaps `..data` on a ConfigMap
 * update, and RUNTIME_IGNOREDOTFILES keeps it from loading the files under
 * `..data` and the timestamped directory a second time.
 */
export function rateLimitEnv(d: Deployment): Array<{ name: string; value: string }> {
  const env: Record<string, string> = {
    LOG_LEVEL: d.rateLimitService.logLevel,
    LOG_FORMAT: 'json',
    USE_STATSD: 'false',
    USE_PROMETHEUS: 'true',
    PROMETHEUS_ADDR: `:${RATELIMIT_METRICS_PORT}`,
    REDIS_SOCKET_TYPE: 'tcp',
    REDIS_URL: `${redisHost(d)}:${REDIS_PORT}`,
    RUNTIME_ROOT: '/data',
    RUNTIME_SUBDIRECTORY: 'ratelimit',
    RUNTIME_APPDIRECTORY: 'config',
    RUNTIME_WATCH_ROOT: 'false',
    RUNTIME_IGNOREDOTFILES: 'true',
    // Not ready until the configuration is loaded: a pod without it would answer OK to everything.
    HEALTHY_WITH_AT_LEAST_ONE_CONFIG_LOADED: 'true',
    HOST: '0.0.0.0',
    PORT: String(RATELIMIT_HTTP_PORT),
    GRPC_HOST: '0.0.0.0',
    GRPC_PORT: String(RATELIMIT_GRPC_PORT),
    // pprof and config dumps stay inside the pod.
    DEBUG_HOST: '127.0.0.1',
    DEBUG_PORT: '6070',
  };
  return Object.entries(env).map(([name, value]) => ({ name, value }));
}

export function rateLimitDeployment(d: Deployment): Resource {
  const probe = (periodSeconds: number, failureThreshold: number) => ({
    httpGet: { path: '/healthcheck', port: 'http' },
    periodSeconds,
    timeoutSeconds: 2,
    failureThreshold,
  });
  const s = d.rateLimitService;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: RATELIMIT_NAME, namespace: d.namespace, labels: labels('ratelimit') },
    spec: {
      replicas: s.replicas,
      selector: { matchLabels: { ...RATELIMIT_SELECTOR } },
      // Every budgeted request waits on it: never fewer ready replicas than asked for.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: {
          labels: { ...labels('ratelimit'), ...RATELIMIT_SELECTOR, 'app.kubernetes.io/version': imageVersion(s.image), 'sidecar.istio.io/inject': 'true' },
          annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(RATELIMIT_METRICS_PORT), 'prometheus.io/path': '/metrics' },
        },
        spec: {
          serviceAccountName: RATELIMIT_NAME,
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: { runAsNonRoot: true, runAsUser: RUN_AS, runAsGroup: RUN_AS, seccompProfile: SECCOMP },
          topologySpreadConstraints: [
            { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: { ...RATELIMIT_SELECTOR } } },
            { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: { ...RATELIMIT_SELECTOR } } },
          ],
          containers: [
            {
              name: 'ratelimit',
              image: s.image,
              imagePullPolicy: 'IfNotPresent',
              // The image sets no entrypoint.
              command: ['/bin/ratelimit'],
              env: rateLimitEnv(d),
              ports: [
                { name: 'grpc', containerPort: RATELIMIT_GRPC_PORT, protocol: 'TCP' },
                { name: 'http', containerPort: RATELIMIT_HTTP_PORT, protocol: 'TCP' },
                { name: 'http-metrics', containerPort: RATELIMIT_METRICS_PORT, protocol: 'TCP' },
              ],
              securityContext: containerSecurity(RUN_AS),
              resources: structuredClone(s.resources),
              livenessProbe: probe(10, 3),
              readinessProbe: probe(5, 2),
              volumeMounts: [
                { name: 'config', mountPath: RATELIMIT_CONFIG_DIR, readOnly: true },
                { name: 'tmp', mountPath: '/tmp' },
              ],
            },
          ],
          volumes: [
            { name: 'config', configMap: { name: RATELIMIT_CONFIG_MAP } },
            { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } },
          ],
        },
      },
    },
  };
}

export function rateLimitService(d: Deployment): Resource {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: RATELIMIT_NAME, namespace: d.namespace, labels: labels('ratelimit') },
    spec: {
      type: 'ClusterIP',
      selector: { ...RATELIMIT_SELECTOR },
      ports: [{ name: 'grpc', port: RATELIMIT_GRPC_PORT, targetPort: 'grpc', protocol: 'TCP', appProtocol: 'grpc' }],
    },
  };
}

export function rateLimitDisruptionBudget(d: Deployment): Resource {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name: RATELIMIT_NAME, namespace: d.namespace, labels: labels('ratelimit') },
    spec: { maxUnavailable: 1, selector: { matchLabels: { ...RATELIMIT_SELECTOR } } },
  };
}

const MEMORY_UNIT = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 } as const;

/** Three quarters of the container's memory limit: Redis evicts the soonest-expiring counters before the kernel kills it and every counter goes. */
export function redisMaxMemory(limit: string): number {
  const m = /^([0-9]+)(Ki|Mi|Gi)$/.exec(limit)!;
  return Math.floor((Number(m[1]) * MEMORY_UNIT[m[2] as keyof typeof MEMORY_UNIT] * 3) / 4);
}

export function redisArgs(d: Deployment): string[] {
  return [
    '--port', String(REDIS_PORT),
    '--bind', '0.0.0.0',
    // Istio's sidecar delivers from 127.0.0.6, which protected mode would refuse; mTLS and an
    // ALLOW policy for the service's identity guard the port instead (authorization.yaml).
    '--protected-mode', 'no',
    // Counters of a rate-limit window need no persistence.
    '--save', '',
    '--appendonly', 'no',
    '--maxmemory', String(redisMaxMemory(d.redis.resources.limits.memory)),
    '--maxmemory-policy', 'volatile-ttl',
  ];
}

export function redisDeployment(d: Deployment): Resource {
  const probe = (periodSeconds: number, failureThreshold: number) => ({
    exec: { command: ['redis-cli', '-p', String(REDIS_PORT), 'ping'] },
    periodSeconds,
    timeoutSeconds: 2,
    failureThreshold,
  });
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: REDIS_NAME, namespace: d.namespace, labels: labels('ratelimit-redis') },
    spec: {
      replicas: 1,
      selector: { matchLabels: { ...REDIS_SELECTOR } },
      strategy: { type: 'Recreate' },
      template: {
        metadata: { labels: { ...labels('ratelimit-redis'), ...REDIS_SELECTOR, 'app.kubernetes.io/version': imageVersion(d.redis.image), 'sidecar.istio.io/inject': 'true' } },
        spec: {
          serviceAccountName: REDIS_NAME,
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: { runAsNonRoot: true, runAsUser: REDIS_RUN_AS, runAsGroup: REDIS_RUN_AS, seccompProfile: SECCOMP },
          containers: [
            {
              name: 'redis',
              image: d.redis.image,
              imagePullPolicy: 'IfNotPresent',
              command: ['redis-server'],
              args: redisArgs(d),
              ports: [{ name: 'tcp-redis', containerPort: REDIS_PORT, protocol: 'TCP' }],
              securityContext: containerSecurity(REDIS_RUN_AS),
              resources: structuredClone(d.redis.resources),
              livenessProbe: probe(10, 3),
              readinessProbe: probe(5, 2),
              // Its working directory; nothing is persisted there.
              volumeMounts: [{ name: 'data', mountPath: '/data' }],
            },
          ],
          volumes: [{ name: 'data', emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } }],
        },
      },
    },
  };
}

export function redisService(d: Deployment): Resource {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: REDIS_NAME, namespace: d.namespace, labels: labels('ratelimit-redis') },
    spec: {
      type: 'ClusterIP',
      selector: { ...REDIS_SELECTOR },
      // Plain TCP to Istio (mTLS, no protocol sniffing).
      ports: [{ name: 'tcp-redis', port: REDIS_PORT, targetPort: 'tcp-redis', protocol: 'TCP', appProtocol: 'tcp' }],
    },
  };
}

/** Everything in ratelimit.yaml, in the order to apply it: Redis first, so the service finds it. */
export function rateLimitResources(d: Deployment, q: GlobalQuotas): Resource[] {
  return [
    serviceAccount(d, REDIS_NAME, 'ratelimit-redis'),
    redisDeployment(d),
    redisService(d),
    serviceAccount(d, RATELIMIT_NAME, 'ratelimit'),
    rateLimitConfigMap(d, q),
    rateLimitDeployment(d),
    rateLimitService(d),
    rateLimitDisruptionBudget(d),
  ];
}
