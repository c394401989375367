/**
 * Node's http module answering {"path": ...} with the raw pathname of
 * req.url: the target up to "?" or "#", not decoded, nothing resolved. That
 * is what Express's router matches its route regexps against (parseurl's
 * pathname); it decodes only the captured parameters. Runs under Node's own
 * type stripping: `node test/backends/node/echo.ts [port]`.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const port = Number(process.argv[2] ?? 0);

const server = createServer((req, res) => {
  const url = req.url ?? '';
  const cut = url.search(/[?#]/);
  const path = cut === -1 ? url : url.slice(0, cut);
  process.stdout.write(JSON.stringify({ host: req.headers.host ?? '', path }) + '\n');
  const body = JSON.stringify({ path });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
});
