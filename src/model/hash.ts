/**
 * The hash behind the model's seeded randomness: the parameter init and the dropout masks (whose WGSL
 * twin is in kernels/prelude.wgsl; the tests hold the two to each other bit for bit).
 *
 * @module
 */

/** The PCG-RXS-M-XS 32-bit hash, in u32 arithmetic identical to the WGSL dropout kernel's. */
export function pcg(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul((state >>> ((state >>> 28) + 4)) ^ state, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}
