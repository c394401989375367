import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The repository root, with a trailing slash, whether this runs from source
 * (ext-authz/src) or compiled (dist/ext-authz/src). Everything that finds
 * proto/, build/ or .tools/ resolves it from here.
 */
export const REPO_ROOT = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../../' : '../../', import.meta.url));

/** Returns `path` if it exists; otherwise fails with a message saying how to get it. */
export function requireFile(path: string, howToGet: string): string {
  if (!existsSync(path)) throw new Error(`${path} is missing: ${howToGet}`);
  return path;
}
