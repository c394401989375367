// OPA-Envoy (opa-envoy-plugin) as a peer in the ext-authz benchmark: where
// its policy and configuration are, how it is started, and what to tell a
// user who has no binary. The binary itself is the user's: the benchmark
// takes its path (--opa-envoy PATH) and never builds or downloads one.
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../ext-authz/src/repo-root.js';

export const OPA_ENVOY_DIR = join(REPO_ROOT, 'bench/opa-envoy');
/** The example manifest as an OPA-Envoy user writes it; decision at envoy/authz/allow. */
export const POLICY = join(OPA_ENVOY_DIR, 'policy.rego');
/** The same decision, with a deny turned into an evaluation error ghz counts (see the file). */
export const CHECKED_POLICY = join(OPA_ENVOY_DIR, 'checked.rego');
export const CONFIG = join(OPA_ENVOY_DIR, 'config.yaml');
export const PLAIN_PATH = 'envoy/authz/allow';
export const CHECKED_PATH = 'infergate_bench/allow';
/** What OPA-Envoy answers when checked.rego turns a deny into an error (envoyauth's invalid decision error). */
export const CHECKED_DENY_MARKER = 'illegal value for policy evaluation result';

export const WHERE_TO_GET =
  'pass --opa-envoy PATH (bench/run.sh: OPA_ENVOY=PATH), the path of an opa-envoy-plugin binary: ' +
  'from the project\'s releases (https://github.com/open-policy-agent/opa-envoy-plugin/releases, the opa_envoy_linux_amd64_static asset), ' +
  'or `go install github.com/open-policy-agent/opa-envoy-plugin/cmd/opa-envoy-plugin@<tag>` (tags look like v1.19.1-envoy) where your Go module proxy serves it';

/** The binary's OPA version (`opa-envoy-plugin version`); fails saying where a binary comes from. */
export function opaEnvoyVersion(binary: string): string {
  try {
    accessSync(binary, constants.X_OK);
  } catch {
    throw new Error(`--opa-envoy ${binary}: not an executable file; ${WHERE_TO_GET}`);
  }
  let out: string;
  try {
    out = execFileSync(binary, ['version'], { encoding: 'utf8', timeout: 10_000 });
  } catch (err) {
    throw new Error(`--opa-envoy ${binary}: \`version\` failed (${err instanceof Error ? err.message : String(err)}); ${WHERE_TO_GET}`);
  }
  const version = /^Version: (.+)$/m.exec(out)?.[1]?.trim();
  if (version === undefined) throw new Error(`--opa-envoy ${binary}: \`version\` printed no "Version:" line, is it opa-envoy-plugin? ${WHERE_TO_GET}`);
  return version;
}

export interface OpaEnvoyPorts {
  /** envoy.service.auth.v3.Authorization (the plugin's gRPC server). */
  grpc: number;
  /** OPA's own REST API (--addr), which opa run --server always opens. */
  http: number;
  /** Health and Prometheus metrics (--diagnostic-addr). */
  diagnostic: number;
}

/**
 * `opa-envoy-plugin run` arguments, as bench/opa-envoy/config.yaml documents
 * them, on loopback ports. `checked` loads checked.rego beside the policy and
 * points the plugin at it, so a denied check shows up as a gRPC error.
 */
export function opaEnvoyArgs(ports: OpaEnvoyPorts, checked: boolean): string[] {
  return [
    'run', '--server', '--skip-version-check',
    `--addr=127.0.0.1:${ports.http}`, `--diagnostic-addr=127.0.0.1:${ports.diagnostic}`,
    `--config-file=${CONFIG}`,
    `--set=plugins.envoy_ext_authz_grpc.addr=127.0.0.1:${ports.grpc}`,
    ...(checked ? [`--set=plugins.envoy_ext_authz_grpc.path=${CHECKED_PATH}`] : []),
    '--log-level=error',
    POLICY, ...(checked ? [CHECKED_POLICY] : []),
  ];
}
