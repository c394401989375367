import { describe, expect, it } from 'vitest';
import { parseManifestText } from '../../ext-authz/src/manifest.js';
import { alertRules } from '../../istio/render/alerts.js';
import { authorizationPolicy } from '../../istio/render/authorization-policies.js';
import { envoyFilter } from '../../istio/render/envoy-filters.js';
import { filterChain } from '../../istio/render/filter-chain.js';
import { extensionProvider, meshConfig } from '../../istio/render/mesh-config.js';
import { peerAuthentications } from '../../istio/render/peer-authentications.js';
import { renderFiles, streamText } from '../../istio/render/render.js';
import { imageVersion, serverArgs, serverDeployment } from '../../istio/render/server-deployment.js';
import { accessLogTelemetries } from '../../istio/render/telemetry.js';
import { serverDisruptionBudget, serverService } from '../../istio/render/server-service.js';
import { wasmPlugins } from '../../istio/render/wasm-plugins.js';
import { exampleInput, separateInput, variantInput, withoutTierQuotas } from './helpers/example.js';

const d = () => exampleInput().deployment;

describe('mesh config', () => {
  it('points the gRPC provider at the server Service, fails closed, with a short timeout', () => {
    expect(extensionProvider(d())).toEqual({
      name: 'infergate',
      envoyExtAuthzGrpc: { service: 'infergate-authz.infergate-system.svc.cluster.local', port: 9191, timeout: '0.5s', failOpen: false },
    });
    expect(extensionProvider(variantInput((x) => { x.provider.statusOnError = '503'; }).deployment).envoyExtAuthzGrpc).toMatchObject({ statusOnError: '503' });
  });

  it("defines an access-log provider whose lines carry infergate's decision, and each protected workload selects it", () => {
    const providers = (meshConfig(d()) as any).spec.meshConfig.extensionProviders;
    expect(providers[1]).toMatchObject({ name: 'infergate-access-log', envoyFileAccessLog: { path: '/dev/stdout' } });
    expect(providers[1].envoyFileAccessLog.logFormat.labels).toMatchObject({
      request_id: '%REQ(X-REQUEST-ID)%',
      traceparent: '%REQ(TRACEPARENT)%',
      infergate_decision_id: '%DYNAMIC_METADATA(envoy.filters.http.ext_authz:decision_id)%',
    });
    const t = accessLogTelemetries(d());
    expect(t.map((x) => [x.metadata.namespace, (x as any).spec])).toEqual([
      ['ml', { selector: { matchLabels: { app: 'model-serving' } }, accessLogging: [{ providers: [{ name: 'infergate-access-log' }] }] }],
      ['ml', { selector: { matchLabels: { app: 'embeddings', tier: 'inference' } }, accessLogging: [{ providers: [{ name: 'infergate-access-log' }] }] }],
    ]);
  });

  it('has sidecars resolve dot segments and merge slashes before the check, since the server refuses paths that still carry them', () => {
    expect((meshConfig(d()) as any).spec.meshConfig.pathNormalization).toEqual({ normalization: 'MERGE_SLASHES' });
  });
});

describe('authorization', () => {
  it('gates every request of a workload, or only its listed ports', () => {
    const [a, b] = d().workloads;
    expect(authorizationPolicy(d(), a!).spec).toEqual({ selector: { matchLabels: { app: 'model-serving' } }, action: 'CUSTOM', provider: { name: 'infergate' }, rules: [{}] });
    expect(authorizationPolicy(d(), b!).spec).toMatchObject({ rules: [{ to: [{ operation: { ports: ['8080'] } }] }] });
    expect(authorizationPolicy(d(), b!).metadata).toMatchObject({ name: 'infergate-embeddings', namespace: 'ml' });
  });

  it('requires mTLS for the server namespace and each protected workload', () => {
    const pas = peerAuthentications(d());
    expect(pas.map((p) => [p.metadata.namespace, p.spec])).toEqual([
      ['infergate-system', { mtls: { mode: 'STRICT' } }],
      ['ml', { selector: { matchLabels: { app: 'model-serving' } }, mtls: { mode: 'STRICT' } }],
      ['ml', { selector: { matchLabels: { app: 'embeddings', tier: 'inference' } }, mtls: { mode: 'STRICT' } }],
    ]);
  });
});

