import assert from "node:assert/strict";
import { matmul } from "../../src/reference/matmul.ts";

function transpose(x: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = x[r * cols + c];
  return t;
}

Deno.test("matmul multiplies a hand-computed 2x3 by 3x2, and each transposed storage agrees", () => {
  const a = [1, 2, 3, 4, 5, 6];
  const b = [7, 8, 9, 10, 11, 12];
  const c = matmul(a, b, { m: 2, k: 3, n: 2 });
  assert.deepEqual([...c], [58, 64, 139, 154]);
  assert.deepEqual([...matmul(transpose(a, 2, 3), b, { m: 2, k: 3, n: 2, transA: true })], [...c]);
  assert.deepEqual([...matmul(a, transpose(b, 3, 2), { m: 2, k: 3, n: 2, transB: true })], [...c]);
  assert.throws(() => matmul(a, b, { m: 2, k: 2, n: 2 }), /matmul A: expected 4 elements, got 6/);
});
