import { stringify } from 'yaml';
import { ACCESS_LOG_FIELDS } from '../ext-authz/src/access-log-fields.js';

/**
 * Renders the local Envoy bootstrap used by the demo and the end-to-end
 * tests: one mTLS listener that requires and verifies client certificates,
 * the ext_authz gRPC filter first (failure_mode_allow false: if the
 * authorizer is down, requests are denied), then any extra HTTP filters (the
 * proxy-wasm filters), then, with global quotas, the ratelimit filters, then
 * the router to one upstream. The global quotas' header filter goes before
 * ext_authz, as INSERT_FIRST puts it in Istio.
 */

export interface TlsFiles {
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
}

export type Address = { readonly host: string; readonly port: number } | { readonly socket: string };

export interface BootstrapOptions {
  readonly listenerName?: string;
  /** 0 picks a free port (read it back from the admin API). */
  readonly listenerPort: number;
  readonly adminPort?: number;
  readonly tls: TlsFiles;
  /** The ext_authz server; null leaves the filter out. */
  readonly extAuthz: (Address & { readonly timeoutMs?: number }) | null;
  /** Extra HTTP filters placed after ext_authz and before the router. */
  readonly httpFilters?: readonly object[];
  readonly upstream: { readonly host: string; readonly port: number; readonly http2?: boolean };
  /** Route timeout; long enough for slow model servers. */
  readonly routeTimeoutSeconds?: number;
  /** Where Envoy writes its JSON access log: a file, or `stdout` (in a container); none if absent. */
  readonly accessLogPath?: string;
  /** Envoy's global rate limiting (istio/render/global-quotas.ts builds the parts); none if absent. */
  readonly globalRateLimit?: GlobalRateLimit;
}

/** The cluster the ratelimit filters call (pass it to quotaFilters). */
export const RATE_LIMIT_CLUSTER = 'infergate_ratelimit';

export interface GlobalRateLimit {
  /** The rate-limit service's gRPC address. */
  readonly service: Address;
  /** First in the chain (the x-ratelimit-* header filter). */
  readonly firstFilters: readonly object[];
  /** After httpFilters, before the router (the ratelimit filters, calling RATE_LIMIT_CLUSTER). */
  readonly filters: readonly object[];
  /** The route's rate_limits. */
  readonly rateLimits: readonly object[];
}

const TYPE = {
  hcm: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  tls: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  extAuthz: 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
  router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  wasm: 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm',
  stringValue: 'type.googleapis.com/google.protobuf.StringValue',
  httpOptions: 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  fileAccessLog: 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
  stdoutAccessLog: 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog',
} as const;

function accessLog(path: string): object {
  const log_format = { json_format: ACCESS_LOG_FIELDS };
  if (path === 'stdout') return { name: 'envoy.access_loggers.stdout', typed_config: { '@type': TYPE.stdoutAccessLog, log_format } };
  return { name: 'envoy.access_loggers.file', typed_config: { '@type': TYPE.fileAccessLog, path, log_format } };
}

function socketAddress(a: Address): object {
  return 'socket' in a ? { pipe: { path: a.socket } } : { socket_address: { address: a.host, port_value: a.port } };
}

function staticCluster(name: string, a: Address, http2: boolean, timeout = '1s'): object {
  return {
    name,
    type: 'STATIC',
    connect_timeout: timeout,
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(a) } }] }] },
    ...(http2
      ? {
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': TYPE.httpOptions,
              explicit_http_config: { http2_protocol_options: {} },
            },
          },
        }
      : {}),
  };
}

/** A proxy-wasm HTTP filter in Envoy's V8 runtime; each gets its own VM so configs cannot collide. */
export function wasmHttpFilter(name: string, wasmPath: string, configuration: unknown): object {
  return {
    name: 'envoy.filters.http.wasm',
    typed_config: {
      '@type': TYPE.wasm,
      config: {
        name,
        root_id: name,
        vm_config: { vm_id: name, runtime: 'envoy.wasm.runtime.v8', code: { local: { filename: wasmPath } } },
        configuration: { '@type': TYPE.stringValue, value: JSON.stringify(configuration) },
        // A filter that fails to load or crashes must not let traffic through unfiltered.
        fail_open: false,
      },
    },
  };
}