describe('ext_authz server', () => {
  const dep = () => serverDeployment(d()) as any;

  it('runs hardened', () => {
    const pod = dep().spec.template.spec;
    const c = pod.containers[0];
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(c.securityContext).toEqual({
      runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true,
      privileged: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c.resources).toEqual({ requests: { cpu: '250m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } });
    expect(pod.automountServiceAccountToken).toBe(false);
  });

  it("labels its pods with the name and version Istio's telemetry reads", () => {
    expect(dep().spec.template.metadata.labels).toMatchObject({ 'app.kubernetes.io/name': 'infergate', 'app.kubernetes.io/version': '0.1.0' });
    expect(imageVersion('registry.local:5000/infergate-authz')).toBe('latest');
    expect(imageVersion('infergate-authz@sha256:0123456789abcdef0123')).toBe('0123456789ab');
  });

  it('probes the health endpoints on the metrics port', () => {
    const c = dep().spec.template.spec.containers[0];
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http-metrics' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http-metrics' });
    expect(c.ports).toEqual([
      { name: 'grpc', containerPort: 9191, protocol: 'TCP' },
      { name: 'http-metrics', containerPort: 9464, protocol: 'TCP' },
    ]);
  });

  it('mounts the manifest ConfigMap as a directory (no subPath), so edits reach the running server', () => {
    const pod = dep().spec.template.spec;
    const mount = pod.containers[0].volumeMounts.find((m: any) => m.name === 'manifest');
    expect(mount).toEqual({ name: 'manifest', mountPath: '/etc/infergate', readOnly: true });
    expect(pod.volumes.find((v: any) => v.name === 'manifest')).toEqual({ name: 'manifest', configMap: { name: 'infergate-authz-manifest' } });
    expect(dep().spec.template.metadata.annotations).not.toHaveProperty('checksum/manifest');
  });

  it('passes the server its flags', () => {
    expect(serverArgs(d())).toEqual(['--manifest', '/etc/infergate/manifest.yaml', '--listen', '0.0.0.0:9191', '--metrics', '0.0.0.0:9464', '--decision-log', 'stdout', '--log-level', 'info']);
    expect(serverArgs(variantInput((x) => { x.server.dryRun = true; }).deployment)).toContain('--dry-run');
  });

  it('serves gRPC through a Service whose selector matches the pods, and keeps all but one replica through drains', () => {
    const svc = serverService(d()) as any;
    expect(svc.spec.selector).toEqual(dep().spec.selector.matchLabels);
    expect(dep().spec.template.metadata.labels).toMatchObject(svc.spec.selector);
    expect(svc.spec.ports[0]).toMatchObject({ name: 'grpc', port: 9191, appProtocol: 'grpc' });
    expect((serverDisruptionBudget(d()) as any).spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: svc.spec.selector } });
    expect(dep().spec.replicas).toBe(3);
  });

  it('ships the access manifest the server will accept, without the deployment section', () => {
    const cm = renderFiles(exampleInput()).find((f) => f.name === 'ext-authz.yaml')!.documents.find((x: any) => x.kind === 'ConfigMap') as any;
    const text = cm.data['manifest.yaml'];
    expect(parseManifestText(text, 'manifest.yaml')).toEqual(exampleInput().policy);
    expect(text).not.toMatch(/^deployment:/m);
  });
});

