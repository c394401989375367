import { stringify } from 'yaml';
import { meshRuleErrors } from '../checks/index.js';
import { alertRules, prometheusRule } from './alerts.js';
import { authorizationPolicies, rateLimitPolicies } from './authorization-policies.js';
import { allEnvoyFilters } from './envoy-filters.js';
import { allGlobalQuotaFilters } from './global-quota-filters.js';
import { rateLimitServiceConfig } from './global-quotas.js';
import type { RenderInput } from './load-input.js';
import { readJwksFiles } from './jwks-files.js';
import { meshConfig } from './mesh-config.js';
import { serverNamespace } from './namespace.js';
import { peerAuthentications } from './peer-authentications.js';
import { rateLimitResources } from './ratelimit-service.js';
import { serverConfigMap } from './server-config-map.js';
import { serverDeployment } from './server-deployment.js';
import { serverDisruptionBudget, serverService, serverServiceAccount } from './server-service.js';
import { accessLogTelemetries } from './telemetry.js';
import { allWasmPlugins } from './wasm-plugins.js';

/**
 * The fixed set of files `infergate render --out DIR` writes. The two filter
 * files are alternatives (apply one: both would run each filter twice);
 * alerts.rules.yaml is the PrometheusRule's rules as a plain Prometheus rule
 * file, for Prometheus without the operator and for promtool. The global
 * quota files are written, empty, without a globalQuotas section, so a
 * render into the same directory never leaves stale budgets behind;
 * ratelimit-config.yaml is the service's configuration as a plain file (the
 * same text as its ConfigMap), to run or inspect the service with.
 */

export type FilterForm = 'wasmplugin' | 'envoyfilter';

export interface RenderedFile {
  name: string;
  /** What the file is for, written as its header comment. */
  purpose: string;
  documents: unknown[];
  /** Kubernetes objects (false: a plain Prometheus rule file). */
  kubernetes: boolean;
  /** Set on the two alternative filter files. */
  filterForm?: FilterForm;
  /** What an empty file says instead of documents. */
  empty?: string;
}

export class RenderError extends Error {}

const NO_QUOTAS = 'nothing to render: the manifest has no globalQuotas section';

export function renderFiles(input: RenderInput): RenderedFile[] {
  const d = input.deployment;
  const q = input.globalQuotas;
  const mesh = meshConfig(d);
  const files: RenderedFile[] = [
    { name: 'mesh-config.yaml', purpose: 'meshConfig extension providers (ext_authz, access log): istioctl install -f (or the meshConfig block in istiod Helm values)', documents: [mesh], kubernetes: true },
    {
      name: 'ext-authz.yaml',
      purpose: 'the ext_authz server: kubectl apply -f',
      documents: [serverNamespace(d), serverServiceAccount(d), serverConfigMap(d, input.accessManifest, readJwksFiles(input.policy, input.file, input.dir)), serverDeployment(d), serverService(d), serverDisruptionBudget(d)],
      kubernetes: true,
    },
    {
      name: 'ratelimit.yaml',
      purpose: 'the global rate-limit service (envoyproxy/ratelimit) and its Redis, for the globalQuotas budgets: kubectl apply -f, then wait for both rollouts',
      documents: q === null ? [] : rateLimitResources(d, q),
      kubernetes: true,
      empty: NO_QUOTAS,
    },
    {
      name: 'authorization.yaml',
      purpose: `STRICT mTLS and the CUSTOM policies that send protected requests to infergate${q === null ? '' : ', and who may reach the rate-limit service and its Redis'}: kubectl apply -f`,
      documents: [...peerAuthentications(d), ...authorizationPolicies(d), ...(q === null ? [] : rateLimitPolicies(d))],
      kubernetes: true,
    },
    { name: 'wasm-plugins.yaml', purpose: 'payload and rate limits as WasmPlugins: kubectl apply -f (or envoy-filters.yaml, not both)', documents: allWasmPlugins(d), kubernetes: true, filterForm: 'wasmplugin' },
    { name: 'envoy-filters.yaml', purpose: 'payload and rate limits as EnvoyFilters: kubectl apply -f (or wasm-plugins.yaml, not both)', documents: allEnvoyFilters(d), kubernetes: true, filterForm: 'envoyfilter' },
    {
      name: 'global-quotas.yaml',
      purpose: "the global quotas on each protected workload's sidecar (ratelimit filters and route rate limits), with either filter form: kubectl apply -f after ratelimit.yaml is ready",
      documents: allGlobalQuotaFilters(d, q),
      kubernetes: true,
      empty: NO_QUOTAS,
    },
    { name: 'telemetry.yaml', purpose: "access logs carrying infergate's decision (decision id, reason, rule, caller) for each protected workload: kubectl apply -f", documents: accessLogTelemetries(d), kubernetes: true },
    { name: 'prometheus-rule.yaml', purpose: 'alerts for the Prometheus operator: kubectl apply -f', documents: [prometheusRule(d)], kubernetes: true },
    { name: 'alerts.rules.yaml', purpose: 'the same alerts as a Prometheus rule file (promtool check rules)', documents: [{ groups: [{ name: 'infergate', rules: alertRules(d) }] }], kubernetes: false },
    {
      name: 'ratelimit-config.yaml',
      purpose: "the rate-limit service's configuration (domain infergate, one descriptor per budget), the same as its ConfigMap holds: ratelimit reads it from RUNTIME_ROOT/RUNTIME_SUBDIRECTORY/RUNTIME_APPDIRECTORY",
      documents: q === null ? [] : [rateLimitServiceConfig(q)],
      kubernetes: false,
      empty: NO_QUOTAS,
    },
  ];
  // A rendering that breaks Istio's semantic rules is a bug in render, never output.
  const errors = meshRuleErrors(files.filter((f) => f.kubernetes).flatMap((f) => f.documents), mesh);
  if (errors.length > 0) throw new RenderError(`render produced invalid resources:\n${errors.join('\n')}`);
  return files;
}

/**
 * YAML 1.1 quoting: Kubernetes (sigs.k8s.io/yaml), Istio and the rate-limit
 * service read YAML 1.1, where a bare `no`, `on` or `y` is a boolean, so
 * every such string (Redis's `--appendonly no`, a tenant called `on`) is
 * written quoted.
 */
export const YAML_OPTIONS = { lineWidth: 0, aliasDuplicateObjects: false, version: '1.1' } as const;

function yamlDoc(doc: unknown): string {
  return stringify(doc, YAML_OPTIONS);
}

export function fileText(f: RenderedFile, source: string): string {
  const header = `# ${f.purpose}\n# Generated by \`infergate render --manifest ${source}\`; edit the manifest, not this file.\n`;
  if (f.documents.length === 0) return `${header}# (${f.empty ?? 'nothing to render: the manifest configures no filters'})\n`;
  return header + f.documents.map((doc) => `---\n${yamlDoc(doc)}`).join('');
}

/** Everything to apply, as one multi-document stream, with one filter form. */
export function streamText(files: readonly RenderedFile[], source: string, form: FilterForm): string {
  return files
    .filter((f) => f.kubernetes && (f.filterForm === undefined || f.filterForm === form))
    .map((f) => `# Source: ${f.name}\n${fileText(f, source)}`)
    .join('');
}
