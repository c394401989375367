/** Runs `fn` with a list to which it pushes how to stop what it starts; stops them all afterwards, last started first, whatever happens. */
export async function withStops<T>(fn: (stops: Array<() => Promise<unknown>>) => Promise<T>): Promise<T> {
  const stops: Array<() => Promise<unknown>> = [];
  try {
    return await fn(stops);
  } finally {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  }
}
