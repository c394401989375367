import { fork, type ChildProcess } from 'node:child_process';
import type { BucketReport, WorkerMessage, WorkerStart } from './load-protocol.js';

/** The bench's side of the load generator: the child process, and what it has reported so far. */
export interface LoadGeneratorProcess {
  readonly pid: number;
  /** Bucket reports as they arrive. */
  readonly reports: BucketReport[];
  /** One example per error kind. */
  readonly examples: Record<string, string>;
  /** Resolves when the generator is done; rejects if it exits with a non-zero code. */
  readonly finished: Promise<void>;
  /** Sends the start message and waits until the generator is ready to send (or has failed). */
  prepare(start: WorkerStart): Promise<void>;
  /** Tells the generator when to send its first request (epoch ms). */
  go(t0: number): void;
}

/** Forks `script --worker` (the entry, which runs the load generator) and waits until it listens for messages. */
export async function forkLoadGenerator(script: string): Promise<LoadGeneratorProcess> {
  const child: ChildProcess = fork(script, ['--worker'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let listening!: () => void;
  const isListening = new Promise<void>((resolve) => (listening = resolve));
  const reports: BucketReport[] = [];
  let workerDone!: () => void;
  let workerFailed!: (e: Error) => void;
  const finished = new Promise<void>((resolve, reject) => { workerDone = resolve; workerFailed = reject; });
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  const examples: Record<string, string> = {};
  child.on('message', (m: WorkerMessage) => {
    if (m.type === 'example') examples[m.kind] ??= m.example;
    else if (m.type === 'listening') listening();
    else if (m.type === 'ready') ready();
    else if (m.type === 'bucket') reports.push(m.bucket);
    else if (m.type === 'done') workerDone();
  });
  child.on('exit', (code) => { if (code !== 0) workerFailed(new Error(`load generator exited with code ${code}`)); });
  await Promise.race([isListening, finished]);
  return {
    pid: child.pid!, reports, examples, finished,
    prepare: async (start) => {
      child.send(start);
      await Promise.race([isReady, finished]);
    },
    go: (t0) => { child.send({ t0 }); },
  };
}
