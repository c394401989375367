import type { Deployment } from './deployment-schema.js';
import { GRPC_PORT, labels, METRICS_PORT, type Resource, SERVER_NAME, SERVER_SELECTOR } from './names.js';

/** The server's identity: a service account of its own, with no API token (it never calls the API server). */
export function serverServiceAccount(d: Deployment): Resource {
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: SERVER_NAME, namespace: d.namespace, labels: labels('ext-authz') },
    automountServiceAccountToken: false,
  };
}

/** The Service the mesh provider entry points at; `grpc` naming makes Istio balance per request over HTTP/2. */
export function serverService(d: Deployment): Resource {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: SERVER_NAME, namespace: d.namespace, labels: labels('ext-authz') },
    spec: {
      type: 'ClusterIP',
      selector: { ...SERVER_SELECTOR },
      ports: [
        { name: 'grpc', port: GRPC_PORT, targetPort: 'grpc', protocol: 'TCP', appProtocol: 'grpc' },
        { name: 'http-metrics', port: METRICS_PORT, targetPort: 'http-metrics', protocol: 'TCP', appProtocol: 'http' },
      ],
    },
  };
}

/** Voluntary disruptions (node drains) take at most one replica at a time. */
export function serverDisruptionBudget(d: Deployment): Resource {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name: SERVER_NAME, namespace: d.namespace, labels: labels('ext-authz') },
    spec: { maxUnavailable: 1, selector: { matchLabels: { ...SERVER_SELECTOR } } },
  };
}
