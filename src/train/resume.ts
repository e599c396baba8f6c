/**
 * Continuing a pretraining run from a checkpoint (`--resume`): its options, whether its budget is already
 * used, whether the dataset is the one it trained on, and its state put back into a planned trainer.
 *
 * @module
 */
import { UsageError } from "../args.ts";
import { writeLossScale } from "../model/loss_scale.ts";
import { Budget, formatBudget } from "./budget.ts";
import type { LoadedCheckpoint } from "./checkpoints.ts";
import type { TrainState, Weights } from "./checkpoint_state.ts";
import { writeWeights } from "./loop.ts";
import { type ParsedOptions, type PretrainOptions, resumeOptions } from "./options.ts";
import type { Trainer } from "./step.ts";

/**
 * The options a run trains with: the command line's, or with `--resume` the checkpoint's saved ones with
 * the resumable options given taking their place. A resumed run writes to the run folder of its checkpoint
 * unless --out names another.
 */
export function runOptions(parsed: ParsedOptions, loaded?: LoadedCheckpoint): PretrainOptions {
  if (!loaded) return parsed.options;
  const out = parsed.given.has("out") ? parsed.options.out : loaded.runDir;
  return resumeOptions(loaded.state.options, parsed, out);
}

/** The message for a resumed run whose budget is already used (nothing to do), else undefined. */
export function budgetUsedMessage(loaded: LoadedCheckpoint, options: PretrainOptions): string | undefined {
  const { state } = loaded;
  const budget = new Budget(options.budget, { usedSeconds: state.usedSeconds, steps: state.step });
  if (!budget.done) return undefined;
  return `${loaded.runDir}: the run has used its budget of ${formatBudget(options.budget)} ` +
    `(${state.step} steps, ${state.usedSeconds.toFixed(0)} s); nothing to do. ` +
    `To train it longer, give a larger --budget with --resume.`;
}

/**
 * Throws unless the dataset in `dataDir` is the one the checkpoint trained on (same vocabulary, same
 * number of sequences), so that its data position continues the same order.
 */
export function checkResumedDataset(
  trained: TrainState["dataset"],
  dataset: { vocabHash: string; sequences: number },
  resume: string,
  dataDir: string,
): void {
  if (trained.vocabHash !== dataset.vocabHash) {
    throw new UsageError(
      `--resume ${resume}: the checkpoint was trained on vocabulary ${trained.vocabHash}, ` +
        `the dataset in ${dataDir} has ${dataset.vocabHash}`,
    );
  }
  if (trained.sequences !== dataset.sequences) {
    throw new UsageError(
      `--resume ${resume}: the checkpoint was trained on ${trained.sequences} sequences, ` +
        `the dataset in ${dataDir} has ${dataset.sequences}: another corpus (its data order would not continue)`,
    );
  }
}

/**
 * Puts a checkpoint into a planned trainer: the weights and AdamW moments, AdamW's step count, and the
 * loss scale where both the checkpoint and the trainer have one (f16 storage).
 */
export function restoreTrainer(trainer: Trainer, checkpoint: { state: TrainState; weights: Weights }): void {
  writeWeights(trainer, checkpoint.weights);
  trainer.setSteps(checkpoint.state.updates);
  const { lossScale } = checkpoint.state;
  if (lossScale && trainer.model.lossScale) {
    writeLossScale(trainer.gpu, trainer.model.lossScale, lossScale.scale, lossScale.goodSteps);
  }
}
