/**
 * Test helpers shared by the reference tests: seeded random arrays and central finite differences in
 * float64.
 */
import { pcg } from "../../src/model/hash.ts";

/** Uniform values in [-scale, scale), reproducible from `seed`. */
export function randomArray(n: number, seed: number, scale = 1): Float64Array {
  const out = new Float64Array(n);
  const base = pcg(seed);
  for (let i = 0; i < n; i++) out[i] = (pcg((base ^ i) >>> 0) / 2 ** 32 * 2 - 1) * scale;
  return out;
}

/** sum(a * b), the scalar loss whose gradient with respect to `a` is `b`. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * The largest error of `analytic` against finite differences of `loss` with respect to `x` (perturbed in
 * place and restored) at `indices` (all by default), relative to the largest gradient magnitude among
 * them: entries far below the tensor's scale would otherwise measure only the differencing noise. The
 * numeric derivative is Richardson-extrapolated central differences, (4 D(h/2) - D(h)) / 3, whose
 * truncation error is O(h^4), so a step large enough to keep rounding noise small stays accurate.
 */
export function maxGradError(
  loss: () => number,
  x: Float64Array | Float32Array,
  analytic: ArrayLike<number>,
  options: { h?: number; indices?: number[] } = {},
): number {
  const { h = 1e-3, indices = [...Array(x.length).keys()] } = options;
  const central = (i: number, step: number) => {
    const saved = x[i];
    x[i] = saved + step;
    const plus = loss();
    x[i] = saved - step;
    const minus = loss();
    x[i] = saved;
    return (plus - minus) / (2 * step);
  };
  const numeric = indices.map((i) => (4 * central(i, h / 2) - central(i, h)) / 3);
  const scale = Math.max(1e-12, ...numeric.map(Math.abs), ...indices.map((i) => Math.abs(analytic[i])));
  let worst = 0;
  indices.forEach((i, k) => worst = Math.max(worst, Math.abs(analytic[i] - numeric[k]) / scale));
  return worst;
}
