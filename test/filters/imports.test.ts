import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { builtFilter } from './built.js';

const list = (m: WebAssembly.Module) => WebAssembly.Module.imports(m).map((i) => `${i.module}.${i.name}`).sort();

// Exactly what each module may import: Envoy's proxy_* host functions for ABI
// 0.2.1 and the WASI monotonic clock. A new import must be added here on purpose.
const PAYLOAD_LIMIT = [
  'env.proxy_close_stream',
  'env.proxy_define_metric',
  'env.proxy_get_buffer_bytes',
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
  'env.proxy_get_header_map_value',
  'env.proxy_get_property',
  'env.proxy_get_shared_data',
  'env.proxy_increment_metric',
  'env.proxy_log',
  'env.proxy_send_local_response',
  'env.proxy_set_shared_data',
  'env.proxy_set_tick_period_milliseconds',
  'wasi_snapshot_preview1.clock_time_get',
];
const EXPECTED = {
  'payload-limit': PAYLOAD_LIMIT,
  'rate-limit': RATE_LIMIT,
  // both checks in one module: exactly the union of the two, nothing of its own
  guard: [...new Set([...PAYLOAD_LIMIT, ...RATE_LIMIT])].sort(),
};

describe('built filter modules', () => {
  for (const [name, expected] of Object.entries(EXPECTED)) {
    describe(name, () => {
      const mod = new WebAssembly.Module(readFileSync(builtFilter(name as keyof typeof EXPECTED)));

      it('imports exactly the host functions Envoy provides, and nothing from the AssemblyScript runtime', () => {
        expect(list(mod)).toEqual([...expected]);
        expect(list(mod).filter((i) => /^env\.(abort|seed|trace|Date)/.test(i))).toEqual([]);
      });

      it('exports the ABI 0.2.1 marker, both allocator names, memory and the callbacks it routes', () => {
        const exports = WebAssembly.Module.exports(mod).map((e) => e.name);
        expect(exports).toEqual(expect.arrayContaining([
          'proxy_abi_version_0_2_1', 'malloc', 'proxy_on_memory_allocate', 'memory',
          'proxy_on_context_create', 'proxy_on_configure', 'proxy_on_request_headers',
          'proxy_on_response_headers', 'proxy_on_delete',
        ]));
        // Envoy calls every callback a module exports; rate-limit never looks at bodies.
        expect(exports.includes('proxy_on_request_body')).toBe(name !== 'rate-limit');
        // end-of-stream work runs from proxy_on_delete, one crossing instead of two
        expect(exports.includes('proxy_on_done')).toBe(false);
        expect(exports.filter((e) => e.startsWith('proxy_abi_version_'))).toEqual(['proxy_abi_version_0_2_1']);
      });
    });
  }
});

describe('module start-up', () => {
  it('makes no host call while the module starts (Envoy refuses them there), so both modules load', async () => {
    const { ProxyWasmHost } = await import('./host.js');
    for (const name of ['payload-limit', 'rate-limit'] as const) {
      // the host throws on any host call during instantiation, as Envoy traps with restricted_callback
      const host = new ProxyWasmHost(builtFilter(name));
      expect(host.logs).toEqual([]);
    }
  });
});
