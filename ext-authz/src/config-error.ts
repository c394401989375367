import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { z } from 'zod';

/**
 * Errors in operator-written files, all worded `<file>: <what> (<where>)`,
 * whichever part of infergate reads the file (the server's access manifest,
 * `infergate render`'s deployment section).
 */
export class ManifestError extends Error {
  constructor(file: string, what: string, where: string) {
    super(`${file}: ${what} (${where})`);
    this.name = 'ManifestError';
  }
}

/** `rules[0].callers[1]`, or `top level` for the document itself. */
export function where(path: ReadonlyArray<PropertyKey>): string {
  if (path.length === 0) return 'top level';
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}

function describeIssue(issue: z.core.$ZodIssue): { what: string; path: ReadonlyArray<PropertyKey> } {
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
    case 'invalid_key': {
      // A record's key (a tier name, say): say which key and what is wrong with it.
      const key = String(issue.path[issue.path.length - 1]);
      return { what: `bad key "${key}": ${issue.issues[0]?.message ?? 'not allowed here'}`, path: issue.path.slice(0, -1) };
    }
    default:
      return { what: issue.message, path: issue.path };
  }
}

/**
 * The error for a failed zod parse (run with `reportInput: true`). A
 * misspelt key also shows up as the key it was meant to be going missing;
 * the typo is the more useful thing to report.
 */
export function issueError(file: string, issues: readonly z.core.$ZodIssue[], prefix: readonly PropertyKey[] = []): ManifestError {
  const first = issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0]!;
  const { what, path } = describeIssue(first);
  return new ManifestError(file, what, where([...prefix, ...path]));
}

/** Reads an operator file; a read failure names the file, the OS error code and the path. */
export function readConfigFile(path: string): { file: string; text: string } {
  const file = basename(path);
  try {
    return { file, text: readFileSync(path, 'utf8') };
  } catch (err) {
    throw new ManifestError(file, `cannot read manifest: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, path);
  }
}
