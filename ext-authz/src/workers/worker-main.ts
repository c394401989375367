// The entry point of each --workers process (node:cluster runs this file).
import { runWorker } from './worker.js';

runWorker();
