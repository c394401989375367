/**
 * Raw request-targets to send to real backends, byte for byte. The first two
 * groups are every row of test/ext-authz/path.test.ts (what normalisePath
 * accepts and what it refuses); the rest are the families whose meaning
 * depends on the backend, aimed at the deny-rule shape: allow
 * everything under /v1/models/, deny DENY_GLOB.
 */

export const DENY_GLOB = '/v1/models/*/weights/**';

export interface Target {
  readonly target: string;
  /** The family it belongs to, for the evidence table. */
  readonly family: string;
}

const family = (name: string, targets: readonly string[]): Target[] => targets.map((target) => ({ target, family: name }));

const W = '/v1/models/llama/weights/shard-0';

export const TARGETS: readonly Target[] = [
  ...family('path.test: reads', [
    '/v1/models/bert:predict',
    '/v1/models/bert:predict?verbose=1',
    '/v1/models/bert:predict#frag',
    '/v1/models/bert:predict?q=%2F;x=..//',
    '/',
    '/v1/models/',
    '/%61dmin',
    '/v1/models/%7Euser',
    '/v1/models/b%C3%A9rt',
    '/v1/models/a%20b',
    '/v1/models/a+b',
    '/.well-known/x',
    '/v1/models/..foo/bar.',
    '/v1/models/.../x',
    '/v1/models/a%2Eb',
    '/v1/models/a%EF%BC%8Fb',
    '/V1/Models/X',
    '/v1/models/llama;v=2/infer',
    '/v1/models/llama%3Bv=2/infer',
  ]),
  ...family('path.test: refuses', [
    '',
    'admin',
    'http://evil/admin',
    '*',
    '/v1/models/a%2Fb:predict',
    '/v1/models/a%2fb',
    '/v1/models/..%2F..%2Fadmin',
    '/v1/models/a%5Cb',
    '/v1/models/%252e%252e/admin',
    '/v1/models/x%3F.json',
    '/v1/models/x%23frag',
    '/v1/models/x%00.json',
    '/v1/models/x%0d%0aX-Injected:1',
    '/v1/models/x%7F',
    '/v1/models/x%',
    '/v1/models/x%2',
    '/v1/models/x%zz',
    '/v1/models/%u002e%u002e/admin',
    '/v1/models/x%C3',
    '/v1/models/%C0%AE%C0%AE/admin',
    '/v1\\..\\admin',
    '/v1/models/x\ty',
    '/v1/models/x\u0000',
    '/v1/models/x y',
    '/v1/models/bért',
    `/${'a'.repeat(9000)}`,
    '/v1/models/llama/weights;/shard-0',
    '/v1/models/llama/..;/llama/weights/shard-0',
    '/v1/models/llama/.;/weights/shard-0',
    '/v1/models/llama;v=1/weights/shard-0',
    '/v1/models/llama/weights/shard-0;jsessionid=1',
    '/v1/models/llama/weights%3B/shard-0',
    '/v1/models/llama/weights%3b/shard-0',
    '/v1/models/../weights;',
    '/v1/models/llama/weights/../../public',
    '/v1/models/x/../weights/shard-0',
    '/v1/./models/x',
    '/v1/models/x/..',
    '/v1/models/x/.',
    '/..',
    '/v1/../../admin',
    '/v1/models/%2e%2e/%2e%2e/admin',
    '/v1/models/.%2E/admin',
    '/%2e/admin',
    '/%2e%2e/admin',
    '//admin',
    '//admin/dashboard',
    '/v1//models/x',
    '///v1',
    '/v1/models//',
    '/v1/%2541',
  ]),
  // Rows path.test.ts had before ";", dot and empty segments were refused.
  ...family('earlier path.test rows', ['///v1///models//x', '/v1/models/../admin', '/a/b/../../c', '/v1/models/a;b:predict']),
  ...family('plain', [W, '/v1/models/llama/weights', '/v1/models/llama/config.json', '/v1/models/llama', '/v1/models/llama/']),
  ...family('; params', [
    '/a;x/b',
    '/a/..;/b',
    '/a/.;/b',
    '/a;/b',
    '/a/b;jsessionid=1',
    '/v1/models/llama/weights;x=1/shard-0',
    '/v1/models/llama;/weights/shard-0',
    '/v1/models/llama/weights;',
  ]),
  ...family('%3B', ['/v1/models/llama/..%3B/llama/weights/shard-0', '/v1/models/llama%3B/weights/shard-0']),
  ...family('dot segments', [
    '/v1/models/llama/x/../weights/shard-0',
    '/v1/models/llama/./weights/shard-0',
    '/v1/models/other/../llama/weights/shard-0',
    '/v1/models/llama/weights/shard-0/..',
    '/v1/models/llama/weights/.',
    '/v1/models/llama/x/%2e%2e/weights/shard-0',
    '/v1/models/llama/x/%2E%2E/weights/shard-0',
    '/v1/models/llama/x/.%2e/weights/shard-0',
    '/v1/models/llama/x/%2e./weights/shard-0',
    '/v1/models/llama/%2e/weights/shard-0',
    '/v1/models/llama/%2E/weights/shard-0',
  ]),
  ...family('dot-like names', ['/v1/models/..llama/weights/shard-0', '/v1/models/llama../weights/shard-0', '/v1/models/.../weights/shard-0']),
  ...family('//', [`/${W}`, '/v1//models/llama/weights/shard-0', '/v1/models/llama//weights/shard-0', '/v1/models//weights/shard-0', '/v1/models/llama/weights//']),
  ...family('trailing /', ['/v1/models/llama/weights/', '/v1/models/llama/config.json/']),
  ...family('backslash', ['/v1/models/llama%5Cweights%5Cshard-0', '/v1/models/llama\\weights\\shard-0', '/v1/models/llama/x\\..\\weights/shard-0', '/v1/models/llama/x%5C..%5Cweights/shard-0']),
  ...family('%2F', ['/v1/models/llama%2Fweights%2Fshard-0', '/v1/models/llama/x%2F..%2Fweights/shard-0']),
  ...family('%25', ['/v1/models/llama/%2577eights/shard-0', '/v1/models/llama/x/%252e%252e/weights/shard-0']),
  ...family('%u', ['/v1/models/llama/x/%u002e%u002e/weights/shard-0', '/v1/models/llama%u002fweights/shard-0']),
  ...family('overlong UTF-8', ['/v1/models/llama/x/%C0%AE%C0%AE/weights/shard-0', '/v1/models/llama%C0%AFweights%C0%AFshard-0', '/v1/models/llama%E0%80%AFweights/shard-0']),
  ...family('fullwidth solidus', ['/v1/models/llama%EF%BC%8Fweights%EF%BC%8Fshard-0', '/v1/models/llama/x%EF%BC%8F..%EF%BC%8Fweights/shard-0']),
  ...family('+ and spaces', ['/v1/models/llama/weights+/shard-0', '/v1/models/llama/weights%20/shard-0', '/v1/models/llama/%20weights/shard-0']),
  ...family('%7e', ['/v1/models/%7ellama/config.json', '/v1/models/%7Ellama/weights/shard-0']),
  ...family('%00', ['/v1/models/llama/weights%00/shard-0', '/v1/models/llama/weights%00.json']),
  ...family('other escapes', ['/v1/models/a%22b', '/v1/models/llama/weight%73/shard-0', '/v1/models/llama/%77eights/shard-0', '/v1/models/llama/config?x=/../weights/shard-0', '/v1/models/llama/config#/../weights/shard-0']),
  ...family('case', ['/v1/models/llama/WEIGHTS/shard-0', '/v1/models/llama/Weights/shard-0', '/V1/models/llama/weights/shard-0', '/v1/models/llama/weight%53/shard-0']),
];
