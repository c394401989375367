import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { ManifestError } from '../ext-authz/src/manifest.js';
import { loadRenderInput } from '../istio/render/load-input.js';
import { type FilterForm, fileText, renderFiles, streamText } from '../istio/render/render.js';

export const USAGE = `Usage: infergate render --manifest FILE [--out DIR] [--filters wasmplugin|envoyfilter]

Renders the Istio and Kubernetes resources that install infergate, from the
access manifest and its deployment section (see istio/example/infergate.yaml).

Options:
  --manifest FILE   infergate.yaml: access manifest plus a deployment section
  --out DIR         write a fixed set of files into DIR (created if missing):
                      mesh-config.yaml      meshConfig extension provider (IstioOperator overlay)
                      ext-authz.yaml        server Namespace, ServiceAccount, ConfigMap, Deployment, Service, PDB
                      authorization.yaml    PeerAuthentication STRICT and CUSTOM AuthorizationPolicies
                      wasm-plugins.yaml     filters as WasmPlugins   } apply one
                      envoy-filters.yaml    filters as EnvoyFilters  } of these two
                      prometheus-rule.yaml  alerts (PrometheusRule)
                      alerts.rules.yaml     the same alerts as a plain Prometheus rule file
                    without --out: one multi-document YAML stream on stdout
  --filters FORM    on stdout, which filter form to include (default wasmplugin)
  -h, --help        this text
`;

export class UsageError extends Error {}

export interface RenderCommand {
  manifest: string;
  out: string | null;
  filters: FilterForm;
}

/** Parses argv after the program name; throws UsageError with a one-line message. */
export function parseInfergateArgs(argv: string[]): RenderCommand | 'help' {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') return 'help';
  if (command !== 'render') throw new UsageError(`unknown command "${command}" (expected "render")`);
  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      strict: true,
      allowPositionals: false,
      options: { manifest: { type: 'string' }, out: { type: 'string' }, filters: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]!);
  }
  if (values.help) return 'help';
  if (values.manifest === undefined) throw new UsageError('render needs --manifest FILE');
  const filters = values.filters ?? 'wasmplugin';
  if (filters !== 'wasmplugin' && filters !== 'envoyfilter') throw new UsageError(`--filters: expected wasmplugin or envoyfilter, got "${filters}"`);
  return { manifest: values.manifest, out: values.out ?? null, filters };
}

/** Runs the command; returns what to print and the exit code, so tests need no process. */
export function runRender(cmd: RenderCommand): { stdout: string; stderr: string; code: number } {
  try {
    const files = renderFiles(loadRenderInput(cmd.manifest));
    const source = basename(cmd.manifest);
    if (cmd.out === null) return { stdout: streamText(files, source, cmd.filters), stderr: '', code: 0 };
    mkdirSync(cmd.out, { recursive: true });
    for (const f of files) writeFileSync(join(cmd.out, f.name), fileText(f, source));
    return { stdout: '', stderr: `wrote ${files.length} files to ${cmd.out}\n`, code: 0 };
  } catch (err) {
    if (err instanceof ManifestError) return { stdout: '', stderr: `infergate render: ${err.message}\n`, code: 1 };
    throw err;
  }
}

export function main(argv: string[]): number {
  let cmd;
  try {
    cmd = parseInfergateArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`infergate: ${err.message}\n${USAGE.split('\n')[0]}\n`);
    return 2;
  }
  if (cmd === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const r = runRender(cmd);
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  return r.code;
}
