import assert from "node:assert/strict";
import { encodeMetric, parseMetrics } from "../../src/train/metrics.ts";
import { fixtureRecords } from "./run_fixture.ts";

const run = new URL("../../fixtures/train/run", import.meta.url).pathname;

Deno.test("metrics records round-trip; a line cut off by a crash is dropped, a bad one names its line", async () => {
  const records = fixtureRecords();
  const text = records.map(encodeMetric).join("");
  assert.deepEqual(parseMetrics(text, "m.jsonl"), records);
  assert.deepEqual(parseMetrics(await Deno.readTextFile(`${run}/metrics.jsonl`), "m.jsonl"), records);
  assert.deepEqual(parseMetrics(text + '{"step": 6, "seco', "m.jsonl"), records);
  assert.throws(
    () => parseMetrics('{"step": 1\n' + text, "m.jsonl"),
    /^RunFileError: m.jsonl:1: not valid JSON$/,
  );
  // A diverged step's loss is written as null and read back as NaN; a null elsewhere is an error.
  const diverged = { ...records[1], loss: NaN };
  assert.equal(encodeMetric(diverged).includes('"loss":null'), true);
  assert.deepEqual(parseMetrics(encodeMetric(diverged), "m.jsonl"), [diverged]);
  assert.throws(
    () => parseMetrics(text.replace('"seconds":3', '"seconds":null'), "m.jsonl"),
    /^RunFileError: m.jsonl:2: seconds must be a finite number, got null$/,
  );
  assert.throws(
    () => parseMetrics(text.replace('"loss":2.8', '"loss":"x"'), "m.jsonl"),
    /^RunFileError: m.jsonl:2: loss must be a finite number or null, got "x"$/,
  );
  assert.equal(encodeMetric(records[0]).split("\n").length, 2, "one line each");
});
