import assert from "node:assert/strict";
import { UsageError } from "../src/args.ts";
import {
  integerFrom,
  listOf,
  nonEmpty,
  nonNegativeInteger,
  numberWhere,
  oneOf,
  parsedBy,
  positiveInteger,
  positiveNumber,
  text,
  type ValueParser,
} from "../src/arg_values.ts";

/** The usage error's message for `text` given to `parse` as --x. */
function refusal<T>(parse: ValueParser<T>, text: string): string {
  try {
    parse(text, "--x");
  } catch (e) {
    assert.ok(e instanceof UsageError, String(e));
    return e.message;
  }
  throw new Error(`${JSON.stringify(text)} was accepted`);
}

Deno.test("number parsers accept their range and name what they expected", () => {
  assert.equal(positiveInteger("12", "--x"), 12);
  assert.equal(refusal(positiveInteger, "0"), '--x: expected a positive integer, got "0"');
  assert.equal(refusal(positiveInteger, "1.5"), '--x: expected a positive integer, got "1.5"');
  assert.equal(nonNegativeInteger("0", "--x"), 0);
  assert.equal(refusal(nonNegativeInteger, "-1"), '--x: expected a non-negative integer, got "-1"');
  assert.equal(positiveNumber("1e-3", "--x"), 1e-3);
  for (const bad of ["", " ", "abc", "NaN", "Infinity", "0"]) {
    assert.equal(refusal(positiveNumber, bad), `--x: expected a positive number, got ${JSON.stringify(bad)}`);
  }
  const byte = integerFrom(0, 255);
  assert.equal(byte("255", "--x"), 255);
  assert.equal(refusal(byte, "256"), '--x: expected an integer from 0 to 255, got "256"');
  assert.equal(refusal(integerFrom(8), "4"), '--x: expected an integer of at least 8, got "4"');
  const half = numberWhere("a number below 0.5", (n) => n < 0.5);
  assert.equal(half("0.25", "--x"), 0.25);
  assert.equal(refusal(half, "0.5"), '--x: expected a number below 0.5, got "0.5"');
});

Deno.test("choices, text, lists and other parsers", () => {
  assert.equal(oneOf(["f32", "f16"])("f16", "--x"), "f16");
  assert.equal(refusal(oneOf(["f32", "f16"]), "bf16"), '--x: expected f32 or f16, got "bf16"');
  assert.equal(refusal(oneOf(["a", "b", "c"]), "d"), '--x: expected one of a, b, c, got "d"');
  assert.equal(text("", "--x"), "");
  assert.equal(nonEmpty("a folder path")("runs/x", "--x"), "runs/x");
  assert.equal(refusal(nonEmpty("a folder path"), " "), '--x: expected a folder path, got " "');
  assert.deepEqual(listOf(positiveInteger)("1, 2,3", "--x"), [1, 2, 3]);
  assert.equal(refusal(listOf(positiveInteger), "1,,3"), '--x: expected a positive integer, got ""');
  const tile = parsedBy((text) => {
    if (text !== "ok") throw new Error(`tile "${text}": expected ok`);
    return 1;
  });
  assert.equal(tile("ok", "--x"), 1);
  assert.equal(refusal(tile, "no"), '--x: tile "no": expected ok');
});
