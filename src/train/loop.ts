/**
 * The pretraining loop, driven by the budget: each optimizer step takes the learning rate and the
 * number of accumulated micro-batches from the schedules at the budget fraction used so far, queues
 * its work on the GPU without waiting, and every `logEvery` steps reads the loss and optimizer stats
 * back (the only GPU round trip, which also keeps the CPU from running far ahead of the GPU).
 *
 * File input and output stay with the caller (tasks/pretrain.ts): checkpoints go through the
 * `checkpoint` callback with the state and a way to read the weights, so that the loop runs the same
 * in a test that keeps everything in memory.
 */
import { readF32, writeBuffer } from "../gpu/buffers.ts";
import type { BatchSource, DataPosition } from "./batches.ts";
import type { Budget } from "./budget.ts";
import type { Weights } from "./checkpoint_state.ts";
import type { MetricRecord } from "./metrics.ts";
import { type BatchRamp, learningRate, type LearningRateSchedule, microBatchesPerStep } from "./schedule.ts";
import type { Trainer } from "./step.ts";
import type { ProgressSnapshot } from "./progress.ts";

/** Where a run stands between steps: what a checkpoint records besides the weights. */
export interface LoopState {
  /** Optimizer steps counted, skipped ones included. */
  step: number;
  /** Non-finite steps skipped so far. */
  skipped: number;
  /** Tokens trained on so far. */
  tokensSeen: number;
  /** Where the next micro-batch starts. */
  data: DataPosition;
  /** The epoch of the last micro-batch trained on. */
  epoch: number;
}

/** What {@linkcode trainLoop} trains, with what schedules, and how often it reports. */
export interface LoopOptions {
  /** The model and optimizer, planned. */
  trainer: Trainer;
  /** The masked micro-batches, in order. */
  source: BatchSource;
  /** The budget: when it is used, the loop ends. */
  budget: Budget;
  /** The one-cycle learning rate, a function of the budget's fraction used. */
  lr: LearningRateSchedule;
  /** How many micro-batches each step accumulates, a function of the budget's fraction used. */
  ramp: BatchRamp;
  /** Steps between metrics records (and GPU reads). */
  logEvery: number;
  /** Seconds of budget between checkpoints. */
  checkpointSeconds: number;
  /** Consecutive skipped steps that stop the run. */
  maxNonfinite: number;
  /** Where the run starts (from a checkpoint, or all zeros). */
  start: LoopState;
  /** The budget as the user gave it, for the progress line. */
  budgetLabel: string;
}

/** What the loop tells its caller, and asks of it. */
export interface LoopEvents {
  /** A metrics record, every `logEvery` steps and at the end. */
  record(record: MetricRecord): void;
  /** After every step: what the progress line shows. */
  progress(snapshot: ProgressSnapshot): void;
  /** A message for the user (a skipped step, a new epoch). */
  message(text: string): void;
  /** Writes a checkpoint of `state`; `weights()` reads the parameters and moments from the GPU. */
  checkpoint(state: LoopState, weights: () => Promise<Weights>): Promise<void>;
  /** Polled between steps: true asks the loop to checkpoint and stop (Ctrl-C). */
  interrupted(): boolean;
}

/** How a run ended. */
export interface LoopResult {
  /** Why the loop stopped. */
  stopped: "budget" | "interrupted" | "non-finite";
  /** Where the run stands at the end. */
  state: LoopState;
  /** The last metrics record, if any was written. */
  last?: MetricRecord;
}

/** Reads the trainer's parameters and AdamW moments. */
export async function readWeights(trainer: Trainer): Promise<Weights> {
  const { gpu, model, m, v } = trainer;
  return { params: await readF32(gpu, model.params), m: await readF32(gpu, m), v: await readF32(gpu, v) };
}

/** Loads parameters and AdamW moments into the trainer. */
export function writeWeights(trainer: Trainer, weights: Weights): void {
  const gpu = trainer.gpu;
  writeBuffer(gpu, trainer.model.params, weights.params as Float32Array<ArrayBuffer>);
  writeBuffer(gpu, trainer.m, weights.m as Float32Array<ArrayBuffer>);
  writeBuffer(gpu, trainer.v, weights.v as Float32Array<ArrayBuffer>);
}

