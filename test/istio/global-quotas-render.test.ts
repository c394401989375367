import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { rateLimitPolicies } from '../../istio/render/authorization-policies.js';
import { globalQuotaFilter, GLOBAL_QUOTA_PRIORITY } from '../../istio/render/global-quota-filters.js';
import { budgetMatchers, quotaFilters, quotaRateLimits, rateLimitServiceConfig, rateLimitServiceYaml } from '../../istio/render/global-quotas.js';
import { ENVOY_FILTER_PRIORITY } from '../../istio/render/envoy-filters.js';
import { pathRegex } from '../../istio/render/path-regex.js';
import { rateLimitDeployment, rateLimitResources, redisArgs, redisDeployment } from '../../istio/render/ratelimit-service.js';
import { fileText, renderFiles } from '../../istio/render/render.js';
import { exampleInput, variantInput } from './helpers/example.js';

const input = () => exampleInput();
const q = () => input().globalQuotas!;
const d = () => input().deployment;

type Matcher = { name: string; invert_match?: boolean; string_match: { exact?: string; prefix?: string; safe_regex?: { regex: string } } };

/** Envoy's header matching, enough for the matchers render writes: all must hold; a missing header never matches (inverted: always does). */
function fires(headers: Record<string, string>, matchers: Matcher[]): boolean {
  return matchers.every((m) => {
    const v = headers[m.name];
    const s = m.string_match;
    const hit = v !== undefined && (s.exact !== undefined ? v === s.exact : s.prefix !== undefined ? v.startsWith(s.prefix) : new RegExp(s.safe_regex!.regex).test(v));
    return m.invert_match ? !hit : hit;
  });
}

describe("the rate-limit service's configuration", () => {
  it('is one domain with one descriptor per budget: a key level for per tenant/tier/caller, the limit directly for per route', () => {
    expect(rateLimitServiceConfig(q())).toEqual({
      domain: 'infergate',
      descriptors: [
        { key: 'budget', value: 'free-tenants-hourly', descriptors: [{ key: 'tenant', rate_limit: { unit: 'hour', requests_per_unit: 1000 } }] },
        { key: 'budget', value: 'image-model', rate_limit: { unit: 'minute', requests_per_unit: 600 } },
      ],
    });
  });

  it('is the same text in the ConfigMap and in ratelimit-config.yaml, the file the tests start the service with', () => {
    const files = renderFiles(input());
    const cm = files.find((f) => f.name === 'ratelimit.yaml')!.documents.find((x: any) => x.kind === 'ConfigMap') as any;
    expect(cm.metadata).toMatchObject({ name: 'infergate-ratelimit-config', namespace: 'infergate-system' });
    expect(cm.data).toEqual({ 'infergate.yaml': rateLimitServiceYaml(q()) });
    const plain = fileText(files.find((f) => f.name === 'ratelimit-config.yaml')!, 'infergate.yaml');
    expect(plain.slice(plain.indexOf('---\n') + 4)).toBe(rateLimitServiceYaml(q()));
  });

  it('quotes what the service\'s YAML 1.1 would read as a boolean (a budget named "no")', () => {
    const text = rateLimitServiceYaml(variantInput(() => {}, (m) => { m.globalQuotas.budgets[0].name = 'no'; }).globalQuotas!);
    expect(text).toContain('value: "no"');
    expect(parse(text).descriptors[0].value).toBe('no');
  });

  it('writes nothing stale without a globalQuotas section: the files are there, empty', () => {
    const files = renderFiles(variantInput(() => {}, (m) => { delete m.globalQuotas; }));
    for (const name of ['ratelimit.yaml', 'global-quotas.yaml', 'ratelimit-config.yaml']) {
      const f = files.find((x) => x.name === name)!;
      expect(f.documents, name).toEqual([]);
      expect(fileText(f, 'infergate.yaml')).toContain('# (nothing to render: the manifest has no globalQuotas section)');
    }
    expect(files.find((f) => f.name === 'authorization.yaml')!.documents.filter((x: any) => x.spec.action === 'ALLOW')).toEqual([]);
  });
});

