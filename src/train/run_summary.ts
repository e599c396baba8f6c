/**
 * A run's summary.json: what a finished (or stopped) run achieved.
 *
 * @module
 */
import type { ModelConfig } from "../model/config.ts";
import type { StorageType } from "../gpu/buffers.ts";
import { writeFileAtomic } from "../fs.ts";

/** summary.json: what a finished (or stopped) run achieved. */
export interface RunSummary {
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
}

/** Writes `<runDir>/summary.json` atomically. */
export async function writeSummary(runDir: string, summary: RunSummary): Promise<void> {
  await writeFileAtomic(
    `${runDir}/summary.json`,
    new TextEncoder().encode(JSON.stringify(summary, null, 2) + "\n"),
  );
}
