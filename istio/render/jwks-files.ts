import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { ManifestError } from '../../ext-authz/src/config-error.js';
import { parseJwks } from '../../ext-authz/src/end-users/key-sets.js';
import type { PolicyData } from '../../ext-authz/src/manifest.js';
import { MANIFEST_KEY } from './names.js';

/**
 * The JWKS files the access manifest names (`endUsers.issuers[].jwks.file`),
 * for the server's ConfigMap. The ConfigMap is mounted as the manifest's own
 * directory, so each file goes in under its relative name and resolves there
 * exactly as it does beside the manifest on disk; the kubelet's `..data`
 * swap then replaces manifest and keys together, and the server reloads both.
 * render reads them relative to the input manifest and checks them with the
 * server's own parser, so a key file the server would reject never reaches a
 * cluster. A ConfigMap is not a Secret: a file holding private key material
 * is refused.
 */

// Kubernetes' ConfigMap key rule (IsConfigMapKey): no "/", so no subdirectories.
const CONFIG_MAP_KEY = /^[-._a-zA-Z0-9]{1,253}$/;
// JWK members that only private (or symmetric) keys have (RFC 7518 section 6).
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;

/** ConfigMap key → file text, for every JWKS file the manifest names (each once). */
export function readJwksFiles(policy: PolicyData, file: string, dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  (policy.end_users?.issuers ?? []).forEach((iss, i) => {
    if (!('file' in iss.jwks)) return;
    const given = iss.jwks.file;
    const at = `endUsers.issuers[${i}].jwks.file`;
    const name = posix.normalize(given);
    if (!CONFIG_MAP_KEY.test(name) || name.startsWith('..')) {
      throw new ManifestError(file, `JWKS file "${given}" cannot go in the server's ConfigMap beside the manifest: name a file in the manifest's own directory (letters, digits, ".", "_", "-")`, at);
    }
    if (name === MANIFEST_KEY) throw new ManifestError(file, `JWKS file "${given}" would replace the manifest in the server's ConfigMap (key ${MANIFEST_KEY}); rename it`, at);
    if (name in out) return;
    const path = join(dir, name);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ManifestError(file, `cannot read JWKS file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, at);
    }
    let keys: Array<Record<string, unknown>>;
    try {
      keys = parseJwks(text, `JWKS file "${given}"`).keys as unknown as Array<Record<string, unknown>>;
    } catch (err) {
      throw new ManifestError(file, (err as Error).message, at);
    }
    keys.forEach((k, j) => {
      const secret = PRIVATE_MEMBERS.find((m) => m in k);
      if (secret !== undefined) {
        throw new ManifestError(file, `JWKS file "${given}" holds private key material (keys[${j}].${secret}); a ConfigMap is readable, publish public keys only`, at);
      }
    });
    out[name] = text;
  });
  return out;
}
