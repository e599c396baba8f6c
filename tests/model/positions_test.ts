import { sinusoidTable } from "../../src/model/positions.ts";
import { assertClose } from "../_helpers.ts";

Deno.test("sinusoidTable follows torch_peer's sin/cos interleaving", () => {
  const pe = sinusoidTable(3, 4);
  const w1 = Math.exp(-2 * Math.log(10000) / 4); // frequency of columns 2 and 3
  assertClose(pe, [
    0,
    1,
    0,
    1,
    Math.sin(1),
    Math.cos(1),
    Math.sin(w1),
    Math.cos(w1),
    Math.sin(2),
    Math.cos(2),
    Math.sin(2 * w1),
    Math.cos(2 * w1),
  ], { atol: 1e-15, rtol: 1e-15 });
});
