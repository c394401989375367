/**
 * The fields of Envoy's access log that join a request to infergate's
 * decision (the ext_authz filter's dynamic metadata, which the server fills
 * in check-response.ts), to Envoy's request id and to the trace context. The
 * local bootstrap (JSON file or stdout log) and the rendered Istio
 * access-log provider use this one table, so one grep works in both.
 */

const AUTHZ_METADATA = 'envoy.filters.http.ext_authz';

export const ACCESS_LOG_FIELDS: Readonly<Record<string, string>> = {
  start_time: '%START_TIME%',
  method: '%REQ(:METHOD)%',
  path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  authority: '%REQ(:AUTHORITY)%',
  response_code: '%RESPONSE_CODE%',
  response_flags: '%RESPONSE_FLAGS%',
  duration_ms: '%DURATION%',
  downstream_peer_uri_san: '%DOWNSTREAM_PEER_URI_SAN%',
  request_id: '%REQ(X-REQUEST-ID)%',
  traceparent: '%REQ(TRACEPARENT)%',
  infergate_decision_id: `%DYNAMIC_METADATA(${AUTHZ_METADATA}:decision_id)%`,
  infergate_reason: `%DYNAMIC_METADATA(${AUTHZ_METADATA}:reason)%`,
  infergate_rule: `%DYNAMIC_METADATA(${AUTHZ_METADATA}:rule)%`,
  infergate_caller: `%DYNAMIC_METADATA(${AUTHZ_METADATA}:caller)%`,
};
