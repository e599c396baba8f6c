import assert from "node:assert/strict";
import { DataError, describe } from "../../src/data/errors.ts";

Deno.test("describe turns thrown values into one-line reasons", async () => {
  const missing = await Deno.readFile("/nonexistent/cram").catch((e) => e);
  assert.equal(describe(missing), "not found");
  assert.equal(describe(new Error("first line\nsecond line")), "first line");
  assert.equal(describe("plain"), "plain");
  const error = new DataError("corpus x: bad");
  assert.equal(error.name, "DataError");
  assert.equal(describe(error), "corpus x: bad");
});
