import assert from "node:assert/strict";
import { type Gpu, requestGpu } from "../../../src/gpu/device.ts";
import {
  elementBytes,
  readF32,
  readFloats,
  storageBuffer,
  type StorageType,
  uploadBuffer,
} from "../../../src/gpu/buffers.ts";
import { Kernels, submitDispatches } from "../../../src/gpu/kernels.ts";
import { geluBackward, geluForward, gluBackward, gluForward } from "../../../src/model/layers/activation.ts";
import * as ref from "../../../src/reference/activation.ts";
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
// An output stored as f16: WGSL rounds to either neighbouring f16, so within one f16 ulp, 2^-10 relative
// (round-to-nearest would halve that to 2^-11), and it may flush f16 subnormals (below 2^-14) to zero. An
// f16 input adds no error: the reference reads the same rounded value.
const F16_RTOL = 2 ** -10;
const F16_ATOL = 2 ** -14;

/** Inputs over a wide range: a sweep of [-10, 10], tiny values of both signs, and zero. */
function wideInputs(length: number): Float32Array<ArrayBuffer> {
  const x = new Float32Array(length);
  for (let i = 0; i < length; i++) x[i] = -10 + 20 * i / (length - 1);
  x.set([0, 1e-30, -1e-30, 1e-7, -1e-7, 3e-4, -3e-4, -0.7518], 0);
  return x;
}

/** Every assignment of f32 or f16 to `n` buffers. */
function typeMixes(n: number): StorageType[][] {
  return Array.from(
    { length: 2 ** n },
    (_, m) => Array.from({ length: n }, (_, i) => (m >> i) & 1 ? "f16" : "f32"),
  );
}

/** `data` as a buffer of `type` holds it: rounded to f16 for "f16". */
function stored(data: Float32Array<ArrayBuffer>, type: StorageType) {
  return type === "f16" ? Float16Array.from(data) : data;
}

/** A zeroed output buffer of `count` floats stored as `type`. */
function output(gpu: Gpu, label: string, count: number, type: StorageType): GPUBuffer {
  return storageBuffer(gpu, label, count * elementBytes(type), type);
}

/** Tolerances of an output computed within `rtol` and `atol` in f32, then stored as `type`. */
function storedTolerance(type: StorageType, rtol: number, atol = 0) {
  return type === "f16" ? { rtol: rtol + F16_RTOL, atol: atol + F16_ATOL } : { rtol, atol };
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

Deno.test("gelu forward and backward take f16 or f32 for each buffer, matching the reference on the f16-rounded inputs", async () => {
  const gpu = await requestGpu();
  const k = new Kernels(gpu);
  const length = 4 * 301;
  const x = wideInputs(length);
  // Tiny values that stay normal in f16 rather than wideInputs' ones, which are zero or subnormal there
  // (WGSL may flush those on load).
  x.set([2 ** -14, -(2 ** -14), 1e-4, -1e-4], 1);
  const dy = seededUniform(length, 1);
  for (const [xType, yType] of typeMixes(2)) {
    const xHost = stored(x, xType);
    const y = output(gpu, "y", length, yType);
    submitDispatches(gpu, await geluForward(k, { x: uploadBuffer(gpu, "x", xHost), y, length }));
    assertClose(await readFloats(gpu, y), ref.gelu(xHost), {
      ...storedTolerance(yType, RTOL_WIDE),
      what: `gelu y, x ${xType}, y ${yType}`,
    });
  }
  for (const [dyType, xType, dxType] of typeMixes(3)) {
    const dyHost = stored(dy, dyType);
    const xHost = stored(x, xType);
    const dx = output(gpu, "dx", length, dxType);
    submitDispatches(
      gpu,
      await geluBackward(k, {
        dy: uploadBuffer(gpu, "dy", dyHost),
        x: uploadBuffer(gpu, "x", xHost),
        dx,
        length,
      }),
    );
    assertClose(await readFloats(gpu, dx), ref.geluBackward(dyHost, xHost), {
      ...storedTolerance(dxType, RTOL_WIDE, GRAD_ATOL),
      what: `gelu dx, dy ${dyType}, x ${xType}, dx ${dxType}`,
    });
  }
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

Deno.test("gelu-glu forward and backward take f16 or f32 for each buffer, matching the reference on the f16-rounded inputs", async () => {
  const gpu = await requestGpu();
  const k = new Kernels(gpu);
  const rows = 7;
  const inner = 24;
  const h = seededUniform(rows * inner, 2, -10, 10);
  const dout = seededUniform(rows * inner / 2, 3);
  for (const [hType, outType] of typeMixes(2)) {
    const hHost = stored(h, hType);
    const out = output(gpu, "out", rows * inner / 2, outType);
    submitDispatches(gpu, await gluForward(k, { h: uploadBuffer(gpu, "h", hHost), out, rows, inner }));
    assertClose(await readFloats(gpu, out), ref.gluForward(hHost, { rows, inner }), {
      ...storedTolerance(outType, RTOL_WIDE),
      what: `glu out, h ${hType}, out ${outType}`,
    });
  }
  for (const [doutType, hType, dhType] of typeMixes(3)) {
    const doutHost = stored(dout, doutType);
    const hHost = stored(h, hType);
    const dh = output(gpu, "dh", rows * inner, dhType);
    submitDispatches(
      gpu,
      await gluBackward(k, {
        dout: uploadBuffer(gpu, "dout", doutHost),
        h: uploadBuffer(gpu, "h", hHost),
        dh,
        rows,
        inner,
      }),
    );
    // As in the f32 test: |value| <= 10 scales gelu's absolute error.
    assertClose(await readFloats(gpu, dh), ref.gluBackward(doutHost, hHost, { rows, inner }), {
      ...storedTolerance(dhType, RTOL_WIDE, 10 * GRAD_ATOL),
      what: `glu dh, dout ${doutType}, h ${hType}, dh ${dhType}`,
    });
  }
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
  // An f16 buffer needs 2 bytes an element: 12 of them are short of 16.
  const small16 = storageBuffer(gpu, "small16", 12 * 2, "f16");
  await assert.rejects(
    () => geluBackward(k, { dy: small, x: small, dx: small16, length: 16 }),
    /geluBackward dx: buffer small16 has 24 bytes, needs 32/,
  );
  await assert.rejects(
    () => gluForward(k, { h: small16, out: small, rows: 1, inner: 16 }),
    /gluForward h: buffer small16 has 24 bytes, needs 32/,
  );
});
