/**
 * The parts of envoy.service.auth.v3.CheckRequest this server reads, as
 * @grpc/proto-loader decodes them (keepCase, no defaults: an absent field is
 * undefined). Everything is optional because a peer can send anything.
 */
export interface CheckRequest {
  attributes?: {
    source?: Peer | null;
    destination?: Peer | null;
    request?: { http?: HttpRequest | null } | null;
    context_extensions?: Record<string, string>;
  } | null;
}

export interface Peer {
  principal?: string;
  service?: string;
}

export interface HttpRequest {
  id?: string;
  method?: string;
  headers?: Record<string, string>;
  header_map?: { headers?: Array<{ key?: string; value?: string; raw_value?: Buffer }> } | null;
  path?: string;
  host?: string;
  scheme?: string;
  protocol?: string;
}
