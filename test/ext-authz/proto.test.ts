import * as protoLoader from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { LOADER_OPTIONS } from '../../ext-authz/src/protos.js';

// Field numbers from Envoy's published v3 API reference. Our own minimal
// .proto files must match them exactly or Envoy and the server talk past each other.
const EXPECTED: Record<string, Record<string, number>> = {
  'envoy.service.auth.v3.CheckRequest': { attributes: 1 },
  'envoy.service.auth.v3.CheckResponse': { status: 1, denied_response: 2, ok_response: 3, dynamic_metadata: 4 },
  'envoy.service.auth.v3.DeniedHttpResponse': { status: 1, headers: 2, body: 3 },
  'envoy.service.auth.v3.OkHttpResponse': { headers: 2, headers_to_remove: 5, response_headers_to_add: 6, query_parameters_to_set: 7, query_parameters_to_remove: 8 },
  'envoy.service.auth.v3.AttributeContext': { source: 1, destination: 2, request: 4, context_extensions: 10, metadata_context: 11, tls_session: 12, route_metadata_context: 13 },
  'envoy.service.auth.v3.AttributeContext.Peer': { address: 1, service: 2, labels: 3, principal: 4, certificate: 5 },
  'envoy.service.auth.v3.AttributeContext.Request': { time: 1, http: 2 },
  'envoy.service.auth.v3.AttributeContext.HttpRequest': { id: 1, method: 2, headers: 3, path: 4, host: 5, scheme: 6, size: 9, protocol: 10, body: 11, raw_body: 12, header_map: 13 },
  'envoy.config.core.v3.HeaderValue': { key: 1, value: 2, raw_value: 3 },
  'envoy.config.core.v3.HeaderValueOption': { header: 1, append: 2, append_action: 3, keep_empty_value: 4 },
  'envoy.config.core.v3.HeaderMap': { headers: 1 },
  'envoy.type.v3.HttpStatus': { code: 1 },
  'google.rpc.Status': { code: 1, message: 2, details: 3 },
};

describe('the project\'s own ext_authz protos', () => {
  const def = protoLoader.loadSync('envoy/service/auth/v3/external_auth.proto', LOADER_OPTIONS);

  interface Descriptor { name: string; field: Array<{ name: string; number: number }>; nestedType: Descriptor[] }
  // Nested messages live inside their parent's descriptor, not at the top level.
  const find = (name: string): Descriptor | undefined => {
    const top = def[name] as unknown as { type: Descriptor } | undefined;
    if (top) return top.type;
    const dot = name.lastIndexOf('.');
    return find(name.slice(0, dot))?.nestedType.find((n) => n.name === name.slice(dot + 1));
  };

  it.each(Object.entries(EXPECTED))('%s has Envoy\'s field numbers', (name, fields) => {
    const msg = find(name);
    expect(msg, `${name} is not defined`).toBeDefined();
    const actual = Object.fromEntries(msg!.field.map((f) => [f.name, f.number]));
    expect(actual).toEqual(fields);
  });

  it('defines the Authorization/Check method', () => {
    const svc = def['envoy.service.auth.v3.Authorization'] as unknown as Record<string, { path: string }>;
    expect(svc.Check!.path).toBe('/envoy.service.auth.v3.Authorization/Check');
  });
});
