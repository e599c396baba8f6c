import assert from "node:assert/strict";
import { discoverTasks } from "../../src/eval/glue.ts";
import { previousResults, selectTasks } from "../../src/eval/run.ts";
import type { EvalSource } from "../../src/eval/report.ts";
import { FINETUNE_DEFAULTS } from "../../src/eval/finetune.ts";

const glue = new URL("../../fixtures/glue", import.meta.url).pathname;

Deno.test("selectTasks takes every task found, or those named; a named task that cannot run is an error", () => {
  const discovered = discoverTasks(glue);
  const all = selectTasks(discovered, glue);
  assert.deepEqual(all.tasks.map((f) => f.task.name), discovered.found.map((f) => f.task.name));
  assert.deepEqual(all.skipped, discovered.skipped);
  const [first] = discovered.found;
  assert.deepEqual(selectTasks(discovered, glue, [first.task.name]), { tasks: [first], skipped: [] });

  const missing = { found: discovered.found, skipped: [{ name: "RTE", reason: "no train.tsv" }] };
  assert.deepEqual(selectTasks(missing, glue).skipped, missing.skipped, "skipped when not asked for");
  assert.throws(
    () => selectTasks(missing, glue, [first.task.name, "RTE"]),
    /^GlueDataError: --tasks RTE: cannot be evaluated: RTE \(no train\.tsv\)$/,
  );
  assert.throws(
    () => selectTasks({ found: [], skipped: [] }, "g"),
    /^GlueDataError: g: no GLUE task to evaluate$/,
  );
});

Deno.test("previousResults: no summary yet keeps nothing; another run's summary is refused", async () => {
  const source: EvalSource = { checkpoint: "runs/x", finetune: FINETUNE_DEFAULTS, onnx: false };
  assert.deepEqual(await previousResults(`${glue}/absent.json`, source, 1), []);
  await assert.rejects(previousResults(`${glue}/CoLA/train.tsv`, source, 1), /CoLA\/train\.tsv: not JSON/);
});
