import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fileText, renderFiles } from '../../istio/render/render.js';
import { exampleInput, RENDERED_DIR } from './helpers/example.js';

const REGENERATE = 'scripts/build.sh && node dist/cli/infergate.js render --manifest istio/example/infergate.yaml --out istio/rendered';

describe('checked-in istio/rendered', () => {
  const files = renderFiles(exampleInput());

  it.each(files.map((f) => [f.name, f] as const))('%s is exactly what render writes for istio/example/infergate.yaml', (name, f) => {
    const onDisk = readFileSync(`${RENDERED_DIR}/${name}`, 'utf8');
    // toBe on one string gives a line diff; the message says how to fix it.
    expect(onDisk, `istio/rendered/${name} is out of date; regenerate it with: ${REGENERATE}`).toBe(fileText(f, 'infergate.yaml'));
  });

  it('holds no file render does not write', () => {
    expect(readdirSync(RENDERED_DIR).sort(), `istio/rendered has stray files; regenerate it with: rm -r istio/rendered && ${REGENERATE}`).toEqual(
      files.map((f) => f.name).sort(),
    );
  });
});
