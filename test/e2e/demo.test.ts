import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT, requireTool } from '../helpers/paths.js';

interface Row { caller: string; request: string; status: number; reason: string; expected: number; ok: boolean }

describe('make demo (non-interactive, free ports)', () => {
  it('plays the whole scene through Envoy and every call gets its expected status and reason', () => {
    const script = requireTool(`${ROOT}dist/demo/run-demo.js`, 'run `make setup` to build the demo');
    const r = spawnSync(process.execPath, [script, '--json', '--ephemeral-ports'], { encoding: 'utf8', timeout: 90_000 });
    expect(r.status, r.stderr).toBe(0);
    const { rows } = JSON.parse(r.stdout) as { rows: Row[] };
    const seen = rows.map((x) => [x.caller, x.status, x.reason]);
    expect(seen).toEqual([
      ['api-gateway', 200, 'allowed'],
      ['api-gateway', 200, 'allowed'],
      ['web-frontend', 403, 'no_matching_rule'],
      ['compromised', 403, 'quarantined'],
      ['foreign-agent', 403, 'foreign_trust_domain'],
      ['api-gateway', 403, 'invalid_path'],
      ['api-gateway', 403, 'denied_by_rule'],
      ['api-gateway', 403, 'invalid_path'],
      ['api-gateway', 413, 'payload_too_large'],
      ...Array.from({ length: 5 }, () => ['batch-scorer', 200, 'allowed']),
      ...Array.from({ length: 3 }, () => ['batch-scorer', 429, 'rate_limited']),
    ]);
    expect(rows.every((x) => x.ok)).toBe(true);
  }, 120_000);
});
