import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { envoyBinary } from '../../envoy/envoy-process.js';
import { REPO_ROOT as ROOT, requireFile } from '../../ext-authz/src/repo-root.js';
import { BUILD_HINT } from './authz-server.js';
import { envoyPhase } from './envoy-phase.js';
import { method } from './method.js';
import { parseOpts } from './options.js';
import type { PhaseResult } from './phase-result.js';
import { loadavg } from './proc.js';
import { definitions, fullReport } from './report.js';
import { serverPhase } from './server-phase.js';

/**
 * The soak: prints the method, runs the phases asked for, prints the report
 * (and writes --markdown and --json); sets exit code 1 on any unexpected
 * answer. `self` is the entry script, forked with --worker as the load generator.
 */
export async function main(argv: string[], self: string): Promise<void> {
  const o = parseOpts(argv);
  requireFile(join(ROOT, 'dist/ext-authz/src/cli.js'), BUILD_HINT);
  requireFile(join(ROOT, 'build/policy/bundle.tar.gz'), 'run `bash scripts/build.sh` to compile the Rego policy');
  if (o.only !== 'server') envoyBinary();
  const header = method(o, o.only);
  console.log(header.join('\n'));
  const tmp = mkdtempSync(join(tmpdir(), 'infergate-soak-'));
  const results: PhaseResult[] = [];
  try {
    if (o.only !== 'envoy') results.push(await serverPhase({ o, tmp, self }));
    if (o.only !== 'server') results.push(await envoyPhase({ o, tmp, self }));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  console.log(`load average at end ${loadavg()}`);
  console.log('\n' + fullReport(o, results, false, []).trimStart());
  if (o.markdown) writeFileSync(o.markdown, fullReport(o, results, true, header) + '\n');
  if (o.json) {
    writeFileSync(o.json, JSON.stringify({ options: o, method: header, definitions: definitions(o), results }, null, 2) + '\n');
  }
  if (results.some((r) => r.errors > 0)) {
    console.error(`soak: unexpected answers in: ${results.filter((r) => r.errors > 0).map((r) => r.spec.name).join(', ')}`);
    process.exitCode = 1;
  }
}
