/** Log-bucketed histogram of milliseconds: bucket k holds (R^(k-1), R^k] µs; mergeable and small. */
const R = 1.02;
const LN_R = Math.log(R);

export class Hist {
  readonly counts = new Map<number, number>();
  n = 0;

  add(ms: number): void {
    const us = ms * 1000;
    const k = us <= 1 ? 0 : Math.ceil(Math.log(us) / LN_R);
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
    this.n++;
  }

  merge(other: Hist): this {
    for (const [k, c] of other.counts) this.counts.set(k, (this.counts.get(k) ?? 0) + c);
    this.n += other.n;
    return this;
  }

  /** Nearest-rank quantile (0..1) in ms; the value reported is the bucket's geometric middle. */
  quantile(q: number): number {
    if (this.n === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.n));
    let seen = 0;
    for (const k of [...this.counts.keys()].sort((a, b) => a - b)) {
      seen += this.counts.get(k)!;
      if (seen >= rank) return k === 0 ? 0.0005 : Math.pow(R, k - 0.5) / 1000;
    }
    return NaN;
  }

  toJSON(): Array<[number, number]> {
    return [...this.counts.entries()];
  }

  static from(pairs: Array<[number, number]>): Hist {
    const h = new Hist();
    for (const [k, c] of pairs) {
      h.counts.set(k, c);
      h.n += c;
    }
    return h;
  }
}
