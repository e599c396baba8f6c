/**
 * The float64 reference of inverted dropout with its counter-based mask (kernels/dropout.wgsl,
 * src/model/layers/dropout.ts), which the GPU kernels reproduce bit for bit. Part of the float64 CPU
 * reference that every WGSL kernel is tested against: plain loops, written for clarity rather than speed.
 * Arrays are row-major `Float64Array`s unless stated.
 *
 * @module
 */
import { hashIndex, pcg } from "../model/hash.ts";

/** Whether dropout keeps element `index`: u = hashIndex(pcg(seed), index), kept iff (u >>> 8) / 2^24 >= p. */
export function dropoutKeep(seed: number, index: number, p: number): boolean {
  const u = hashIndex(pcg(seed), index);
  return (u >>> 8) / 2 ** 24 >= p;
}

/** A dropout site: drop probability and the seed of its mask. */
export interface DropoutOptions {
  /** The probability of dropping an element. */
  p: number;
  /** The seed of the mask. */
  seed: number;
}

/** Inverted dropout with the counter-based mask of {@linkcode dropoutKeep}: y = x * keep / (1 - p). */
export function dropout(
  x: ArrayLike<number>,
  options: DropoutOptions,
): { y: Float64Array; keep: Float64Array } {
  const factor = dropoutFactor(options);
  const y = new Float64Array(x.length);
  const keep = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    if (factor(i) !== 0) {
      keep[i] = 1;
      y[i] = x[i] / (1 - options.p);
    }
  }
  return { y, keep };
}

/** Element i's dropout factor, keep / (1 - p); 1 everywhere without dropout. */
export function dropoutFactor(options?: DropoutOptions): (index: number) => number {
  if (!options) return () => 1;
  const { p, seed } = options;
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropout: p must be in [0, 1), got ${p}`);
  return (index) => (dropoutKeep(seed, index, p) ? 1 / (1 - p) : 0);
}
