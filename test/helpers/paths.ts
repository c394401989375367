import { REPO_ROOT, requireFile } from '../../ext-authz/src/repo-root.js';

export const ROOT = REPO_ROOT;
export const TOOLS_BIN = `${ROOT}.tools/bin`;
export const DEFAULT_BUNDLE = `${ROOT}build/policy/bundle.tar.gz`;
export const EXAMPLE_MANIFEST = `${ROOT}test/fixtures/manifests/example.yaml`;

/** Fails (never skips) with a message saying how to get the missing tool. */
export const requireTool = requireFile;

export function requireBundle(): string {
  return requireTool(DEFAULT_BUNDLE, 'run `make setup` (or scripts/build.sh) to compile the Rego policy to wasm');
}
