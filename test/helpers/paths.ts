import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const TOOLS_BIN = `${ROOT}.tools/bin`;
export const DEFAULT_BUNDLE = `${ROOT}build/policy/bundle.tar.gz`;
export const EXAMPLE_MANIFEST = `${ROOT}test/fixtures/manifests/example.yaml`;

/** Fails (never skips) with a message saying how to get the missing tool. */
export function requireTool(path: string, howToInstall: string): string {
  if (!existsSync(path)) throw new Error(`${path} is missing: ${howToInstall}`);
  return path;
}

export function requireBundle(): string {
  return requireTool(DEFAULT_BUNDLE, 'run `make setup` (or scripts/build.sh) to compile the Rego policy to wasm');
}
