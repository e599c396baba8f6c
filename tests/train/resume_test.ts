import assert from "node:assert/strict";
import { requestGpu } from "../../src/gpu/device.ts";
import { Kernels } from "../../src/gpu/kernels.ts";
import { readLossScale } from "../../src/model/loss_scale.ts";
import type { LoadedCheckpoint } from "../../src/train/checkpoints.ts";
import { readWeights } from "../../src/train/loop.ts";
import { maxLabels } from "../../src/train/masking.ts";
import { parseOptions } from "../../src/train/options.ts";
import {
  budgetUsedMessage,
  checkResumedDataset,
  restoreTrainer,
  runOptions,
} from "../../src/train/resume.ts";
import { planTrainer } from "../../src/train/step.ts";
import { fixtureState, fixtureWeights, microConfig } from "./run_fixture.ts";

/** The fixture run's checkpoint of step 4, as read from runs/fixture. */
const loaded: LoadedCheckpoint = {
  state: fixtureState(4),
  weights: fixtureWeights(4),
  dir: "runs/fixture/checkpoints/step-000000004",
  runDir: "runs/fixture",
};

Deno.test("a resumed run trains with its saved options, in its own folder unless --out names another", () => {
  const fresh = parseOptions(["--preset", "small", "--budget", "2m"]);
  assert.deepEqual(runOptions(fresh), fresh.options);

  const parsed = parseOptions(["--resume", "runs/fixture", "--budget", "30steps", "--log-every", "2"]);
  const options = runOptions(parsed, loaded);
  assert.deepEqual(options, {
    ...loaded.state.options,
    budget: { steps: 30 },
    logEvery: 2,
    out: "runs/fixture",
    resume: "runs/fixture",
  });
  const branched = runOptions(parseOptions(["--resume", loaded.dir, "--out", "runs/branch"]), loaded);
  assert.equal(branched.out, "runs/branch");
  assert.equal(branched.seed, loaded.state.options.seed);
});

Deno.test("a resumed run whose budget is used has nothing to do; a larger budget goes on", () => {
  const options = (budget: string) => runOptions(parseOptions(["--resume", "r", "--budget", budget]), loaded);
  assert.equal(
    budgetUsedMessage(loaded, options("4steps")),
    "runs/fixture: the run has used its budget of 4steps (4 steps, 6 s); nothing to do. " +
      "To train it longer, give a larger --budget with --resume.",
  );
  assert.equal(budgetUsedMessage(loaded, options("5steps")), undefined);
  assert.match(budgetUsedMessage(loaded, options("5s")) ?? "", /used its budget of 5s \(4 steps, 6 s\)/);
  assert.equal(budgetUsedMessage(loaded, options("7s")), undefined);
});

Deno.test("a resumed run needs the dataset it trained on", () => {
  const trained = loaded.state.dataset;
  checkResumedDataset(trained, { ...trained }, "runs/fixture", "runs/fixture/data");
  assert.throws(
    () => checkResumedDataset(trained, { ...trained, vocabHash: "fedcba9876543210" }, "r", "d"),
    /^UsageError: --resume r: the checkpoint was trained on vocabulary 0123456789abcdef, the dataset in d has fedcba9876543210$/,
  );
  assert.throws(
    () => checkResumedDataset(trained, { ...trained, sequences: 99 }, "r", "d"),
    /^UsageError: --resume r: the checkpoint was trained on 100 sequences, the dataset in d has 99: another corpus/,
  );
});

const gpu = await requestGpu();

for (const storage of ["f32", "f16"] as const) {
  Deno.test({
    name:
      `restoreTrainer puts back the weights, AdamW's step count and, with ${storage} storage, the loss scale`,
    ignore: storage === "f16" && !gpu.hasF16,
    fn: async () => {
      const trainer = await planTrainer(new Kernels(gpu), microConfig, {
        batch: 2,
        seq: 8,
        maxLabels: maxLabels(2, 8, 0.15),
        storage,
      });
      const lossScale = { scale: 512, goodSteps: 3 };
      restoreTrainer(trainer, { state: { ...loaded.state, lossScale }, weights: loaded.weights });
      assert.deepEqual(await readWeights(trainer), loaded.weights);
      assert.equal(trainer.steps, loaded.state.updates);
      if (storage === "f16") assert.deepEqual(await readLossScale(gpu, trainer.model.lossScale!), lossScale);
      else assert.equal(trainer.model.lossScale, undefined);
    },
  });
}
