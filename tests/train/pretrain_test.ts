import assert from "node:assert/strict";
import { compact, tiny } from "../../src/model/config.ts";
import { checkpointName } from "../../src/train/checkpoints.ts";
import { parseOptions } from "../../src/train/options.ts";
import {
  fitToDataset,
  formatBytes,
  pretrain,
  type PretrainEvents,
  shapedPreset,
  trainedVocabSize,
} from "../../src/train/pretrain.ts";
import { MIN_TRAINED_VOCAB } from "../../src/data/trainer.ts";
import { Progress } from "../../src/train/progress.ts";
import { inTempDir, writesAllowed } from "../_helpers.ts";

Deno.test("fitToDataset takes the dataset's vocabulary (padded to a multiple of 8) and sequence length, up to the model's longest", () => {
  assert.deepEqual(fitToDataset(tiny, "tiny", { seqLen: 8, vocabSize: 300 }, "d"), {
    ...tiny,
    vocabSize: 304,
    maxSeqLen: 8,
  });
  assert.equal(fitToDataset(compact, "compact", { seqLen: 128, vocabSize: 1001 }, "d").vocabSize, 1008);
  assert.equal(fitToDataset(compact, "compact", { seqLen: 128, vocabSize: 32768 }, "d").vocabSize, 32768);
  assert.throws(
    () => fitToDataset(tiny, "tiny", { seqLen: tiny.maxSeqLen + 1, vocabSize: 300 }, "runs/x/data"),
    new RegExp(
      `^UsageError: runs/x/data: its sequences have ${tiny.maxSeqLen + 1} tokens, more than the tiny ` +
        `model's ${tiny.maxSeqLen} \\(--preset, or --seq-len when tokenizing\\)$`,
    ),
  );
  assert.throws(
    () => shapedPreset("huge", {}),
    /--preset huge: expected one of/,
  );
});

