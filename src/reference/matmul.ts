/**
 * The float64 reference of the matrix product C = op(A) op(B) (kernels/matmul.wgsl,
 * src/model/layers/matmul.ts). Part of the float64 CPU reference that every WGSL kernel is tested against:
 * plain loops, written for clarity rather than speed. Arrays are row-major `Float64Array`s unless stated.
 *
 * @module
 */
import { checkLength } from "./check.ts";

/** Shapes of {@linkcode matmul}: C[m,n] = op(A) op(B). */
export interface MatmulOptions {
  /** Rows of C. */
  m: number;
  /** The depth of the product: columns of op(A), rows of op(B). */
  k: number;
  /** Columns of C. */
  n: number;
  /** A is stored [k,m] and used transposed. */
  transA?: boolean;
  /** B is stored [n,k] and used transposed. */
  transB?: boolean;
}

/** C[m,n] = op(A)[m,k] op(B)[k,n]. */
export function matmul(a: ArrayLike<number>, b: ArrayLike<number>, options: MatmulOptions): Float64Array {
  const { m, k, n, transA = false, transB = false } = options;
  checkLength("matmul A", a, m * k);
  checkLength("matmul B", b, k * n);
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const av = transA ? a[p * m + i] : a[i * k + p];
      if (av === 0) continue;
      for (let j = 0; j < n; j++) {
        c[i * n + j] += av * (transB ? b[j * k + p] : b[p * n + j]);
      }
    }
  }
  return c;
}
