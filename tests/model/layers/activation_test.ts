import assert from "node:assert/strict";
import { requestGpu } from "../../../src/gpu/device.ts";
import { readF32, storageBuffer, uploadBuffer } from "../../../src/gpu/buffers.ts";
import { Kernels, submitDispatches } from "../../../src/gpu/kernels.ts";
import { geluBackward, geluForward, gluBackward, gluForward } from "../../../src/model/layers/activation.ts";
import * as ref from "../../../src/reference/ops.ts";
import { assertClose, seededUniform } from "../../_helpers.ts";

// Tolerances. The kernel's erfc fit has relative error < 1.1e-7, but WGSL only promises exp to within
// 3 + 2|a| ulp for an argument a, and the arguments here are about -x^2/2; with the rounding of a itself
// the relative error of Phi(x) and phi(x) is up to about (4 + x^2) * 2^-23: 1e-6 for |x| <= 2, 1.2e-5 at
// |x| = 10 (llvmpipe measures 6.8e-7 and 1.1e-5 on a dense sweep). Hence rtol 2e-6 within |x| <= 2 and 2e-5
// over the whole range. gelu'(x) = Phi(x) + x phi(x) cancels near its zero at x = -0.75, where both terms
// are about 0.23: there the error is absolute, a few ulps of terms <= 1, so atol 2e-7 (|dy| <= 1).
const RTOL_NEAR = 2e-6;
const RTOL_WIDE = 2e-5;
const GRAD_ATOL = 2e-7;

/** Inputs over a wide range: a sweep of [-10, 10], tiny values of both signs, and zero. */
function wideInputs(length: number): Float32Array<ArrayBuffer> {
  const x = new Float32Array(length);
  for (let i = 0; i < length; i++) x[i] = -10 + 20 * i / (length - 1);
  x.set([0, 1e-30, -1e-30, 1e-7, -1e-7, 3e-4, -3e-4, -0.7518], 0);
  return x;
}

Deno.test("gelu forward and backward match the float64 reference over |x| <= 10 and tiny x", async () => {
  const gpu = await requestGpu();
  const k = new Kernels(gpu);
  const length = 4 * 301; // 301 vec4s: not a multiple of the 256-wide workgroup
  const x = wideInputs(length);
  const dyHost = seededUniform(length, 1);
  const xBuf = uploadBuffer(gpu, "x", x);
  const dy = uploadBuffer(gpu, "dy", dyHost);
  const y = storageBuffer(gpu, "y", length * 4);
  const dx = storageBuffer(gpu, "dx", length * 4);
  submitDispatches(gpu, [
    ...await geluForward(k, { x: xBuf, y, length }),
    ...await geluBackward(k, { dy, x: xBuf, dx, length }),
  ]);
  const yGpu = await readF32(gpu, y);
  const dxGpu = await readF32(gpu, dx);
  const yRef = ref.gelu(x);
  const dxRef = ref.geluBackward(dyHost, x);
  assertClose(yGpu, yRef, { rtol: RTOL_WIDE, what: "gelu y" });
  assertClose(dxGpu, dxRef, { rtol: RTOL_WIDE, atol: GRAD_ATOL, what: "gelu dx" });
  const near = (_: number, i: number) => Math.abs(x[i]) <= 2;
  assertClose(yGpu.filter(near), yRef.filter(near), { rtol: RTOL_NEAR, what: "gelu y, |x| <= 2" });
  assertClose(dxGpu.filter(near), dxRef.filter(near), {
    rtol: RTOL_NEAR,
    atol: GRAD_ATOL,
    what: "gelu dx, |x| <= 2",
  });
});

Deno.test("gelu-glu forward and backward match the float64 reference", async () => {
  const gpu = await requestGpu();
  const k = new Kernels(gpu);
  const rows = 7;
  const inner = 24; // half rows of 12: three vec4s each
  const h = seededUniform(rows * inner, 2, -10, 10);
  h.set([1e-30, -1e-30, 1e-7, 0], inner / 2); // tiny gates in row 0
  const doutHost = seededUniform(rows * inner / 2, 3);
  const hBuf = uploadBuffer(gpu, "h", h);
  const dout = uploadBuffer(gpu, "dout", doutHost);
  const out = storageBuffer(gpu, "out", rows * inner / 2 * 4);
  const dh = storageBuffer(gpu, "dh", rows * inner * 4);
  submitDispatches(gpu, [
    ...await gluForward(k, { h: hBuf, out, rows, inner }),
    ...await gluBackward(k, { dout, h: hBuf, dh, rows, inner }),
  ]);
  assertClose(await readF32(gpu, out), ref.gluForward(h, { rows, inner }), {
    rtol: RTOL_WIDE,
    what: "glu out",
  });
  // dgate = dout value gelu'(gate): |value| <= 10 scales gelu's absolute error.
  assertClose(await readF32(gpu, dh), ref.gluBackward(doutHost, h, { rows, inner }), {
    rtol: RTOL_WIDE,
    atol: 10 * GRAD_ATOL,
    what: "glu dh",
  });
});

Deno.test("activation wrappers reject widths the vec4 kernels cannot take and short buffers", async () => {
  const gpu = await requestGpu();
  const k = new Kernels(gpu);
  const small = storageBuffer(gpu, "small", 16 * 4);
  await assert.rejects(
    () => geluForward(k, { x: small, y: small, length: 10 }),
    /geluForward: length = 10, expected a positive multiple of 4/,
  );
  await assert.rejects(
    () => geluForward(k, { x: small, y: small, length: 32 }),
    /geluForward x: buffer small has 64 bytes, needs 128/,
  );
  await assert.rejects(
    () => gluForward(k, { h: small, out: small, rows: 1, inner: 12 }),
    /gluForward: inner = 12, expected a positive multiple of 8/,
  );
});