Deno.test("the shape options change the preset's model, and a width the heads do not divide is refused", () => {
  assert.deepEqual(shapedPreset("compact", {}), compact);
  assert.deepEqual(shapedPreset("compact", { layers: 8, hidden: 768, heads: undefined }), {
    ...compact,
    layers: 8,
    hidden: 768,
  });
  assert.deepEqual(shapedPreset("tiny", { layers: 3, intermediate: 96 }), {
    ...tiny,
    layers: 3,
    intermediate: 96,
  });
  assert.throws(
    () => shapedPreset("crammed", { hidden: 520 }),
    /^UsageError: --hidden 520 must be a multiple of --heads 12 \(the crammed preset's heads\)$/,
  );
  assert.throws(
    () => shapedPreset("compact", { heads: 3 }),
    /^UsageError: --hidden 512 must be a multiple of --heads 3$/,
  );
});

Deno.test("trainedVocabSize: --vocab-size, else the preset's, raised to the smallest a trained vocabulary can be", () => {
  assert.equal(trainedVocabSize(undefined, compact), 32768);
  assert.equal(trainedVocabSize(undefined, tiny), MIN_TRAINED_VOCAB);
  assert.ok(tiny.vocabSize < MIN_TRAINED_VOCAB);
  assert.equal(trainedVocabSize(4096, compact), 4096);
});

Deno.test("formatBytes shows MiB below a GiB and GiB from there", () => {
  assert.equal(formatBytes(3 * 2 ** 20 + 2 ** 19), "3.5 MiB");
  assert.equal(formatBytes(2 ** 30), "1.00 GiB");
});

const corpus = new URL("../../fixtures/data/corpus/prose.txt", import.meta.url).pathname;

/**
 * Pretrains the tiny preset on the prose fixture into `<dir>/run` with `args` added, on the built-in backend;
 * `listen` gives the stop listener (default: never stopped) and sees the messages written so far.
 */
async function pretrainTiny(
  dir: string,
  args: string[],
  listen: (messages: string[]) => ReturnType<PretrainEvents["listenForStop"]> = () => ({
    requested: () => false,
    close: () => {},
  }),
) {
  const out = `${dir}/run`;
  const messages: string[] = [];
  const fixed = ["--corpus", corpus, "--preset", "tiny", "--out", out, "--gpu", "builtin"];
  const parsed = parseOptions([...fixed, ...args]);
  const result = await pretrain(parsed, {
    progress: new Progress({ terminal: false, write: (text) => messages.push(text) }),
    listenForStop: () => listen(messages),
  });
  return { out, result, messages };
}

Deno.test({
  name: "writes: pretrain listens for a stop only while training, and a stop ends the run with a checkpoint",
  ignore: !writesAllowed("pretrain_test"),
  fn: () =>
    inTempDir(async (dir) => {
      const events: string[] = [];
      const { out, result } = await pretrainTiny(
        dir,
        ["--vocab-size", "256", "--budget", "50steps", "--batch", "4", "--micro-batch", "2"],
        (messages) => {
          // The data is ready and the trainer planned by the time the run listens.
          events.push(`listen after ${messages.filter((m) => /micro-batches of 2/.test(m)).length} plan`);
          let asked = 0;
          return { requested: () => ++asked > 1, close: () => events.push("close") };
        },
      );
      assert.deepEqual(events, ["listen after 1 plan", "close"]);
      assert.ok(result.trained);
      assert.equal(result.summary.stopped, "interrupted");
      const { steps } = result.summary;
      assert.ok(steps >= 1 && steps < 50, `stopped after ${steps} steps`);
      assert.equal(result.options.microBatch, 2);
      // The preset's mask rate is resolved into the options a checkpoint keeps, so a resumed run masks alike.
      assert.equal(result.options.maskRate, 0.15);
      assert.deepEqual([...Deno.readDirSync(`${out}/checkpoints`)].map((e) => e.name), [
        checkpointName(steps),
      ]);
      const summary = JSON.parse(Deno.readTextFileSync(`${out}/summary.json`));
      assert.equal(summary.steps, steps);
      // The recipe glue-curve tells runs apart by: the mask rate and the tokens of the dataset.
      const manifest = JSON.parse(Deno.readTextFileSync(`${out}/data/manifest.json`));
      assert.equal(summary.maskRate, 0.15);
      assert.equal(summary.dataTokens, manifest.sequences * manifest.seqLen);
    }),
});

Deno.test({
  name:
    "writes: pretrain --preset tiny on a raw corpus trains the smallest vocabulary and pads the model's to a multiple of 8",
  ignore: !writesAllowed("pretrain_test"),
  fn: () =>
    inTempDir(async (dir) => {
      const budget = ["--budget", "2steps", "--batch", "2", "--micro-batch", "2"];
      const { out, result } = await pretrainTiny(dir, budget);
      assert.ok(result.trained);
      assert.equal(result.summary.steps, 2);
      assert.ok(Number.isFinite(result.summary.finalLoss));
      const tokens = Deno.readTextFileSync(`${out}/vocab.txt`).trimEnd().split("\n").length;
      assert.equal(tokens, MIN_TRAINED_VOCAB);
      assert.equal(result.summary.config.vocabSize, 200);
    }),
});

Deno.test({
  name:
    "writes: with a budget of steps, the epoch line gives the passes the run then makes, its batch ramp included",
  ignore: !writesAllowed("pretrain_test"),
  fn: () =>
    inTempDir(async (dir) => {
      const { result, messages } = await pretrainTiny(dir, [
        ...["--vocab-size", "256", "--budget", "30steps"],
        ...["--batch", "8", "--micro-batch", "2", "--ramp", "0.5"],
      ]);
      assert.ok(result.trained);
      const { tokensSeen, dataTokens } = result.summary;
      const epochLines = messages.filter((m) => m.includes("epoch 2 begins"));
      assert.equal(epochLines.length, 1, messages.join("\n"));
      const passes = Number(epochLines[0].match(/the budget makes ([\d.]+) passes over it/)![1]);
      assert.equal(passes, Number((tokensSeen / dataTokens).toFixed(passes < 10 ? 1 : 0)));
    }),
});