describe('filters', () => {
  it('WasmPlugins (guard form, the default): one per workload, after authz, fail closed, inbound, both checks in one config', () => {
    const plugins = wasmPlugins(d(), d().workloads[0]!);
    expect(plugins).toHaveLength(1);
    expect(plugins[0]!.metadata.name).toBe('infergate-model-serving-guard');
    const spec = plugins[0]!.spec as any;
    expect(spec).toMatchObject({ pluginName: 'infergate-guard', phase: 'STATS', priority: 10, failStrategy: 'FAIL_CLOSE', match: [{ mode: 'SERVER' }], url: 'oci://ghcr.io/infergate/guard-no-response-body:0.1.0' });
    expect(spec).not.toHaveProperty('sha256');
    expect(spec.pluginConfig).toEqual({ rateLimit: d().filters.rateLimit!.config, payloadLimit: d().filters.payloadLimit!.config });
    // Rate limit first: the guard runs its checks in its config's order.
    expect(Object.keys(spec.pluginConfig)).toEqual(['rateLimit', 'payloadLimit']);
    expect(wasmPlugins(d(), d().workloads[1]!)[0]!.spec).toMatchObject({ match: [{ mode: 'SERVER', ports: [{ number: 8080 }] }] });
  });

  it('guard form: a pinned sha256, and a config holding only the checks configured', () => {
    const x = variantInput((dd) => { dd.filters.guard.sha256 = { 'guard-request-only': 'c'.repeat(64) }; delete dd.filters.rateLimit; }, withoutTierQuotas).deployment;
    const [p] = wasmPlugins(x, x.workloads[0]!).map((r) => r.spec as any);
    // no rate limit, no response cap: nothing happens on the response, so the request-side build
    expect(p).toMatchObject({ url: 'oci://ghcr.io/infergate/guard-request-only:0.1.0', sha256: 'c'.repeat(64), pluginConfig: { payloadLimit: x.filters.payloadLimit!.config } });
    expect(p.pluginConfig).not.toHaveProperty('rateLimit');
    expect(filterChain(variantInput((dd) => { delete dd.filters.payloadLimit; }).deployment).map((f) => [f.id, Object.keys(f.config as object)])).toEqual([['guard', ['rateLimit']]]);
  });

  it('WasmPlugins (separate form): rate limit before payload limit, each from its own module', () => {
    const x = separateInput((dd) => { dd.filters.rateLimit.sha256 = 'a'.repeat(64); }).deployment;
    const plugins = wasmPlugins(x, x.workloads[0]!);
    expect(plugins.map((p) => p.metadata.name)).toEqual(['infergate-model-serving-rate-limit', 'infergate-model-serving-payload-limit']);
    const [rl, pl] = plugins.map((p) => p.spec as any);
    expect(rl).toMatchObject({ pluginName: 'infergate-rate-limit', phase: 'STATS', priority: 20, failStrategy: 'FAIL_CLOSE', match: [{ mode: 'SERVER' }], url: 'oci://ghcr.io/infergate/rate-limit:0.1.0', sha256: 'a'.repeat(64) });
    expect(pl).toMatchObject({ pluginName: 'infergate-payload-limit', phase: 'STATS', priority: 10, failStrategy: 'FAIL_CLOSE', url: 'oci://ghcr.io/infergate/payload-limit:0.1.0' });
    expect(rl.pluginConfig).toEqual(x.filters.rateLimit!.config);
    expect(pl.pluginConfig).toEqual(x.filters.payloadLimit!.config);
  });

  it('EnvoyFilter (guard form): one patch before the router, config passed as the JSON the guard parses', () => {
    const ef = envoyFilter(d(), d().workloads[0]!) as any;
    // A relative patch needs a priority for a defined order of application (istioctl IST0151).
    expect(ef.spec.priority).toBe(10);
    const values = ef.spec.configPatches.map((p: any) => p.patch.value);
    expect(values.map((v: any) => v.name)).toEqual(['infergate-guard']);
    expect(JSON.parse(values[0].typed_config.config.configuration.value)).toEqual({ rateLimit: d().filters.rateLimit!.config, payloadLimit: d().filters.payloadLimit!.config });
    expect(values[0].typed_config.config.vm_config.code).toEqual({ local: { filename: '/var/local/lib/wasm-filters/guard-no-response-body.wasm' } });
  });

  it('EnvoyFilter (separate form): patches in chain order, each loading its own module', () => {
    const x = separateInput().deployment;
    const values = (envoyFilter(x, x.workloads[0]!) as any).spec.configPatches.map((p: any) => p.patch.value);
    expect(values.map((v: any) => v.name)).toEqual(['infergate-rate-limit', 'infergate-payload-limit']);
    expect(JSON.parse(values[0].typed_config.config.configuration.value)).toEqual(x.filters.rateLimit!.config);
    expect(values[1].typed_config.config.vm_config.code).toEqual({ local: { filename: '/var/local/lib/wasm-filters/payload-limit.wasm' } });
  });

  it('EnvoyFilter with ports: one patch per filter per port', () => {
    const x = variantInput((dd) => { dd.workloads[1].ports = [8080, 9000]; }).deployment;
    const patches = (envoyFilter(x, x.workloads[1]!) as any).spec.configPatches;
    expect(patches.map((p: any) => [p.match.listener.portNumber, p.patch.value.name])).toEqual([[8080, 'infergate-guard'], [9000, 'infergate-guard']]);
    const y = separateInput((dd) => { dd.workloads[1].ports = [8080, 9000]; }).deployment;
    const separate = (envoyFilter(y, y.workloads[1]!) as any).spec.configPatches;
    expect(separate.map((p: any) => [p.match.listener.portNumber, p.patch.value.name])).toEqual([
      [8080, 'infergate-rate-limit'], [8080, 'infergate-payload-limit'], [9000, 'infergate-rate-limit'], [9000, 'infergate-payload-limit'],
    ]);
  });

  it('no filters configured: empty filter files, in either form', () => {
    for (const form of ['guard', 'separate']) {
      const files = renderFiles(variantInput((dd) => { dd.filters = { form }; }, withoutTierQuotas));
      expect(files.find((f) => f.name === 'wasm-plugins.yaml')!.documents, form).toEqual([]);
      expect(files.find((f) => f.name === 'envoy-filters.yaml')!.documents, form).toEqual([]);
    }
    const files = renderFiles(variantInput((dd) => { delete dd.filters; }, withoutTierQuotas));
    expect(files.find((f) => f.name === 'wasm-plugins.yaml')!.documents).toEqual([]);
  });
});

