import type { Backend, BackendName } from './backends.js';
import { served, type Decision, type Outcome } from './outcome.js';
import type { Target } from './targets.js';

export interface Evidence {
  readonly backends: readonly Backend[];
  readonly targets: readonly Target[];
  /** normalisePath with default options: the path, or null when refused. */
  readonly infergate: (target: string) => string | null;
  readonly direct: ReadonlyMap<BackendName, readonly Outcome[]>;
  readonly viaEnvoy: ReadonlyMap<BackendName, readonly Outcome[]>;
  /** The decision-log line of target i sent through backend n's Envoy, if one names its host. */
  readonly decision: (i: number, n: BackendName) => Decision | undefined;
}

const show = (s: string): string => {
  const j = JSON.stringify(s).slice(1, -1).replace(/\|/g, '\\|');
  return j.length > 48 ? `${j.slice(0, 20)}…(${s.length} chars)` : j;
};

function cell(b: Backend, o: Outcome | undefined, expected: string | null): string {
  if (o === undefined) return '?';
  if (o.status === 0) return `✗${o.error === 'timed out' ? 'timeout' : 'closed'}`;
  if (o.status === 200) return served(b, o.path!) === expected ? '200=' : `200 ${show(o.path!)}`;
  if (o.location !== undefined) return `${o.status}→${show(o.location)}`;
  if (o.reason !== undefined) return `${o.status} ${o.reason}`;
  return String(o.status);
}

/**
 * One Markdown table, ready for the docs: per target, infergate's reading,
 * what each backend did with it straight, and what happened through Envoy +
 * infergate (one cell when every backend fared alike, as Envoy normalises
 * before both; per backend otherwise).
 */
export function evidenceTable(e: Evidence): string {
  const names = e.backends.map((b) => b.name);
  const lines = [
    'Backend path evidence. infergate = normalisePath(target), default options.',
    'Backend cells (the target sent straight to it): "200=" it served the path infergate matches rules on; "200 P" it served path P;',
    '"3xx→L" redirect to L; "4xx" refused; "✗" no response. Through Envoy (normalize_path, merge_slashes) + infergate-authz:',
    'the same codes, "=" meaning the path in infergate\'s decision log, which is shown with the result; "403 reason": infergate',
    'denied (the backend was not reached); a bare 400 is Envoy\'s own refusal.',
    ...e.backends.map((b) => `  ${b.name}: ${b.what}`),
    '',
    `| target | infergate | ${names.join(' | ')} | through Envoy |`,
    `|${' --- |'.repeat(names.length + 3)}`,
  ];
  e.targets.forEach((t, i) => {
    if (t.family !== e.targets[i - 1]?.family) lines.push(`| **${t.family}** |${' |'.repeat(names.length + 2)}`);
    const accepted = e.infergate(t.target);
    const straight = e.backends.map((b) => cell(b, e.direct.get(b.name)?.[i], accepted));
    const envoy = e.backends.map((b) => cell(b, e.viaEnvoy.get(b.name)?.[i], e.decision(i, b.name)?.path ?? null));
    const logged = e.backends.map((b) => e.decision(i, b.name)).find((d) => d?.path != null);
    const allAlike = envoy.every((c) => c === envoy[0]);
    const through = (allAlike ? envoy[0]! : envoy.map((c, k) => `${names[k]}: ${c}`).join(', ')) + (logged ? ` (${show(logged.path!)} ${logged.result})` : '');
    const reading = accepted === null ? 'refused' : accepted === t.target ? '=' : show(accepted);
    lines.push(`| ${show(t.target) || '(empty)'} | ${reading} | ${straight.join(' | ')} | ${through} |`);
  });
  return lines.join('\n');
}
