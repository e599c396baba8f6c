/**
 * The float64 reference of the activations (kernels/activation.wgsl, src/model/layers/activation.ts): exact
 * GELU and the gated GELU (GLU), with the erf and erfc they are built on. Part of the float64 CPU reference
 * that every WGSL kernel is tested against: plain loops, written for clarity rather than speed. Arrays are
 * row-major `Float64Array`s unless stated.
 *
 * @module
 */
import { checkLength } from "./check.ts";

const SQRT2 = Math.SQRT2;
const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/**
 * The complementary error function to ~1e-15 relative. Below 1 it is 1 - erf from the all-positive series
 * erf(x) = 2/sqrt(pi) e^(-x^2) sum 2^n x^(2n+1) / (1*3*...*(2n+1)) (no cancellation); from 1 up it is
 * the even continued fraction erfc(x) = e^(-x^2)/sqrt(pi) * 2x / (2x^2+1 - 1*2/(2x^2+5 - 3*4/(2x^2+9 - ...))),
 * so erfc keeps its relative accuracy in the far tail where 1 - erf would cancel to nothing.
 */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < 1) return 1 - erfSeries(x);
  if (x > 27) return 0; // below the smallest double
  // 120 terms evaluated backward converge to < 1e-15 at x = 1 and faster above.
  const x2 = 2 * x * x;
  let denominator = x2 + 1 + 4 * 120;
  for (let n = 120; n >= 1; n--) denominator = x2 + 4 * n - 3 - (2 * n - 1) * (2 * n) / denominator;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) * 2 * x / denominator;
}

/** The error function to ~1e-15 (see {@linkcode erfc}). */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return -erf(-x);
  return x < 1 ? erfSeries(x) : 1 - erfc(x);
}

function erfSeries(x: number): number {
  const x2 = 2 * x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= x2 / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-x * x) * sum;
}

/** Exact GELU, x * Phi(x) = 0.5 x erfc(-x / sqrt 2) (the erfc form keeps the negative tail accurate). */
export function gelu(x: ArrayLike<number>): Float64Array {
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = geluScalar(x[i]);
  return y;
}

/** dx = dy * (Phi(x) + x phi(x)). */
export function geluBackward(dy: ArrayLike<number>, x: ArrayLike<number>): Float64Array {
  checkLength("geluBackward dy", dy, x.length);
  const dx = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) dx[i] = dy[i] * geluGradScalar(x[i]);
  return dx;
}

function geluScalar(x: number): number {
  return 0.5 * x * erfc(-x / SQRT2);
}

function geluGradScalar(x: number): number {
  return 0.5 * erfc(-x / SQRT2) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x);
}

/** Shapes of the gated GELU: h [rows, inner], value half then gate half. */
export interface GluOptions {
  /** Rows of h. */
  rows: number;
  /** Width of h: the value half and the gate half together. */
  inner: number;
}

/** out[r, j] = h[r, j] * gelu(h[r, inner/2 + j]) (PyTorch `val, gate = h.chunk(2, -1)`). */
export function gluForward(h: ArrayLike<number>, options: GluOptions): Float64Array {
  const { rows, inner } = options;
  checkGlu(h, options);
  const half = inner / 2;
  const out = new Float64Array(rows * half);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < half; j++) {
      out[r * half + j] = h[r * inner + j] * geluScalar(h[r * inner + half + j]);
    }
  }
  return out;
}

/** dh [rows, inner] of {@linkcode gluForward}. */
export function gluBackward(
  dout: ArrayLike<number>,
  h: ArrayLike<number>,
  options: GluOptions,
): Float64Array {
  const { rows, inner } = options;
  checkGlu(h, options);
  const half = inner / 2;
  checkLength("gluBackward dout", dout, rows * half);
  const dh = new Float64Array(rows * inner);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < half; j++) {
      const val = h[r * inner + j];
      const gate = h[r * inner + half + j];
      const d = dout[r * half + j];
      dh[r * inner + j] = d * geluScalar(gate);
      dh[r * inner + half + j] = d * val * geluGradScalar(gate);
    }
  }
  return dh;
}

function checkGlu(h: ArrayLike<number>, { rows, inner }: GluOptions): void {
  if (inner % 2 !== 0) throw new RangeError(`glu: inner must be even, got ${inner}`);
  checkLength("glu h", h, rows * inner);
}
