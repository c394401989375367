/** The statistics the verdicts use. */

export function median(xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

/** Least-squares slope of y on x. */
export function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
  }
  return sxx === 0 ? NaN : sxy / sxx;
}

/** Kendall's tau-b of y against x (x has no ties here: sample times). */
export function kendallTau(xs: number[], ys: number[]): number {
  let concordant = 0;
  let discordant = 0;
  let tiesY = 0;
  const n = xs.length;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const s = Math.sign(xs[j]! - xs[i]!) * Math.sign(ys[j]! - ys[i]!);
      if (s > 0) concordant++;
      else if (s < 0) discordant++;
      else tiesY++;
    }
  }
  const pairs = (n * (n - 1)) / 2;
  const denom = Math.sqrt(pairs * (pairs - tiesY));
  return denom === 0 ? 0 : (concordant - discordant) / denom;
}
