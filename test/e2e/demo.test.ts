import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { EXPECTED_DEMO_ROWS } from '../helpers/demo-rows.js';
import { ROOT, requireTool } from '../helpers/paths.js';

interface Row { caller: string; user: string; request: string; status: number; reason: string; expected: number; ok: boolean }

describe('make demo (non-interactive, free ports)', () => {
  it('plays the whole scene through Envoy and every call gets its expected status and reason', () => {
    const script = requireTool(`${ROOT}dist/demo/run-demo.js`, 'run `make setup` to build the demo');
    const r = spawnSync(process.execPath, [script, '--json', '--ephemeral-ports'], { encoding: 'utf8', timeout: 90_000 });
    // The rows first: a wrong row says more than the exit status it causes.
    expect(r.stdout.trim(), `the demo printed no scene (exit ${String(r.status)}):\n${r.stderr}`).not.toBe('');
    const { rows } = JSON.parse(r.stdout) as { rows: Row[] };
    const seen = rows.map((x) => [x.caller, x.user, x.status, x.reason]);
    expect(seen).toEqual(EXPECTED_DEMO_ROWS);
    expect(rows.every((x) => x.ok)).toBe(true);
    expect(r.status, r.stderr).toBe(0);
  }, 120_000);
});