describe("the route's rate limits", () => {
  it('for the example: the budget entry matches the filters, the key comes from the header ext_authz set, each on its failure mode\'s stage', () => {
    expect(quotaRateLimits(q())).toEqual([
      {
        stage: 1,
        actions: [
          { header_value_match: { descriptor_key: 'budget', descriptor_value: 'free-tenants-hourly', expect_match: true, headers: [{ name: 'x-infergate-tier', string_match: { exact: 'free' } }] } },
          { request_headers: { header_name: 'x-infergate-tenant', descriptor_key: 'tenant' } },
        ],
      },
      ...['/v1/models/sdxl:predict', '/v2/models/sdxl/infer'].map((g, i, all) => ({
        stage: 0,
        actions: [{
          header_value_match: {
            descriptor_key: 'budget', descriptor_value: 'image-model', expect_match: true,
            headers: [{ name: ':path', string_match: { safe_regex: { regex: pathRegex(g) } } }, ...all.slice(0, i).map((e) => ({ name: ':path', string_match: { safe_regex: { regex: pathRegex(e) } }, invert_match: true }))],
          },
        }],
      })),
    ]);
  });

  it('a budget without filters is a generic key; per tier and per caller key on those headers', () => {
    const x = variantInput(() => {}, (m) => {
      m.globalQuotas.budgets = [
        { name: 'tiers', per: 'tier', limit: { requests: 10, unit: 'second' } },
        { name: 'callers', per: 'caller', limit: { requests: 10, unit: 'day' }, failureMode: 'allow' },
      ];
    }).globalQuotas!;
    expect(quotaRateLimits(x)).toEqual([
      { stage: 0, actions: [{ generic_key: { descriptor_key: 'budget', descriptor_value: 'tiers' } }, { request_headers: { header_name: 'x-infergate-tier', descriptor_key: 'tier' } }] },
      { stage: 1, actions: [{ generic_key: { descriptor_key: 'budget', descriptor_value: 'callers' } }, { request_headers: { header_name: 'x-infergate-caller', descriptor_key: 'caller' } }] },
    ]);
  });

  it('several filter values make one rule per combination, and a request fires exactly one rule of a budget, even where patterns overlap', () => {
    const x = variantInput(() => {}, (m) => {
      m.globalQuotas.budgets = [{
        name: 'mixed', per: 'tenant', tiers: ['free', 'premium'],
        callers: ['spiffe://cluster.local/ns/gateway/*', 'spiffe://cluster.local/ns/gateway/sa/api-gateway'],
        paths: ['/v1/models/*:predict', '/v1/models/sdxl:predict', '/v2/**'],
        limit: { requests: 5, unit: 'minute' },
      }];
    }).globalQuotas!;
    const rules = budgetMatchers(x.budgets[0]!) as Matcher[][];
    expect(rules).toHaveLength(2 * 2 * 3);
    const gateway = 'spiffe://cluster.local/ns/gateway/sa/api-gateway';
    const fired = (h: Record<string, string>) => rules.filter((r) => fires(h, r)).length;
    // Overlapping callers (prefix and exact) and paths (a wildcard and one model): counted once.
    expect(fired({ 'x-infergate-tier': 'free', 'x-infergate-caller': gateway, ':path': '/v1/models/sdxl:predict' })).toBe(1);
    expect(fired({ 'x-infergate-tier': 'premium', 'x-infergate-caller': gateway, ':path': '/v2/models/a/infer?x=1' })).toBe(1);
    expect(fired({ 'x-infergate-tier': 'premium', 'x-infergate-caller': 'spiffe://cluster.local/ns/gateway/sa/other', ':path': '/v1/models/x%3Apredict' })).toBe(1);
    // Outside a filter: not counted.
    expect(fired({ 'x-infergate-tier': 'gold', 'x-infergate-caller': gateway, ':path': '/v2/x' })).toBe(0);
    expect(fired({ 'x-infergate-tier': 'free', 'x-infergate-caller': 'spiffe://cluster.local/ns/web/sa/frontend', ':path': '/v2/x' })).toBe(0);
    expect(fired({ 'x-infergate-tier': 'free', 'x-infergate-caller': gateway, ':path': '/v3/x' })).toBe(0);
    // No verified tier header (a workload's own request): never counted.
    expect(fired({ 'x-infergate-caller': gateway, ':path': '/v2/x' })).toBe(0);
  });
});

