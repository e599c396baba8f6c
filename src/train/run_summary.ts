/**
 * A run's summary.json: what a finished (or stopped) run achieved.
 *
 * @module
 */
import type { ModelConfig } from "../model/config.ts";
import type { StorageType } from "../gpu/buffers.ts";
import { writeFileAtomic } from "../fs.ts";
import type { LoopResult } from "./loop.ts";

/** summary.json: what a finished (or stopped) run achieved. */
export interface RunSummary {
  /** The model's preset, with the shape options that changed it (e.g. `compact 8x512`; see modelName). */
  preset: string;
  config: ModelConfig;
  /** How activations and the products' weight copy were stored (`--precision`). */
  precision: StorageType;
  /** Why the run ended. */
  stopped: "budget" | "interrupted" | "non-finite";
  steps: number;
  skipped: number;
  tokensSeen: number;
  /** Epochs begun: 1 while the first pass over the data is not complete. */
  epochs: number;
  /** Loss of the last metrics record. */
  finalLoss: number;
  /** Tokens per second of this process's training (a resumed run's earlier part not counted). */
  tokensPerSecond: number;
  usedSeconds: number;
  budget: string;
  /** Peak bytes of GPU buffers allocated by the run (WebGPU reports no device-wide figure). */
  peakMemoryBytes: number;
  /** The MLM masking rate it trained with (`--mask-rate`, resolved). */
  maskRate: number;
  /** Tokens in its dataset (sequences times their length): tokensSeen / dataTokens passes over it. */
  dataTokens: number;
}

/** Writes `<runDir>/summary.json` atomically. */
export async function writeSummary(runDir: string, summary: RunSummary): Promise<void> {
  await writeFileAtomic(
    `${runDir}/summary.json`,
    new TextEncoder().encode(JSON.stringify(summary, null, 2) + "\n"),
  );
}

/** What {@linkcode summarizeRun} summarizes. */
export interface RunOutcome {
  /** The model's name (see {@linkcode RunSummary}). */
  preset: string;
  config: ModelConfig;
  precision: StorageType;
  /** How the training loop ended. */
  result: LoopResult;
  /** Budget seconds used, all processes together. */
  usedSeconds: number;
  /** The budget as the user gave it. */
  budget: string;
  /** Bytes of GPU buffers the trainer allocated. */
  peakMemoryBytes: number;
  /** The resolved `--mask-rate`. */
  maskRate: number;
  /** Tokens in the dataset: sequences times their length. */
  dataTokens: number;
  /** Where a resumed run started: its tokens and seconds are not this process's. */
  resumedFrom?: { tokensSeen: number; usedSeconds: number };
}

/** The summary of a run that ended. */
export function summarizeRun(run: RunOutcome): RunSummary {
  const { result } = run;
  const tokensBefore = run.resumedFrom?.tokensSeen ?? 0;
  const secondsBefore = run.resumedFrom?.usedSeconds ?? 0;
  return {
    preset: run.preset,
    config: run.config,
    precision: run.precision,
    stopped: result.stopped,
    steps: result.state.step,
    skipped: result.state.skipped,
    tokensSeen: result.state.tokensSeen,
    epochs: result.state.epoch + 1,
    finalLoss: result.last?.loss ?? NaN,
    tokensPerSecond: (result.state.tokensSeen - tokensBefore) /
      Math.max(1e-9, run.usedSeconds - secondsBefore),
    usedSeconds: run.usedSeconds,
    budget: run.budget,
    peakMemoryBytes: run.peakMemoryBytes,
    maskRate: run.maskRate,
    dataTokens: run.dataTokens,
  };
}
