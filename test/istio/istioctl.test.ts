import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { fileText, renderFiles, type FilterForm, type RenderedFile } from '../../istio/render/render.js';
import { TOOLS_BIN, ROOT, requireTool } from '../helpers/paths.js';
import { exampleInput, separateInput } from './helpers/example.js';

/**
 * Istio's own tools, built from Istio's source by set-up (scripts/setup.sh),
 * on every rendered output: `istioctl validate` on each file and `istioctl
 * analyze` (offline, with the rendered mesh config) on each install set, one
 * filter form at a time. The only message allowed is IST0133, the generic
 * "EnvoyFilter exposes internal implementation details" every EnvoyFilter
 * gets.
 */

const istioctl = () => requireTool(`${TOOLS_BIN}/istioctl`, 'run `make setup` (go install istio.io/istio/istioctl/cmd/istioctl at the version in scripts/versions.sh)');
const RENDERED = `${ROOT}istio/rendered/`;
const ENVOY_FILTER_NOTICE = 'EnvoyFilter exposes internal implementation details that may change at any time';
const tmp = mkdtempSync(join(tmpdir(), 'infergate-istioctl-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function run(args: string[]): { status: number | null; output: string } {
  const r = spawnSync(istioctl(), args, { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/** `validate` findings other than the EnvoyFilter notice. */
function validateFindings(file: string): string[] {
  const r = run(['validate', '-f', file]);
  // Anything but the per-file verdict lines is a finding (warnings come as "* ..." lines, or as
  // free text such as the Deployment telemetry-label warning).
  const findings = r.output.split('\n').map((l) => l.trim())
    .filter((l) => l !== '' && !/^"[^"]+" (is valid|has warnings:)$/.test(l) && !l.includes(ENVOY_FILTER_NOTICE));
  if (r.status !== 0) findings.push(`exit ${r.status}: ${r.output.trim()}`);
  return findings;
}

/** `analyze` messages (Error/Warning/Info [ISTnnnn] …) other than IST0133. */
function analyzeFindings(meshConfig: string, files: string[]): string[] {
  const r = run(['analyze', '--use-kube=false', '--all-namespaces', '--meshConfigFile', meshConfig, ...files]);
  const findings = r.output.split('\n').filter((l) => /^(Error|Warning|Info) \[IST\d+\]/.test(l) && !l.includes('[IST0133]'));
  if (r.status !== 0) findings.push(`exit ${r.status}: ${r.output.trim()}`);
  return findings;
}

/** The mesh config as analyze reads it: the meshConfig block of the rendered IstioOperator. */
function meshConfigFile(dir: string, meshConfigYaml: string): string {
  const overlay = parseAllDocuments(meshConfigYaml).map((d) => d.toJS() as { spec?: { meshConfig?: unknown } } | null).find((d) => d?.spec?.meshConfig);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'mesh.yaml');
  writeFileSync(file, stringify(overlay!.spec!.meshConfig));
  return file;
}

function writeRendering(name: string, files: RenderedFile[]): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  for (const f of files) writeFileSync(join(dir, f.name), fileText(f, 'infergate.yaml'));
  return dir;
}

/** Kubernetes files of one install: everything but the other filter form and the plain files (Prometheus rules, the rate-limit service's configuration). */
function installSet(dir: string, form: FilterForm): string[] {
  const skip = new Set(['alerts.rules.yaml', 'ratelimit-config.yaml', form === 'wasmplugin' ? 'envoy-filters.yaml' : 'wasm-plugins.yaml']);
  return readdirSync(dir).filter((f) => f.endsWith('.yaml') && !skip.has(f)).map((f) => join(dir, f));
}

const RENDERINGS: Array<[string, () => string]> = [
  ['the checked-in istio/rendered', () => RENDERED],
  ['a fresh render of the example (guard form)', () => writeRendering('example', renderFiles(exampleInput()))],
  ['a fresh render with separate filters', () => writeRendering('separate', renderFiles(separateInput()))],
];

describe("Istio's own istioctl on every rendered output", () => {
  for (const [name, dirOf] of RENDERINGS) {
    describe(name, () => {
      it('passes istioctl validate, file by file', () => {
        const dir = dirOf();
        for (const f of installSet(dir, 'wasmplugin').concat(join(dir, 'envoy-filters.yaml'))) {
          expect(validateFindings(f), f).toEqual([]);
        }
      });

      it.each(['wasmplugin', 'envoyfilter'] as const)('passes istioctl analyze with the rendered mesh config (%s form)', (form) => {
        const dir = dirOf();
        const mesh = meshConfigFile(join(tmp, `${name.replace(/\W+/g, '-')}-${form}`), readFileSync(join(dir, 'mesh-config.yaml'), 'utf8'));
        expect(analyzeFindings(mesh, installSet(dir, form))).toEqual([]);
      });
    });
  }

  // The check must be able to fail, or the ones above prove nothing.
  it('reports IST0151 for an EnvoyFilter whose relative patch has no priority, and a validate warning for unlabelled pods', () => {
    const dir = writeRendering('broken', renderFiles(exampleInput()));
    const filters = join(dir, 'envoy-filters.yaml');
    writeFileSync(filters, readFileSync(filters, 'utf8').replace(/^ {2}priority: \d+\n/gm, ''));
    const mesh = meshConfigFile(join(tmp, 'broken-mesh'), readFileSync(join(dir, 'mesh-config.yaml'), 'utf8'));
    expect(analyzeFindings(mesh, installSet(dir, 'envoyfilter')).join('\n')).toContain('[IST0151]');
    const server = join(dir, 'ext-authz.yaml');
    writeFileSync(server, readFileSync(server, 'utf8').replace(/^ +app\.kubernetes\.io\/version: .*\n/m, ''));
    expect(validateFindings(server).join('\n')).toContain('may not provide Istio metrics and telemetry labels');
  });
});