describe('the ratelimit filters', () => {
  it('one per failure mode in use, deny first: fail closed on stage 0 (503 when the service cannot answer), fail open on stage 1', () => {
    const filters = quotaFilters(q(), 'rls') as any[];
    expect(filters.map((f) => [f.name, f.typed_config.stage, f.typed_config.failure_mode_deny])).toEqual([
      ['infergate-global-quotas-deny', 0, true],
      ['infergate-global-quotas-allow', 1, false],
    ]);
    expect(filters[0].typed_config).toMatchObject({
      domain: 'infergate', timeout: '0.25s', enable_x_ratelimit_headers: 'DRAFT_VERSION_03', rate_limited_as_resource_exhausted: true,
      status_on_error: { code: 'ServiceUnavailable' },
      response_headers_to_add: [{ header: { key: 'retry-after', value: '%RESP(x-ratelimit-reset)%' } }],
      rate_limit_service: { transport_api_version: 'V3', grpc_service: { envoy_grpc: { cluster_name: 'rls' } } },
    });
    const denyOnly = variantInput(() => {}, (m) => { delete m.globalQuotas.budgets[0].failureMode; m.globalQuotas.timeout = '1s'; }).globalQuotas!;
    expect((quotaFilters(denyOnly, 'rls') as any[]).map((f) => [f.name, f.typed_config.timeout])).toEqual([['infergate-global-quotas-deny', '1s']]);
  });
});

describe('the global quotas EnvoyFilter', () => {
  it('per workload, applied after the guard\'s; with ports, every patch only on those ports, as the CUSTOM policy', () => {
    const [, embeddings] = d().workloads;
    const ef = globalQuotaFilter(d(), embeddings!, q()) as any;
    expect(ef.metadata).toMatchObject({ name: 'infergate-embeddings-global-quotas', namespace: 'ml' });
    expect(ef.spec.workloadSelector).toEqual({ labels: { app: 'embeddings', tier: 'inference' } });
    expect(GLOBAL_QUOTA_PRIORITY).toBeGreaterThan(ENVOY_FILTER_PRIORITY);
    expect(ef.spec.priority).toBe(GLOBAL_QUOTA_PRIORITY);
    expect(ef.spec.configPatches.map((p: any) => [p.applyTo, p.patch.operation, p.match.listener?.portNumber ?? p.match.routeConfiguration?.portNumber, p.patch.value.name ?? 'route'])).toEqual([
      ['HTTP_FILTER', 'INSERT_FIRST', 8080, 'infergate-ratelimit-headers'],
      ['HTTP_FILTER', 'INSERT_BEFORE', 8080, 'infergate-global-quotas-deny'],
      ['HTTP_FILTER', 'INSERT_BEFORE', 8080, 'infergate-global-quotas-allow'],
      ['HTTP_ROUTE', 'MERGE', 8080, 'route'],
    ]);
    expect(ef.spec.configPatches[1].patch.value.typed_config.rate_limit_service.grpc_service.envoy_grpc.cluster_name).toBe('outbound|8081||infergate-ratelimit.infergate-system.svc.cluster.local');
    expect(ef.spec.configPatches[3].patch.value.route.rate_limits).toEqual(quotaRateLimits(q()));
  });
});

