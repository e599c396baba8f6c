/**
 * The float64 reference of LayerNorm's forward and backward (kernels/layernorm.wgsl,
 * src/model/layers/layernorm.ts). Part of the float64 CPU reference that every WGSL kernel is tested against:
 * plain loops, written for clarity rather than speed. Arrays are row-major `Float64Array`s unless stated.
 *
 * @module
 */
import { checkLength } from "./check.ts";

/** Shapes of a row-wise LayerNorm. */
export interface LayerNormOptions {
  /** Rows normalized, each on its own. */
  rows: number;
  /** Elements per row. */
  cols: number;
}

/** LayerNorm over the last dimension with PyTorch's biased variance; mean and rstd are kept for backward. */
export function layerNormForward(
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  bias: ArrayLike<number>,
  options: LayerNormOptions & { eps: number },
): { y: Float64Array; mean: Float64Array; rstd: Float64Array } {
  const { rows, cols, eps } = options;
  checkLength("layerNorm x", x, rows * cols);
  checkLength("layerNorm weight", weight, cols);
  checkLength("layerNorm bias", bias, cols);
  const y = new Float64Array(rows * cols);
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += x[base + c];
    const mu = sum / cols;
    let sq = 0;
    for (let c = 0; c < cols; c++) sq += (x[base + c] - mu) ** 2;
    const rs = 1 / Math.sqrt(sq / cols + eps);
    for (let c = 0; c < cols; c++) y[base + c] = (x[base + c] - mu) * rs * weight[c] + bias[c];
    mean[r] = mu;
    rstd[r] = rs;
  }
  return { y, mean, rstd };
}

/** Gradients of {@linkcode layerNormForward} from the saved mean and rstd. */
export function layerNormBackward(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  weight: ArrayLike<number>,
  mean: ArrayLike<number>,
  rstd: ArrayLike<number>,
  options: LayerNormOptions,
): { dx: Float64Array; dweight: Float64Array; dbias: Float64Array } {
  const { rows, cols } = options;
  checkLength("layerNormBackward dy", dy, rows * cols);
  checkLength("layerNormBackward x", x, rows * cols);
  const dx = new Float64Array(rows * cols);
  const dweight = new Float64Array(cols);
  const dbias = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    const mu = mean[r];
    const rs = rstd[r];
    let meanDxhat = 0;
    let meanDxhatXhat = 0;
    for (let c = 0; c < cols; c++) {
      const xhat = (x[base + c] - mu) * rs;
      const dxhat = dy[base + c] * weight[c];
      meanDxhat += dxhat;
      meanDxhatXhat += dxhat * xhat;
      dweight[c] += dy[base + c] * xhat;
      dbias[c] += dy[base + c];
    }
    meanDxhat /= cols;
    meanDxhatXhat /= cols;
    for (let c = 0; c < cols; c++) {
      const xhat = (x[base + c] - mu) * rs;
      dx[base + c] = rs * (dy[base + c] * weight[c] - meanDxhat - xhat * meanDxhatXhat);
    }
  }
  return { dx, dweight, dbias };
}
