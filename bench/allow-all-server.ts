// Baseline for the ext-authz benchmark: a bare @grpc/grpc-js server with the
// same Authorization service definition (same protos, same loader options)
// as infergate-authz, whose Check always answers OK with an empty
// ok_response. It does no identity parsing, path normalisation, policy
// evaluation, caching, metrics or logging, so the gap between it and
// infergate-authz is what those cost on top of gRPC itself.
//
//   node dist/bench/allow-all-server.js --listen 127.0.0.1:PORT
//
// Prints "listening 127.0.0.1:PORT" on stdout once bound; stops on SIGTERM/SIGINT.
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { authorizationService } from '../ext-authz/src/protos.js';

const ALLOW = Object.freeze({ status: { code: 0, message: '' }, ok_response: {} });

function main(): void {
  const { values } = parseArgs({ options: { listen: { type: 'string', default: '127.0.0.1:0' } }, strict: true });
  const listen = values.listen;
  const server = new grpc.Server({ 'grpc.max_concurrent_streams': 10_000 });
  server.addService(authorizationService(), {
    Check: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => callback(null, ALLOW),
  });
  server.bindAsync(listen, grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) {
      console.error(`allow-all-server: cannot listen on ${listen}: ${err.message}`);
      process.exit(1);
    }
    console.log(`listening ${listen.slice(0, listen.lastIndexOf(':'))}:${port}`);
  });
  const stop = (): void => {
    server.tryShutdown(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
