// Local replies shared by the filters: JSON body for HTTP callers, gRPC status
// (trailers-only, set by Envoy) for gRPC callers.
import { sendLocalResponse, Name, HostBytes } from "./host";
import { requestHeader } from "./request-headers";
import { GRPC_NONE } from "./status";

const GRPC_CONTENT_TYPE = String.UTF8.encode("application/grpc");
const CONTENT_TYPE = new Name("content-type");
// Scratch for the content-type value, borrowed from the request-header snapshot.
const contentType = new HostBytes();

/** Whether the request speaks gRPC (content-type application/grpc…). Only inside proxy_on_request_headers. */
export function isGrpcRequest(): bool {
  const grpc = requestHeader(CONTENT_TYPE, contentType) && contentType.startsWith(GRPC_CONTENT_TYPE);
  contentType.release();
  return grpc;
}

/**
 * `extraHeaders` is a flat [name, value…] list. For gRPC callers the HTTP
 * status is carried as `grpcStatus` and Envoy sets the content type itself.
 */
export function reject(status: u32, details: string, jsonBody: string, extraHeaders: string[], grpc: bool, grpcStatus: i32): u32 {
  if (grpc) return sendLocalResponse(status, details, jsonBody, extraHeaders, grpcStatus);
  const headers = extraHeaders.slice(0);
  headers.push("content-type");
  headers.push("application/json");
  return sendLocalResponse(status, details, jsonBody, headers, GRPC_NONE);
}
