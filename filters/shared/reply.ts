// Local replies shared by the filters: JSON body for HTTP callers, gRPC status
// (trailers-only, set by Envoy) for gRPC callers.
import { sendLocalResponse } from "./host";
import { GRPC_NONE } from "./status";

export function isGrpcContentType(contentType: string | null): bool {
  return contentType !== null && contentType.startsWith("application/grpc");
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
