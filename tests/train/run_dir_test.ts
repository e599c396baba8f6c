import assert from "node:assert/strict";
import { decodeState } from "../../src/train/checkpoint_state.ts";
import { parseMetrics } from "../../src/train/metrics.ts";
import { RunFileError } from "../../src/train/run_dir.ts";

Deno.test("a run file that cannot be used is a RunFileError whose message starts with the file", () => {
  const cases: [() => unknown, string][] = [
    [() => decodeState(new TextEncoder().encode("[]"), "runs/x/state.json"), "runs/x/state.json: "],
    [() => parseMetrics("{\n{}\n", "runs/x/metrics.jsonl"), "runs/x/metrics.jsonl:1: "],
  ];
  for (const [read, start] of cases) {
    assert.throws(read, (e: Error) => e instanceof RunFileError && e.message.startsWith(start));
  }
});
