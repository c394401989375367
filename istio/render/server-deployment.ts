import type { Deployment } from './deployment-schema.js';
import { GRPC_PORT, labels, MANIFEST_CONFIG_MAP, MANIFEST_DIR, MANIFEST_KEY, METRICS_PORT, type Resource, RUN_AS, SERVER_NAME, SERVER_SELECTOR } from './names.js';

/** The server's command line: exactly the flags of ext-authz/src/cli-args.ts. */
export function serverArgs(d: Deployment): string[] {
  return [
    '--manifest', `${MANIFEST_DIR}/${MANIFEST_KEY}`,
    '--listen', `0.0.0.0:${GRPC_PORT}`,
    '--metrics', `0.0.0.0:${METRICS_PORT}`,
    '--decision-log', 'stdout',
    '--log-level', d.server.logLevel,
    ...(d.server.dryRun ? ['--dry-run'] : []),
  ];
}

/**
 * The ext_authz server, hardened: it needs no privileges, no writable root
 * file system and no Kubernetes API access. There is deliberately no
 * checksum annotation of the manifest on the pod template: a manifest change
 * must hot-reload, not roll the pods.
 */
export function serverDeployment(d: Deployment): Resource {
  const seccompProfile = { type: 'RuntimeDefault' };
  const probe = (path: string, periodSeconds: number, failureThreshold: number) => ({
    httpGet: { path, port: 'http-metrics' },
    periodSeconds,
    timeoutSeconds: 2,
    failureThreshold,
  });
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: SERVER_NAME, namespace: d.namespace, labels: labels('ext-authz') },
    spec: {
      replicas: d.server.replicas,
      selector: { matchLabels: { ...SERVER_SELECTOR } },
      // Never fewer ready replicas than asked for during a rollout: every inference call waits on them.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: {
          // app.kubernetes.io/name and /version are what Istio's telemetry labels its metrics with.
          labels: { ...labels('ext-authz'), ...SERVER_SELECTOR, 'app.kubernetes.io/version': imageVersion(d.server.image), 'sidecar.istio.io/inject': 'true' },
          annotations: {
            // Istio merges these into its sidecar's scrape endpoint, so scraping works under STRICT mTLS.
            'prometheus.io/scrape': 'true',
            'prometheus.io/port': String(METRICS_PORT),
            'prometheus.io/path': '/metrics',
          },
        },
        spec: {
          serviceAccountName: SERVER_NAME,
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, runAsUser: RUN_AS, runAsGroup: RUN_AS, seccompProfile },
          // Spread replicas so one node or zone going away leaves the others answering.
          topologySpreadConstraints: [
            { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: { ...SERVER_SELECTOR } } },
            { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: { ...SERVER_SELECTOR } } },
          ],
          containers: [
            {
              name: 'ext-authz',
              image: d.server.image,
              imagePullPolicy: 'IfNotPresent',
              args: serverArgs(d),
              ports: [
                { name: 'grpc', containerPort: GRPC_PORT, protocol: 'TCP' },
                { name: 'http-metrics', containerPort: METRICS_PORT, protocol: 'TCP' },
              ],
              securityContext: {
                runAsNonRoot: true,
                runAsUser: RUN_AS,
                runAsGroup: RUN_AS,
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                privileged: false,
                capabilities: { drop: ['ALL'] },
                seccompProfile,
              },
              resources: structuredClone(d.server.resources),
              livenessProbe: probe('/healthz', 10, 3),
              readinessProbe: probe('/readyz', 5, 2),
              volumeMounts: [
                { name: 'manifest', mountPath: MANIFEST_DIR, readOnly: true },
                { name: 'tmp', mountPath: '/tmp' },
              ],
            },
          ],
          volumes: [
            { name: 'manifest', configMap: { name: MANIFEST_CONFIG_MAP } },
            // Node may want a scratch directory; the root file system stays read-only.
            { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } },
          ],
        },
      },
    },
  };
}

/** The image's tag (`…/infergate-authz:0.1.0` → `0.1.0`), its digest's first 12 hex digits, or `latest`. */
export function imageVersion(image: string): string {
  const at = image.indexOf('@');
  if (at !== -1) return image.slice(at + 1).replace(/^[a-z0-9]+:/, '').slice(0, 12);
  const name = image.slice(image.lastIndexOf('/') + 1);
  const colon = name.lastIndexOf(':');
  return colon === -1 ? 'latest' : name.slice(colon + 1);
}
