import type { z } from 'zod';
import { ManifestError } from '../../ext-authz/src/manifest.js';

/**
 * Turns the first zod issue into a ManifestError worded like the access
 * manifest's (`<file>: <what> (<where>)`), so an operator sees one style of
 * message whichever part of infergate.yaml is wrong. manifest.ts keeps its
 * helpers private, hence this small twin.
 */

export function where(path: ReadonlyArray<PropertyKey>): string {
  if (path.length === 0) return 'top level';
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}

function describe(issue: z.core.$ZodIssue): { what: string; path: ReadonlyArray<PropertyKey> } {
  switch (issue.code) {
    case 'unrecognized_keys':
      return { what: `unknown key "${issue.keys[0]}"`, path: issue.path };
    case 'invalid_type': {
      if (issue.input === undefined && issue.path.length > 0) {
        return { what: `missing required key "${String(issue.path[issue.path.length - 1])}"`, path: issue.path.slice(0, -1) };
      }
      const got = Array.isArray(issue.input) ? 'array' : issue.input === null ? 'null' : typeof issue.input;
      return { what: `expected ${issue.expected}, got ${got}`, path: issue.path };
    }
    case 'invalid_value':
      return { what: `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`, path: issue.path };
    case 'too_small':
      if (issue.origin === 'array' || issue.origin === 'string') return { what: 'must not be empty', path: issue.path };
      return { what: `must be at least ${String(issue.minimum)}`, path: issue.path };
    case 'too_big':
      return { what: `must be at most ${String(issue.maximum)}`, path: issue.path };
    default:
      return { what: issue.message, path: issue.path };
  }
}

/** The error for a failed parse; a misspelt key is reported before the key it was meant to be going missing. */
export function issueError(file: string, issues: readonly z.core.$ZodIssue[], prefix: readonly PropertyKey[]): ManifestError {
  const first = issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0]!;
  const { what, path } = describe(first);
  return new ManifestError(file, what, where([...prefix, ...path]));
}
