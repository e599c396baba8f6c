import assert from "node:assert/strict";
import { loadPretrained } from "../../src/eval/pretrained.ts";
import { paramLayout } from "../../src/model/params.ts";

const fixtures = new URL("../../fixtures/", import.meta.url).pathname;

Deno.test("loadPretrained reads a run folder's newest checkpoint and its tokenizer, or a checkpoint folder", async () => {
  const fromRun = await loadPretrained(`${fixtures}eval/run`);
  assert.equal(fromRun.step, 10);
  assert.equal(fromRun.tokenizer.size, fromRun.config.vocabSize);
  assert.equal(fromRun.params.length, paramLayout(fromRun.config).totalSize);
  assert.equal(fromRun.runDir, `${fixtures}eval/run`);
  const fromCheckpoint = await loadPretrained(`${fixtures}eval/run/checkpoints/step-000000010/`);
  assert.equal(fromCheckpoint.runDir, `${fixtures}eval/run`);
  assert.deepEqual(fromCheckpoint.params, fromRun.params);
  // --tokenizer names the vocabulary explicitly: the same one passes.
  assert.equal((await loadPretrained(`${fixtures}eval/run`, `${fixtures}data/vocab`)).step, 10);
});

Deno.test("loadPretrained: a vocabulary other than the checkpoint's, or no checkpoint, is a one-line error", async () => {
  await assert.rejects(
    () => loadPretrained(`${fixtures}train/run`, `${fixtures}data/vocab`),
    (e: Error) => {
      assert.match(
        e.message,
        /step-000000004 was pretrained with vocabulary 0123456789abcdef \(16 rows\), but the tokenizer in .*data\/vocab has [0-9a-f]{16} of 320 tokens$/,
      );
      return true;
    },
  );
  await assert.rejects(
    () => loadPretrained(`${fixtures}glue`),
    /--checkpoint .*glue: no checkpoint there \(expected .*glue\/checkpoints\/step-\*\/state.json\)/,
  );
  await assert.rejects(
    () => loadPretrained(`${fixtures}train/run`),
    /vocabulary .*train\/run\/vocab.txt: not found \(give --tokenizer <folder of its vocab.txt>\)$/,
  );
});
