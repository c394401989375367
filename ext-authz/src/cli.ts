#!/usr/bin/env node
import { errorMessage } from './errors.js';
import { loadManifestFile } from './manifest.js';
import { readBundle } from './policy-bundle.js';
import { PolicyEngine } from './policy-engine.js';
import { USAGE, UsageError, parseCliArgs } from './cli-args.js';
import { AuthzServer } from './server.js';
import { ClusterPrimary } from './workers/primary.js';

function fail(message: string, code: number): never {
  process.stderr.write(`infergate-authz: ${message}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseCliArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) fail(`${err.message} (see --help)`, 2);
    throw err;
  }
  if (parsed.help) {
    process.stdout.write(USAGE);
    return;
  }
  const opts = parsed.options;
  if (parsed.check) {
    const bundle = await readBundle(opts.bundlePath);
    const data = opts.manifestPath ? { ...bundle.data, access_manifest: loadManifestFile(opts.manifestPath).data } : bundle.data;
    await PolicyEngine.create(bundle, data);
    process.stdout.write('ok\n');
    return;
  }
  // One process, exactly as before --workers existed, unless more are asked for (or the machine has more CPUs).
  const server = (opts.workers ?? 1) > 1 ? await ClusterPrimary.start(opts) : await AuthzServer.start(opts);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    server.log.info({ signal }, 'shutting down');
    void server.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => fail(errorMessage(err).split('\n')[0]!, 1));
