import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ROOT } from '../helpers/paths.js';

/**
 * Path of a built filter module. Runs filters/build.sh first (a no-op when the
 * .wasm is newer than its sources), so tests never exercise a stale build.
 */
export function builtFilter(name: (typeof FILTERS)[number]): string {
  execFileSync(`${ROOT}filters/build.sh`, { stdio: ['ignore', 'ignore', 'inherit'] });
  const path = `${ROOT}build/filters/${name}.wasm`;
  if (!existsSync(path)) throw new Error(`${path} was not built: run filters/build.sh (needs npm install for assemblyscript)`);
  return path;
}

/** Every module filters/build.sh builds: the filters, and guard's smaller builds (istio/render/guard-modules.ts). */
export const FILTERS = ['payload-limit', 'rate-limit', 'guard', 'guard-no-response-body', 'guard-request-only'] as const;
