/** Epoch milliseconds with sub-ms resolution, comparable across processes. */
export const now = (): number => performance.timeOrigin + performance.now();

export const sleepUntil = (t: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, t - now())));
