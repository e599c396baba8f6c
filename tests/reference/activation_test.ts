import assert from "node:assert/strict";
import { erf, erfc, gelu, geluBackward, gluBackward, gluForward } from "../../src/reference/activation.ts";
import { dot, maxGradError, randomArray } from "./gradcheck.ts";
import { assertClose } from "../_helpers.ts";

Deno.test("erf and erfc match known values to ~1e-15, including erfc's far tail", () => {
  const cases: [number, number][] = [
    [erf(0.5), 0.5204998778130465],
    [erf(1), 0.8427007929497149],
    [erf(-1), -0.8427007929497149],
    [erf(2), 0.9953222650189527],
    [erf(1e-3), 0.0011283787909692365],
    [erf(0.9), 0.7969082124228322],
    [erfc(1), 0.15729920705028513],
    [erfc(1.2), 0.08968602177036465],
    [erfc(3), 2.2090496998585438e-05],
    [erfc(5), 1.5374597944280351e-12],
    [erf(0), 0],
    [erf(10), 1],
  ];
  for (const [got, want] of cases) {
    assert.ok(Math.abs(got - want) <= 2e-15 * Math.abs(want), `${got} vs ${want}`);
  }
});

Deno.test("gelu matches known values, keeping relative accuracy in the negative tail", () => {
  const x = [1, -1, 2, 0.5, -1.6, -2.5, -3, -6, -10, 3.5, 0];
  const want = [
    0.8413447460685429,
    -0.15865525393145707,
    1.9544997361036416,
    0.34573123063700656,
    -0.08767886671929281,
    -0.015524163314440348,
    -0.004049694094890287,
    -5.919525870226207e-09,
    -7.619853024160593e-23,
    3.4991857982233756,
    0,
  ];
  const y = gelu(x);
  want.forEach((w, i) => assert.ok(Math.abs(y[i] - w) <= 4e-15 * Math.abs(w), `gelu(${x[i]}) = ${y[i]}`));
});

Deno.test("geluBackward matches finite differences", () => {
  const x = randomArray(40, 5, 4);
  const r = randomArray(40, 6);
  assert.ok(maxGradError(() => dot(gelu(x), r), x, geluBackward(r, x)) < 1e-8);
});

Deno.test("gluForward multiplies the value half by gelu of the gate half", () => {
  const h = [2, 3, 1, -1]; // one row: values [2, 3], gates [1, -1]
  const g = gelu([1, -1]);
  assertClose(gluForward(h, { rows: 1, inner: 4 }), [2 * g[0], 3 * g[1]], { atol: 1e-15, rtol: 1e-15 });
  assert.throws(() => gluForward([1, 2, 3], { rows: 1, inner: 3 }), /inner must be even/);
});

Deno.test("gluBackward matches finite differences", () => {
  const rows = 3, inner = 8;
  const h = randomArray(rows * inner, 7, 3);
  const r = randomArray(rows * inner / 2, 8);
  const dh = gluBackward(r, h, { rows, inner });
  assert.ok(maxGradError(() => dot(gluForward(h, { rows, inner }), r), h, dh) < 1e-8);
});
