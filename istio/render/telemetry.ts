import type { Deployment, Workload } from './deployment-schema.js';
import { accessLogProviderName } from './mesh-config.js';
import { labels, type Resource, workloadResourceName } from './names.js';

/**
 * One Telemetry resource per protected workload: its sidecar writes the
 * access log of the rendered provider, whose lines carry infergate's
 * decision id, reason, rule and caller beside Envoy's request id and the
 * traceparent, so an access-log line joins the decision log and a trace.
 * A workload-level Telemetry replaces the mesh default access log for that
 * workload; merge it with yours if you already select one there.
 */
export function accessLogTelemetry(d: Deployment, w: Workload): Resource {
  return {
    apiVersion: 'telemetry.istio.io/v1',
    kind: 'Telemetry',
    metadata: { name: workloadResourceName(w), namespace: w.namespace, labels: labels('telemetry') },
    spec: {
      selector: { matchLabels: { ...w.selector } },
      accessLogging: [{ providers: [{ name: accessLogProviderName(d) }] }],
    },
  };
}

export function accessLogTelemetries(d: Deployment): Resource[] {
  return d.workloads.map((w) => accessLogTelemetry(d, w));
}
