import { parseArgs } from 'node:util';

/** The soak's command-line options (see the method comment in bench/soak.ts). */
export interface Opts {
  minutes: number;
  sampleSeconds: number;
  bucketSeconds: number;
  warmupSeconds: number;
  rate: number;
  envoyRate: number;
  missShare: number;
  timeoutMs: number;
  decisionLog: 'file' | 'off';
  maxGrowthMiB: number;
  p99Factor: number;
  only: 'server' | 'envoy' | null;
  json: string | null;
  markdown: string | null;
}

export function parseOpts(argv: string[]): Opts {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      minutes: { type: 'string', default: '10' },
      'sample-seconds': { type: 'string', default: '30' },
      'bucket-seconds': { type: 'string', default: '60' },
      'warmup-seconds': { type: 'string', default: '120' },
      rate: { type: 'string', default: '1000' },
      'envoy-rate': { type: 'string', default: '500' },
      'miss-share': { type: 'string', default: '0.2' },
      'timeout-ms': { type: 'string', default: '5000' },
      'decision-log': { type: 'string', default: 'file' },
      'max-growth-mib': { type: 'string', default: '10' },
      'p99-factor': { type: 'string', default: '2' },
      only: { type: 'string' },
      json: { type: 'string' },
      markdown: { type: 'string' },
    },
  });
  const num = (flag: string, v: string, min: number, max = Infinity): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new Error(`--${flag}: expected a number from ${min}${max < Infinity ? ` to ${max}` : ''}, got "${v}"`);
    return n;
  };
  if (values.only !== undefined && values.only !== 'server' && values.only !== 'envoy') throw new Error(`--only: expected server or envoy, got "${values.only}"`);
  if (values['decision-log'] !== 'file' && values['decision-log'] !== 'off') throw new Error(`--decision-log: expected file or off, got "${values['decision-log']}"`);
  const o: Opts = {
    minutes: num('minutes', values.minutes, 0.05),
    sampleSeconds: num('sample-seconds', values['sample-seconds'], 0.5),
    bucketSeconds: num('bucket-seconds', values['bucket-seconds'], 1),
    warmupSeconds: num('warmup-seconds', values['warmup-seconds'], 0),
    rate: num('rate', values.rate, 1, 100_000),
    envoyRate: num('envoy-rate', values['envoy-rate'], 1, 100_000),
    missShare: num('miss-share', values['miss-share'], 0, 1),
    timeoutMs: num('timeout-ms', values['timeout-ms'], 100),
    decisionLog: values['decision-log'],
    maxGrowthMiB: num('max-growth-mib', values['max-growth-mib'], 0),
    p99Factor: num('p99-factor', values['p99-factor'], 1),
    only: (values.only as Opts['only']) ?? null,
    json: values.json ?? null,
    markdown: values.markdown ?? null,
  };
  if (o.warmupSeconds >= o.minutes * 60) throw new Error(`--warmup-seconds (${o.warmupSeconds}) must be shorter than the phase (--minutes ${o.minutes})`);
  return o;
}
