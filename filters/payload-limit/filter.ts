// payload-limit HTTP callbacks: reject on content-length before any body is
// read, otherwise count body chunks as they pass (never buffering them) and
// reject as soon as the running total passes the limit.
import { HttpContext } from "../shared/context";
import { Name, HostBytes, getHeaderBytes, closeStream, logWarn } from "../shared/host";
import { FilterMetrics } from "../shared/metrics";
import { reject, isGrpcRequest } from "../shared/reply";
import { requestHeader } from "../shared/request-headers";
import { Action, MapType, Status, StreamType, GRPC_RESOURCE_EXHAUSTED } from "../shared/status";
import { PayloadConfig } from "./config";
import { limitFor, parseContentLength, overLimit, tooLargeBody } from "./logic";

const PATH = new Name(":path");
const CONTENT_LENGTH = new Name("content-length");
// Header values as the host handed them over, read in place (request ones
// borrowed from the request-header snapshot). One per VM.
const value = new HostBytes();
// A content-length that is not there (parseContentLength's -1 is one that does not parse).
const ABSENT: i64 = -2;

export class PayloadLimitStream extends HttpContext {
  private limit: i64 = 0;
  private received: i64 = 0;
  private sent: i64 = 0;
  private grpc: bool = false;
  private rejected: bool = false;

  constructor(id: u32, readonly config: PayloadConfig, readonly metrics: FilterMetrics) { super(id); }

  /** Makes a finished stream ready for a new one (the guard filter pools its streams). */
  reuse(id: u32): void {
    this.id = id;
    this.limit = 0;
    this.received = 0;
    this.sent = 0;
    this.grpc = false;
    this.rejected = false;
  }

  onRequestHeaders(headerCount: u32, endOfStream: bool): u32 {
    // Host calls dominate a filter's cost: read :path only when routes need it.
    if (this.config.routes.length > 0) {
      const path = requestHeader(PATH, value) ? String.UTF8.decodeUnsafe(value.ptr, <usize>value.len) : "";
      this.limit = limitFor(this.config.routes, this.config.defaultMaxBytes, path);
    } else {
      this.limit = this.config.defaultMaxBytes;
    }
    // Envoy validates content-length before filters run; an unparsable one
    // (-1) here is still covered by the chunk count below.
    const declared = requestHeader(CONTENT_LENGTH, value) ? parseContentLength(value.ptr, value.len) : ABSENT;
    value.release();
    // Envoy forgets the request headers once this callback continues, so a
    // reply sent later (from a body chunk or the response) must know now
    // whether the caller speaks gRPC. With a content-length under the limit
    // and no response cap there is no later reply (Envoy's codecs reject a body
    // longer than its content-length; the chunk count stays as a backstop).
    if (declared == ABSENT || this.config.maxResponseBytes > 0) this.grpc = this.isGrpc();
    if (declared >= 0 && overLimit(declared, this.limit)) {
      if (this.config.maxResponseBytes == 0) this.grpc = this.isGrpc();
      return this.tooLarge();
    }
    return Action.CONTINUE;
  }

  onRequestBody(bodySize: u32, endOfStream: bool): u32 {
    if (this.rejected) return Action.CONTINUE;
    // We always continue, so Envoy reports each chunk's own size, not a buffer.
    this.received += <i64>bodySize;
    if (overLimit(this.received, this.limit)) return this.tooLarge();
    return Action.CONTINUE;
  }

  onResponseHeaders(headerCount: u32, endOfStream: bool): u32 {
    const cap = this.config.maxResponseBytes;
    if (cap == 0) return Action.CONTINUE;
    // One response header, read alone (the response cap is only in the full build).
    const n = getHeaderBytes(MapType.HTTP_RESPONSE_HEADERS, CONTENT_LENGTH, value) ? parseContentLength(value.ptr, value.len) : ABSENT;
    value.release();
    if (n >= 0 && overLimit(n, cap)) {
      this.rejected = true;
      this.metrics.rejected.inc();
      const st = reject(502, "infergate_response_too_large", "{\"code\":\"response_too_large\",\"limit\":" + cap.toString() + "}",
        [], this.grpc, GRPC_RESOURCE_EXHAUSTED);
      if (st != Status.OK) this.metrics.errors.inc();
      return Action.PAUSE;
    }
    return Action.CONTINUE;
  }

  onResponseBody(bodySize: u32, endOfStream: bool): u32 {
    const cap = this.config.maxResponseBytes;
    if (cap == 0) return Action.CONTINUE;
    this.sent += <i64>bodySize;
    if (overLimit(this.sent, cap)) {
      // Headers are already on their way downstream, so a clean reply is no
      // longer possible: reset the stream rather than let the bytes out.
      this.rejected = true;
      this.metrics.rejected.inc();
      logWarn("payload-limit: response passed " + cap.toString() + " bytes; resetting stream");
      closeStream(StreamType.HTTP_RESPONSE);
      return Action.PAUSE;
    }
    return Action.CONTINUE;
  }

  // Counted at the end rather than at end-of-stream: a route may answer (or the
  // client reset) before the last body chunk, and that request was not rejected.
  onDone(): void {
    if (!this.rejected) this.metrics.allowed.inc();
  }

  /** Only valid inside onRequestHeaders. */
  private isGrpc(): bool {
    return isGrpcRequest();
  }

  private tooLarge(): u32 {
    this.rejected = true;
    this.metrics.rejected.inc();
    const st = reject(413, "infergate_payload_too_large", tooLargeBody(this.limit), [], this.grpc, GRPC_RESOURCE_EXHAUSTED);
    if (st != Status.OK) this.metrics.errors.inc();
    return Action.PAUSE;
  }
}
