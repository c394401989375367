import { describe, expect, it } from 'vitest';
import { renderFiles } from '../../istio/render/render.js';
import { exampleInput, separateInput, variantInput, withoutTierQuotas } from './helpers/example.js';
import { SCHEMA_KINDS, schemaErrors } from './helpers/schemas.js';

function kubernetesDocs(files: ReturnType<typeof renderFiles>): Array<{ apiVersion: string; kind: string; metadata: { name: string } }> {
  return files.filter((f) => f.kubernetes).flatMap((f) => f.documents) as Array<{ apiVersion: string; kind: string; metadata: { name: string } }>;
}

// The example, plus variants exercising the optional branches (no ports, per-port rules, dry run, statusOnError, sha256, default url, the separate filter form, no filters).
const INPUTS = {
  example: () => exampleInput(),
  variant: () =>
    variantInput((d) => {
      d.server.dryRun = true;
      d.server.logLevel = 'debug';
      d.provider.statusOnError = '503';
      d.workloads[0].ports = [8080, 8443];
      d.filters.guard.sha256 = { 'guard-no-response-body': 'a'.repeat(64) };
    }),
  'separate filters': () =>
    separateInput((d) => {
      d.workloads[0].ports = [8080, 8443];
      d.filters.rateLimit.sha256 = 'a'.repeat(64);
      delete d.filters.payloadLimit.url;
    }),
  'no filters': () => variantInput((d) => { delete d.filters; }, withoutTierQuotas),
  'global quotas, every option': () =>
    variantInput(
      (d) => {
        d.rateLimitService = { image: 'registry.local/ratelimit@sha256:' + 'b'.repeat(64), replicas: 3, logLevel: 'debug', resources: { requests: { cpu: '50m', memory: '32Mi' }, limits: { cpu: '500m', memory: '128Mi' } } };
        d.redis = { image: 'registry.local/redis:7.2', resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '500m', memory: '1Gi' } } };
      },
      (m) => {
        m.globalQuotas = {
          failureMode: 'allow',
          timeout: '1s',
          budgets: [
            { name: 'per-caller', per: 'caller', callers: ['spiffe://cluster.local/ns/batch/*'], limit: { requests: 10, unit: 'second' } },
            { name: 'per-tier', per: 'tier', tiers: ['free', 'premium'], tenants: ['acme'], limit: { requests: 10, unit: 'day' }, failureMode: 'deny' },
          ],
        };
      },
    ),
  'no global quotas': () => variantInput(() => {}, (m) => { delete m.globalQuotas; }),
};

describe('rendered resources against the real schemas', () => {
  for (const [name, input] of Object.entries(INPUTS)) {
    it(`${name}: every Kubernetes and Istio object is valid, with no field the schema lacks`, () => {
      const docs = kubernetesDocs(renderFiles(input()));
      expect(docs.length).toBeGreaterThan(10);
      for (const doc of docs) expect(schemaErrors(doc), `${doc.kind} ${doc.metadata.name}`).toEqual([]);
    });
  }

  it('covers every kind render emits', () => {
    const kinds = new Set(kubernetesDocs(renderFiles(exampleInput())).map((d) => `${d.apiVersion} ${d.kind}`));
    expect([...kinds].sort()).toEqual([
      'apps/v1 Deployment',
      'extensions.istio.io/v1alpha1 WasmPlugin',
      'install.istio.io/v1alpha1 IstioOperator',
      'monitoring.coreos.com/v1 PrometheusRule',
      'networking.istio.io/v1alpha3 EnvoyFilter',
      'policy/v1 PodDisruptionBudget',
      'security.istio.io/v1 AuthorizationPolicy',
      'security.istio.io/v1 PeerAuthentication',
      'telemetry.istio.io/v1 Telemetry',
      'v1 ConfigMap',
      'v1 Namespace',
      'v1 Service',
      'v1 ServiceAccount',
    ]);
    for (const k of kinds) expect(SCHEMA_KINDS).toContain(k);
  });
});

// The validator must be able to fail, or the tests above prove nothing.
describe('the schema check itself', () => {
  const wasmPlugin = () => structuredClone(kubernetesDocs(renderFiles(exampleInput())).find((d) => d.kind === 'WasmPlugin')!) as any;
  const deployment = () => structuredClone(kubernetesDocs(renderFiles(exampleInput())).find((d) => d.kind === 'Deployment')!) as any;

  it('rejects a value outside an enum', () => {
    const p = wasmPlugin();
    p.spec.failStrategy = 'FAIL_SOMETIMES';
    expect(schemaErrors(p)).toEqual(['data/spec/failStrategy must be equal to one of the allowed values']);
  });

  it('rejects a misspelt field the API server would silently prune', () => {
    const p = wasmPlugin();
    p.spec.failStratgy = p.spec.failStrategy;
    delete p.spec.failStrategy;
    expect(schemaErrors(p)).toEqual(['unknown field /spec/failStratgy']);
  });

  it('looks into nested Kubernetes objects but not into free-form pluginConfig', () => {
    const d = deployment();
    d.spec.template.spec.containers[0].securityContext.readOnlyRootFs = true;
    expect(schemaErrors(d)).toEqual(['unknown field /spec/template/spec/containers/0/securityContext/readOnlyRootFs']);
    const p = wasmPlugin();
    p.spec.pluginConfig.anything = { goes: 1 };
    expect(schemaErrors(p)).toEqual([]);
  });

  it('rejects a missing required field and a wrong type', () => {
    const d = deployment();
    delete d.spec.selector;
    d.spec.replicas = '3';
    expect(schemaErrors(d)).toEqual(['data/spec must have required property selector, data/spec/replicas must be integer']);
  });

  it('rejects a kind it has no schema for', () => {
    expect(schemaErrors({ apiVersion: 'v1', kind: 'Secret' })).toEqual(['no schema for v1 Secret']);
  });
});