describe('alerts', () => {
  it('has the four kinds of alert the issue asks for, scoped to the protected namespaces', () => {
    const rules = alertRules(d());
    expect(rules.map((r) => r.alert)).toEqual([
      'InfergateCallerDenialSurge', 'InfergateCallerTrafficAnomaly', 'InfergateRateLimitRejections',
      'InfergateAuthzErrors', 'InfergateAuthzSlow', 'InfergatePolicyReloadFailing', 'InfergateAuthzDown',
    ]);
    expect(rules[0]!.expr).toContain('sum by (source_principal, destination_service)');
    expect(rules[0]!.expr).toContain('destination_workload_namespace=~"ml"');
    expect(rules[0]!.expr).toContain('response_flags="UAEX"');
  });
});

describe('stdout stream', () => {
  it('holds one filter form only', () => {
    const files = renderFiles(exampleInput());
    const wasm = streamText(files, 'infergate.yaml', 'wasmplugin');
    const ef = streamText(files, 'infergate.yaml', 'envoyfilter');
    expect(wasm).toContain('kind: WasmPlugin');
    expect(wasm).not.toContain('name: infergate-model-serving-filters');
    expect(ef).toContain('name: infergate-model-serving-filters');
    expect(ef).not.toContain('kind: WasmPlugin');
    // The global quotas' EnvoyFilters go with either form.
    for (const s of [wasm, ef]) expect(s).toContain('name: infergate-model-serving-global-quotas');
    expect(wasm).not.toContain('# Source: alerts.rules.yaml');
    expect(wasm).not.toContain('# Source: ratelimit-config.yaml');
  });
});
