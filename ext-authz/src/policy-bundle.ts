import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';

/** What an `opa build -t wasm` bundle holds that the server uses. */
export interface PolicyBundle {
  readonly wasm: Uint8Array;
  /** The bundle's own data.json (the access manifest is added beside it). */
  readonly data: Record<string, unknown>;
  /** The raw bytes the revision is computed from. */
  readonly bytes: Uint8Array;
}

export class BundleError extends Error {
  constructor(file: string, what: string) {
    super(`${file}: ${what}`);
    this.name = 'BundleError';
  }
}

const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d];

function isWasm(b: Uint8Array): boolean {
  return WASM_MAGIC.every((v, i) => b[i] === v);
}

async function untar(buf: Buffer): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        files.set(header.name.replace(/^\/+/, ''), Buffer.concat(chunks));
        next();
      });
      stream.on('error', reject);
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  Readable.from([buf]).pipe(extract);
  await done;
  return files;
}

/**
 * Reads a policy bundle: either the tar.gz that `opa build -t wasm` writes,
 * or a bare policy.wasm. Every failure names the file and what is wrong.
 */
export async function readBundle(path: string): Promise<PolicyBundle> {
  return parseBundle(await readBundleBytes(path), basename(path));
}

export async function readBundleBytes(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new BundleError(basename(path), `cannot read bundle: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** The bundle in `bytes`, read from `file` (named in errors). */
export async function parseBundle(bytes: Buffer, file: string): Promise<PolicyBundle> {
  if (isWasm(bytes)) return { wasm: bytes, data: {}, bytes };
  let files: Map<string, Buffer>;
  try {
    files = await untar(gunzipSync(bytes));
  } catch (err) {
    throw new BundleError(file, `not a wasm module or an opa bundle (tar.gz): ${(err as Error).message}`);
  }
  const wasm = files.get('policy.wasm');
  if (!wasm) throw new BundleError(file, 'bundle has no /policy.wasm (build it with opa build -t wasm)');
  if (!isWasm(wasm)) throw new BundleError(file, '/policy.wasm is not a WebAssembly module');
  let data: Record<string, unknown> = {};
  const dataJson = files.get('data.json');
  if (dataJson) {
    try {
      const parsed: unknown = JSON.parse(dataJson.toString('utf8'));
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      data = parsed as Record<string, unknown>;
    } catch (err) {
      throw new BundleError(file, `bundle /data.json is invalid: ${(err as Error).message}`);
    }
  }
  return { wasm, data, bytes };
}
