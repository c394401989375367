import type { Deployment } from './deployment-schema.js';
import { labels, type Resource } from './names.js';

/**
 * Alerts for the PrometheusRule. Where the series come from, and why:
 *  - Per-caller alerts read Istio's `istio_requests_total` (reporter
 *    "destination": the protected workload's own sidecar), which carries
 *    `source_principal`. The server's decision counters deliberately have no
 *    caller label: one series per SPIFFE ID would let any new identity grow
 *    the server's memory and Prometheus' index without bound. A request that
 *    the CUSTOM ext_authz call denied has the Envoy response flag UAEX, so
 *    `response_flags="UAEX"` counts infergate denials and not the model's own
 *    403s.
 *  - Rate-limit rejections come from the rate-limit filter's counter,
 *    `infergate.rate_limit.rejected`: Envoy keeps Wasm metrics under the
 *    `wasmcustom.` namespace and strips it in Prometheus output, so the series
 *    is `infergate_rate_limit_rejected` (no `envoy_` prefix, no `_total`).
 *  - Server health comes from the server's own metrics.
 * Thresholds are starting points; each alert's unit test
 * (istio/alerts-test.yaml) shows it firing on a synthetic series and quiet on
 * normal traffic.
 */

export interface AlertRule {
  alert: string;
  expr: string;
  for: string;
  labels: { severity: 'warning' | 'critical' };
  annotations: { summary: string; description: string };
}

const ERROR_REASONS = 'policy_error|policy_unavailable|internal_error';

function protectedRequests(d: Deployment, extra = ''): string {
  const namespaces = [...new Set(d.workloads.map((w) => w.namespace))].sort().join('|');
  return `istio_requests_total{reporter="destination",destination_workload_namespace=~"${namespaces}"${extra}}`;
}

export function alertRules(d: Deployment): AlertRule[] {
  const byEdge = 'sum by (source_principal, destination_service)';
  const denied = protectedRequests(d, ',response_flags="UAEX"');
  const all = protectedRequests(d);
  return [
    {
      alert: 'InfergateCallerDenialSurge',
      // More than 12 denials a minute from one caller to one service, for 5 minutes:
      // a misconfigured client, a rule that broke, or a compromised workload probing.
      expr: `${byEdge} (rate(${denied}[5m])) > 0.2`,
      for: '5m',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'infergate denies many requests from {{ $labels.source_principal }}',
        description:
          '{{ $labels.source_principal }} has been denied {{ $value | humanize }} requests/s to {{ $labels.destination_service }} for 5 minutes. The decision log (reason field) says why; quarantine the identity in the access manifest if it is compromised.',
      },
    },
    {
      alert: 'InfergateCallerTrafficAnomaly',
      // A caller sending over 1 request/s to a service at more than 3x its rate an hour
      // earlier (the hour before last, so a surge does not raise its own baseline for an
      // hour), or with no traffic there then (a new edge). `unless` rather than `>` so that a
      // missing baseline counts as zero instead of silencing the alert.
      expr: `(${byEdge} (rate(${all}[5m])) > 1) unless (${byEdge} (rate(${all}[5m])) <= 3 * ${byEdge} (rate(${all}[1h] offset 1h)))`,
      for: '10m',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'Unusual traffic volume from {{ $labels.source_principal }} to {{ $labels.destination_service }}',
        description:
          '{{ $labels.source_principal }} sends {{ $value | humanize }} requests/s to {{ $labels.destination_service }}, over 3 times its rate an hour earlier (or on a caller-service edge that had no traffic then).',
      },
    },
    {
      alert: 'InfergateRateLimitRejections',
      // Per protected pod: the filter's counter has no caller label; find the caller with
      // sum by (source_principal) (rate(istio_requests_total{response_code="429"}[5m])).
      expr: 'sum by (namespace, pod) (rate(infergate_rate_limit_rejected[5m])) > 1',
      for: '5m',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'infergate rate limit rejects requests at {{ $labels.namespace }}/{{ $labels.pod }}',
        description:
          'The rate-limit filter in {{ $labels.namespace }}/{{ $labels.pod }} rejects {{ $value | humanize }} requests/s with 429. A caller is over its budget; note that budgets are per Envoy instance.',
      },
    },
    {
      alert: 'InfergateAuthzErrors',
      // The server answered but could not decide (bad policy output, no policy, a bug);
      // every such request was denied.
      expr: `sum(rate(infergate_decisions_total{reason=~"${ERROR_REASONS}"}[5m])) > 0`,
      for: '5m',
      labels: { severity: 'critical' },
      annotations: {
        summary: 'infergate ext_authz fails to decide requests',
        description:
          'The ext_authz server denies {{ $value | humanize }} requests/s because of errors (policy_error, policy_unavailable or internal_error). See its logs.',
      },
    },
    {
      alert: 'InfergateAuthzSlow',
      // Check latency is tens of microseconds when healthy; 25 ms at p99 means the server is
      // starved (CPU limits, too few replicas) and adds that to every inference call.
      expr: 'histogram_quantile(0.99, sum by (le) (rate(infergate_check_duration_seconds_bucket[5m]))) > 0.025',
      for: '10m',
      labels: { severity: 'warning' },
      annotations: {
        summary: 'infergate ext_authz checks are slow',
        description: 'p99 Check latency is {{ $value | humanizeDuration }}. Add replicas or raise the CPU limit.',
      },
    },
    {
      alert: 'InfergatePolicyReloadFailing',
      // A manifest or bundle change was rejected; the last good policy is still in force,
      // so the change the operator made (a quarantine, say) is NOT active.
      expr: 'min(infergate_policy_last_reload_success) < 1 or sum(increase(infergate_policy_reload_errors_total[10m])) > 0',
      for: '1m',
      labels: { severity: 'critical' },
      annotations: {
        summary: 'infergate rejected a policy or manifest change',
        description: 'The last manifest or bundle change failed validation and is not in force. The server log names the file and the error.',
      },
    },
    {
      alert: 'InfergateAuthzDown',
      // No replica is scraped. With failOpen false every protected request is now denied.
      expr: 'absent(infergate_policy_last_reload_success)',
      for: '2m',
      labels: { severity: 'critical' },
      annotations: {
        summary: 'infergate ext_authz server is down',
        description: 'No infergate ext_authz replica reports metrics; protected workloads deny every request (fail closed).',
      },
    },
  ];
}

export function prometheusRule(d: Deployment): Resource {
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: 'infergate', namespace: d.namespace, labels: labels('alerts') },
    spec: { groups: [{ name: 'infergate', rules: alertRules(d) }] },
  };
}
