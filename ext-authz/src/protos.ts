import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { REPO_ROOT } from './repo-root.js';

/** proto/ at the repository root, whether running from source or from dist/. */
export const PROTO_DIR = `${REPO_ROOT}proto/`;

export const LOADER_OPTIONS: protoLoader.Options = {
  // Field names stay as on the wire (snake_case), matching Envoy's docs and our TypeScript types.
  keepCase: true,
  longs: String,
  enums: Number,
  defaults: false,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

let cached: grpc.GrpcObject | null = null;

/** Loads the project's own ext_authz protos once per process. */
export function authProto(): grpc.GrpcObject {
  cached ??= grpc.loadPackageDefinition(
    protoLoader.loadSync('envoy/service/auth/v3/external_auth.proto', LOADER_OPTIONS),
  );
  return cached;
}

export function authorizationService(): grpc.ServiceDefinition {
  const pkg = authProto() as unknown as {
    envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } };
  };
  return pkg.envoy.service.auth.v3.Authorization.service;
}

export function authorizationClient(): grpc.ServiceClientConstructor {
  const pkg = authProto() as unknown as {
    envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } };
  };
  return pkg.envoy.service.auth.v3.Authorization;
}

/** The Check response encoder proto-loader built (protobufjs). */
export function encodeCheckResponse(): (value: unknown) => Buffer {
  return authorizationService().Check!.responseSerialize;
}

/**
 * The Authorization service as the server registers it: a Check answer that
 * is already bytes (encoded-allows.ts) goes out as it is; anything else is
 * encoded as usual.
 */
export function authorizationServiceTakingBytes(): grpc.ServiceDefinition {
  const service = authorizationService();
  const check = service.Check!;
  const encode = check.responseSerialize;
  return { ...service, Check: { ...check, responseSerialize: (value: unknown) => (Buffer.isBuffer(value) ? value : encode(value)) } };
}
