/**
 * The model's fixed position table: the scaled-sinusoidal positions multiply it by a learned scale
 * (embeddings.position_scale). The GPU encoder uploads it, the ONNX export embeds it, and the float64
 * reference reads it from here; tests/model/positions_test.ts checks it against the formula.
 *
 * @module
 */

/** pe[p, 2i] = sin(p w_i), pe[p, 2i+1] = cos(p w_i), w_i = exp(-2i ln(10000) / hidden), as torch_peer. */
export function sinusoidTable(seq: number, hidden: number): Float64Array {
  const pe = new Float64Array(seq * hidden);
  for (let p = 0; p < seq; p++) {
    for (let c = 0; c < hidden; c += 2) {
      const angle = p * Math.exp(-c * Math.log(10000) / hidden);
      pe[p * hidden + c] = Math.sin(angle);
      if (c + 1 < hidden) pe[p * hidden + c + 1] = Math.cos(angle);
    }
  }
  return pe;
}