describe('the rate-limit service and Redis', () => {
  const hardened = (uid: number) => ({
    runAsNonRoot: true, runAsUser: uid, runAsGroup: uid, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true,
    privileged: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
  });

  it('run hardened, with resources, probes and no API token', () => {
    for (const [dep, uid] of [[rateLimitDeployment(d()), 65532], [redisDeployment(d()), 999]] as const) {
      const pod = (dep as any).spec.template.spec;
      expect(pod.automountServiceAccountToken).toBe(false);
      expect(pod.enableServiceLinks).toBe(false);
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      const c = pod.containers[0];
      expect(c.securityContext).toEqual(hardened(uid));
      expect(c.resources.limits).toBeDefined();
      expect(c.livenessProbe).toBeDefined();
      expect(c.readinessProbe).toBeDefined();
    }
  });

  it('the service: several replicas that roll with none unavailable, a PDB, its config mounted as a directory it watches', () => {
    const dep = rateLimitDeployment(d()) as any;
    expect(dep.spec.replicas).toBe(2);
    expect(dep.spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    const c = dep.spec.template.spec.containers[0];
    expect(c.command).toEqual(['/bin/ratelimit']);
    expect(c.volumeMounts).toContainEqual({ name: 'config', mountPath: '/data/ratelimit/config', readOnly: true });
    const env = Object.fromEntries(c.env.map((e: any) => [e.name, e.value]));
    expect(env).toMatchObject({
      RUNTIME_ROOT: '/data', RUNTIME_SUBDIRECTORY: 'ratelimit', RUNTIME_APPDIRECTORY: 'config', RUNTIME_WATCH_ROOT: 'false', RUNTIME_IGNOREDOTFILES: 'true',
      REDIS_URL: 'infergate-redis.infergate-system.svc.cluster.local:6379', GRPC_PORT: '8081', HEALTHY_WITH_AT_LEAST_ONE_CONFIG_LOADED: 'true',
    });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/healthcheck', port: 'http' });
    const kinds = rateLimitResources(d(), q()).map((r) => `${r.kind} ${r.metadata.name}`);
    expect(kinds).toEqual([
      'ServiceAccount infergate-redis', 'Deployment infergate-redis', 'Service infergate-redis',
      'ServiceAccount infergate-ratelimit', 'ConfigMap infergate-ratelimit-config', 'Deployment infergate-ratelimit', 'Service infergate-ratelimit', 'PodDisruptionBudget infergate-ratelimit',
    ]);
    const svc = rateLimitResources(d(), q()).find((r) => r.kind === 'Service' && r.metadata.name === 'infergate-ratelimit') as any;
    expect(svc.spec.ports).toEqual([{ name: 'grpc', port: 8081, targetPort: 'grpc', protocol: 'TCP', appProtocol: 'grpc' }]);
    expect(svc.spec.selector).toEqual(dep.spec.selector.matchLabels);
  });

  it('Redis: one replica replaced with Recreate (two would split the counters), in memory only, evicting before the kernel kills it', () => {
    const dep = redisDeployment(d()) as any;
    expect(dep.spec.replicas).toBe(1);
    expect(dep.spec.strategy).toEqual({ type: 'Recreate' });
    // 3/4 of the 256Mi limit.
    expect(redisArgs(d())).toEqual(['--port', '6379', '--bind', '0.0.0.0', '--protected-mode', 'no', '--save', '', '--appendonly', 'no', '--maxmemory', '201326592', '--maxmemory-policy', 'volatile-ttl']);
    expect(redisArgs(variantInput((x) => { x.redis = { resources: { requests: { cpu: '100m', memory: '1Gi' }, limits: { cpu: '1', memory: '1Gi' } } }; }).deployment)).toContain(String(768 * 1024 ** 2));
    expect(rateLimitResources(d(), q()).filter((r) => r.kind === 'PodDisruptionBudget').map((r) => r.metadata.name)).toEqual(['infergate-ratelimit']);
  });

  it('are reachable only from the protected workloads\' namespaces (the service) and the service\'s identity (Redis)', () => {
    expect(rateLimitPolicies(d()).map((p: any) => [p.metadata.name, p.spec])).toEqual([
      ['infergate-ratelimit', { selector: { matchLabels: { 'app.kubernetes.io/name': 'infergate', 'app.kubernetes.io/component': 'ratelimit' } }, action: 'ALLOW', rules: [{ from: [{ source: { namespaces: ['ml'] } }], to: [{ operation: { ports: ['8081'] } }] }] }],
      ['infergate-redis', { selector: { matchLabels: { 'app.kubernetes.io/name': 'infergate', 'app.kubernetes.io/component': 'ratelimit-redis' } }, action: 'ALLOW', rules: [{ from: [{ source: { principals: ['*/ns/infergate-system/sa/infergate-ratelimit'] } }], to: [{ operation: { ports: ['6379'] } }] }] }],
    ]);
  });
});
