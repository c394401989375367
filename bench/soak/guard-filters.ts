import { join } from 'node:path';
import { localFilterChain, localWasmFilters } from '../../envoy/local-stack.js';
import { SOAK_MANIFEST } from './request-mix.js';
import { REPO_ROOT as ROOT, requireFile } from '../../ext-authz/src/repo-root.js';
import { defaultLimit, GREEDY, greedyLimit } from './request-mix.js';

/** The demo manifest's guard chain, with budgets for this soak: one greedy caller, everyone else far below theirs. */
export function guardFilters(rate: number): object[] {
  const chain = localFilterChain(SOAK_MANIFEST);
  for (const f of chain) {
    const cfg = f.config as { rateLimit?: Record<string, unknown> };
    if (cfg.rateLimit) {
      cfg.rateLimit = {
        ...cfg.rateLimit,
        default: defaultLimit(rate),
        callers: [{ match: GREEDY.id, ...greedyLimit(rate) }],
      };
    }
  }
  const moduleDir = join(ROOT, 'build/filters');
  for (const f of chain) requireFile(join(moduleDir, `${f.module}.wasm`), 'run filters/build.sh (or `bash scripts/build.sh`) to build the filters');
  return localWasmFilters(chain, moduleDir);
}