export function extAuthzFilter(timeoutMs: number): object {
  return {
    name: 'envoy.filters.http.ext_authz',
    typed_config: {
      '@type': TYPE.extAuthz,
      transport_api_version: 'V3',
      failure_mode_allow: false,
      grpc_service: { envoy_grpc: { cluster_name: 'infergate_ext_authz' }, timeout: `${timeoutMs / 1000}s` },
      // The server needs only the identity and route, not the body.
      include_peer_certificate: false,
    },
  };
}

export function renderBootstrap(o: BootstrapOptions): string {
  const rl = o.globalRateLimit;
  const httpFilters: object[] = [...(rl?.firstFilters ?? [])];
  if (o.extAuthz !== null) httpFilters.push(extAuthzFilter(o.extAuthz.timeoutMs ?? 500));
  httpFilters.push(...(o.httpFilters ?? []));
  httpFilters.push(...(rl?.filters ?? []));
  httpFilters.push({ name: 'envoy.filters.http.router', typed_config: { '@type': TYPE.router } });

  const clusters: object[] = [staticCluster('upstream', o.upstream, o.upstream.http2 ?? false, '2s')];
  if (o.extAuthz !== null) clusters.push(staticCluster('infergate_ext_authz', o.extAuthz, true, '0.25s'));
  if (rl !== undefined) clusters.push(staticCluster(RATE_LIMIT_CLUSTER, rl.service, true, '0.25s'));
  const route = {
    cluster: 'upstream',
    timeout: `${o.routeTimeoutSeconds ?? 30}s`,
    ...(rl !== undefined && rl.rateLimits.length > 0 ? { rate_limits: structuredClone(rl.rateLimits) } : {}),
  };

  const bootstrap = {
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: o.adminPort ?? 0 } } },
    static_resources: {
      listeners: [
        {
          name: o.listenerName ?? 'ingress',
          address: { socket_address: { address: '127.0.0.1', port_value: o.listenerPort } },
          filter_chains: [
            {
              transport_socket: {
                name: 'envoy.transport_sockets.tls',
                typed_config: {
                  '@type': TYPE.tls,
                  require_client_certificate: true,
                  common_tls_context: {
                    tls_certificates: [{ certificate_chain: { filename: o.tls.serverCert }, private_key: { filename: o.tls.serverKey } }],
                    validation_context: { trusted_ca: { filename: o.tls.caCert } },
                    alpn_protocols: ['h2', 'http/1.1'],
                  },
                },
              },
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': TYPE.hcm,
                    stat_prefix: 'ingress',
                    codec_type: 'AUTO',
                    // Never trust a client-sent XFCC; Envoy sets its own from the verified peer.
                    forward_client_cert_details: 'SANITIZE_SET',
                    // Resolve dot segments and merge slashes before any filter, for the
                    // upstream as well: model servers disagree about both, so
                    // infergate-authz refuses paths that still carry them. Escaped
                    // slashes stay as sent; the authorizer refuses those with a reason.
                    normalize_path: true,
                    merge_slashes: true,
                    path_with_escaped_slashes_action: 'KEEP_UNCHANGED',
                    ...(o.accessLogPath !== undefined ? { access_log: [accessLog(o.accessLogPath)] } : {}),
                    set_current_client_cert_details: { uri: true },
                    route_config: {
                      name: 'local',
                      virtual_hosts: [
                        {
                          name: 'models',
                          domains: ['*'],
                          routes: [{ match: { prefix: '/' }, route }],
                        },
                      ],
                    },
                    http_filters: httpFilters,
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters,
    },
  };
  // YAML 1.1 quoting: Envoy's YAML parser reads a bare `no` or `on` (a tenant's name in a header matcher) as a boolean.
  return stringify(bootstrap, { lineWidth: 0, version: '1.1' });
}
