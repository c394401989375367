import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { GUARD_CALLBACKS, GUARD_MODULES } from '../../istio/render/guard-modules.js';
import { builtFilter, FILTERS } from './built.js';

const list = (m: WebAssembly.Module) => WebAssembly.Module.imports(m).map((i) => `${i.module}.${i.name}`).sort();

// Exactly what each module may import: Envoy's proxy_* host functions for ABI
// 0.2.1 and the WASI monotonic clock. A new import must be added here on purpose.
// Request headers come in one proxy_get_header_map_pairs per request
// (filters/shared/request-headers.ts); proxy_get_header_map_value reads the
// one response header the response cap needs.
const PAYLOAD_LIMIT = [
  'env.proxy_close_stream',
  'env.proxy_define_metric',
  'env.proxy_get_buffer_bytes',
  'env.proxy_get_header_map_pairs',
  'env.proxy_get_header_map_value',
  'env.proxy_increment_metric',
  'env.proxy_log',
  'env.proxy_send_local_response',
  'env.proxy_set_tick_period_milliseconds',
];
const RATE_LIMIT = [
  'env.proxy_add_header_map_value',
  'env.proxy_define_metric',
  'env.proxy_get_buffer_bytes',
  'env.proxy_get_header_map_pairs',
  'env.proxy_get_property',
  'env.proxy_get_shared_data',
  'env.proxy_increment_metric',
  'env.proxy_log',
  'env.proxy_send_local_response',
  'env.proxy_set_shared_data',
  'env.proxy_set_tick_period_milliseconds',
  'wasi_snapshot_preview1.clock_time_get',
];
// both checks in one module: exactly the union of the two, nothing of its own
const GUARD = [...new Set([...PAYLOAD_LIMIT, ...RATE_LIMIT])].sort();

// Every module exports these: the ABI marker, both allocator names, memory, and the
// context, configuration, tick and end-of-stream entry points.
const BASE = [
  'proxy_abi_version_0_2_1', 'proxy_on_memory_allocate', 'malloc', 'memory',
  'proxy_on_context_create', 'proxy_on_vm_start', 'proxy_on_configure', 'proxy_on_tick', 'proxy_on_delete',
];
const REQUEST = ['proxy_on_request_headers', 'proxy_on_request_body'];
const RESPONSE = ['proxy_on_response_headers', 'proxy_on_response_body'];

/** The exact export list of a guard build: what guard-modules.ts says it has, which is what render relies on. */
function guardExports(module: (typeof GUARD_MODULES)[number]): string[] {
  const has = GUARD_CALLBACKS[module];
  return [...BASE, ...REQUEST, ...(has.responseHeaders ? ['proxy_on_response_headers'] : []), ...(has.responseBody ? ['proxy_on_response_body'] : [])].sort();
}

// Envoy calls every callback a module exports: each module exports exactly the ones it uses.
const EXPECTED: Record<(typeof FILTERS)[number], { imports: string[]; exports: string[] }> = {
  'payload-limit': { imports: PAYLOAD_LIMIT, exports: [...BASE, ...REQUEST, ...RESPONSE].sort() },
  // rate-limit never looks at bodies
  'rate-limit': { imports: RATE_LIMIT, exports: [...BASE, 'proxy_on_request_headers', 'proxy_on_response_headers'].sort() },
  guard: { imports: GUARD, exports: guardExports('guard') },
  // The smaller builds import less: what only a dropped callback calls is compiled out
  // (closing a stream mid-response, adding the budget headers, reading a response header).
  'guard-no-response-body': { imports: GUARD.filter((i) => i !== 'env.proxy_close_stream'), exports: guardExports('guard-no-response-body') },
  'guard-request-only': {
    imports: GUARD.filter((i) => !['env.proxy_close_stream', 'env.proxy_add_header_map_value', 'env.proxy_get_header_map_value'].includes(i)),
    exports: guardExports('guard-request-only'),
  },
};

describe('built filter modules', () => {
  it('the guard builds are the full module and the smaller ones, each with a different export list', () => {
    expect(GUARD_MODULES.every((m) => (FILTERS as readonly string[]).includes(m))).toBe(true);
    expect(guardExports('guard')).toEqual([...BASE, ...REQUEST, ...RESPONSE].sort());
    expect(new Set(GUARD_MODULES.map((m) => guardExports(m).join())).size).toBe(GUARD_MODULES.length);
  });

  for (const [name, expected] of Object.entries(EXPECTED)) {
    describe(name, () => {
      const mod = new WebAssembly.Module(readFileSync(builtFilter(name as keyof typeof EXPECTED)));

      it('imports exactly the host functions Envoy provides, and nothing from the AssemblyScript runtime', () => {
        expect(list(mod)).toEqual([...expected.imports]);
        expect(list(mod).filter((i) => /^env\.(abort|seed|trace|Date)/.test(i))).toEqual([]);
      });

      it('exports exactly the ABI marker, both allocator names, memory and the callbacks it routes', () => {
        const exports = WebAssembly.Module.exports(mod).map((e) => e.name).sort();
        expect(exports).toEqual(expected.exports);
        // end-of-stream work runs from proxy_on_delete, one crossing instead of two
        expect(exports.includes('proxy_on_done')).toBe(false);
        expect(exports.filter((e) => e.startsWith('proxy_abi_version_'))).toEqual(['proxy_abi_version_0_2_1']);
      });
    });
  }
});

describe('module start-up', () => {
  it('makes no host call while the module starts (Envoy refuses them there), so every module loads', async () => {
    const { ProxyWasmHost } = await import('./host.js');
    for (const name of FILTERS) {
      // the host throws on any host call during instantiation, as Envoy traps with restricted_callback
      const host = new ProxyWasmHost(builtFilter(name));
      expect(host.logs).toEqual([]);
    }
  });
});