/** Trains until the budget is used, the user interrupts, or too many steps in a row are non-finite. */
export async function trainLoop(options: LoopOptions, events: LoopEvents): Promise<LoopResult> {
  const { trainer, source, budget, logEvery, maxNonfinite } = options;
  const { batch: microBatch, seq } = trainer.model;
  const state: LoopState = { ...options.start, data: { ...options.start.data } };
  let last: MetricRecord | undefined;
  let nextCheckpoint = budget.usedSeconds + options.checkpointSeconds;
  let consecutiveSkipped = 0;
  let window = { steps: 0, tokens: 0, seconds: budget.usedSeconds };
  let lr = 0;
  let sequences = 0;

  // Reads what the GPU accumulated since the last read and writes a metrics record.
  const report = async (): Promise<MetricRecord> => {
    const stats = await trainer.readStats();
    const newlySkipped = stats.skippedSteps - state.skipped;
    // Reads come every `logEvery` steps: a window whose every step was skipped extends the run of
    // non-finite steps, any applied update ends it.
    consecutiveSkipped = newlySkipped >= window.steps ? consecutiveSkipped + newlySkipped : 0;
    if (newlySkipped > 0) {
      // With f16 storage an overflow is expected now and then: the loss scale halves and training goes on.
      const scale = stats.lossScale === 1 ? "" : ` (loss scale now ${stats.lossScale})`;
      events.message(`step ${state.step}: ${newlySkipped} update(s) skipped: non-finite gradients${scale}`);
    }
    state.skipped = stats.skippedSteps;
    const seconds = budget.usedSeconds;
    const record: MetricRecord = {
      step: state.step,
      seconds,
      tokens: state.tokensSeen,
      loss: stats.loss,
      lr,
      batch: sequences,
      tokensPerSecond: window.tokens / Math.max(1e-9, seconds - window.seconds),
      epoch: state.epoch,
      skipped: state.skipped,
    };
    window = { steps: 0, tokens: 0, seconds };
    events.record(record);
    last = record;
    return record;
  };
  const checkpoint = async () => {
    await events.checkpoint({ ...state, data: { ...state.data } }, () => readWeights(trainer));
    nextCheckpoint = budget.usedSeconds + options.checkpointSeconds;
  };

  budget.start();
  let stopped: LoopResult["stopped"] = "budget";
  while (!budget.done) {
    if (events.interrupted()) {
      stopped = "interrupted";
      break;
    }
    const fraction = budget.fraction;
    const count = microBatchesPerStep(options.ramp, fraction);
    lr = learningRate(options.lr, fraction);
    const micro = [];
    for (let i = 0; i < count; i++) {
      const b = await source.next();
      if (b.epoch !== state.epoch) state.epoch = b.epoch;
      state.data = b.next;
      micro.push(b);
    }
    await trainer.step(micro, lr);
    budget.step();
    state.step++;
    sequences = count * microBatch;
    state.tokensSeen += sequences * seq;
    window.steps++;
    window.tokens += sequences * seq;
    events.progress({
      step: state.step,
      tokensPerSecond: window.tokens / Math.max(1e-9, budget.usedSeconds - window.seconds),
      loss: last?.loss,
      lr,
      batch: sequences,
      usedSeconds: budget.usedSeconds,
      fraction: budget.fraction,
      budget: options.budgetLabel,
      remainingSeconds: budget.remainingSeconds,
    });
    if (state.step % logEvery === 0) {
      await report();
      if (consecutiveSkipped >= maxNonfinite) {
        stopped = "non-finite";
        break;
      }
    }
    if (budget.usedSeconds >= nextCheckpoint) await checkpoint();
  }
  if (window.steps > 0) await report();
  // The last good checkpoint stays intact after a run of non-finite steps: the weights on the GPU
  // are unchanged by skipped updates, but the run is not worth continuing from here.
  if (stopped !== "non-finite") await checkpoint();
  return { stopped, state, last };
}
