import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { alertRules, prometheusRule } from '../../istio/render/alerts.js';
import { ROOT } from '../helpers/paths.js';
import { exampleInput, RENDERED_DIR } from './helpers/example.js';

const RULES = `${RENDERED_DIR}/alerts.rules.yaml`;
const UNIT_TESTS = `${ROOT}istio/alerts-test.yaml`;
const tmp = mkdtempSync(join(tmpdir(), 'infergate-promtool-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs promtool; fails (never skips) when it is not installed. */
function promtool(...args: string[]): { status: number | null; output: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8' });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new Error('promtool is missing: apt-get install prometheus (Debian package; make setup does it when run as root)');
  }
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('alert rules with promtool', () => {
  it('promtool check rules accepts the rendered rules', () => {
    const r = promtool('check', 'rules', RULES);
    expect(r.output).toContain('SUCCESS: 7 rules found');
    expect(r.status).toBe(0);
  });

  it('promtool check rules rejects a broken rule (the check can fail)', () => {
    const bad = join(tmp, 'bad.rules.yaml');
    writeFileSync(bad, readFileSync(RULES, 'utf8').replace('> 0.2', '> > 0.2'));
    const r = promtool('check', 'rules', bad);
    expect(r.status).not.toBe(0);
    expect(r.output).toContain('FAILED');
  });

  it('promtool test rules: each alert fires on its synthetic series and stays quiet on normal traffic', () => {
    const r = promtool('test', 'rules', UNIT_TESTS);
    expect(r.output, r.output).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });

  it('the unit tests cover every alert, both firing and quiet', () => {
    const tests = parse(readFileSync(UNIT_TESTS, 'utf8')) as { rule_files: string[]; tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }> };
    expect(tests.rule_files).toEqual(['rendered/alerts.rules.yaml']);
    const cases = tests.tests.flatMap((t) => t.alert_rule_test);
    for (const { alert } of alertRules(exampleInput().deployment)) {
      expect(cases.some((c) => c.alertname === alert && c.exp_alerts.length > 0), `${alert} firing`).toBe(true);
      expect(cases.some((c) => c.alertname === alert && c.exp_alerts.length === 0), `${alert} quiet`).toBe(true);
    }
  });

  it('the PrometheusRule carries exactly the rules promtool tested', () => {
    const file = parse(readFileSync(RULES, 'utf8')) as { groups: unknown };
    expect((prometheusRule(exampleInput().deployment) as unknown as { spec: { groups: unknown } }).spec.groups).toEqual(file.groups);
  });
});
