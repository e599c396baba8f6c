/**
 * A GLUE task's examples as our evaluation tokenized them, for a finetuning peer outside this engine
 * (`peer/finetune_peer.py`): the same token ids and targets, the task's labels and metrics, and the
 * recipe they were finetuned with, as one JSON file per task (`deno task eval --write-features`).
 *
 * @module
 */
import type { EncodedExample, FinetuneOptions } from "./finetune.ts";
import type { GlueTask } from "./glue.ts";

/** The file's format name and version. */
export const FEATURES_FORMAT = { format: "cram-glue-features", version: 1 } as const;

/** Examples as parallel lists: token ids with [CLS]/[SEP], and label indices or regression scores. */
export interface FeatureSet {
  ids: number[][];
  targets: number[];
}

/** One task's file. */
export interface TaskFeatures {
  format: typeof FEATURES_FORMAT.format;
  version: typeof FEATURES_FORMAT.version;
  task: string;
  /** The label names, in index order; null for a regression task (one output). */
  labels: string[] | null;
  /** The metrics GLUE reports; the first is the one the GLUE average uses. */
  metrics: string[];
  /** The finetuning recipe of our run. */
  finetune: FinetuneOptions;
  train: FeatureSet;
  devs: (FeatureSet & { name: string })[];
}

function featureSet(examples: readonly EncodedExample[]): FeatureSet {
  return { ids: examples.map((e) => e.ids), targets: examples.map((e) => e.target) };
}

/** The JSON bytes of `task`'s file. */
export function taskFeaturesJson(
  task: GlueTask,
  train: readonly EncodedExample[],
  devs: readonly (readonly EncodedExample[])[],
  finetune: FinetuneOptions,
): Uint8Array {
  const file: TaskFeatures = {
    ...FEATURES_FORMAT,
    task: task.name,
    labels: task.labels ? [...task.labels] : null,
    metrics: [...task.metrics],
    finetune,
    train: featureSet(train),
    devs: task.devSets.map((d, i) => ({ name: d.name, ...featureSet(devs[i]) })),
  };
  return new TextEncoder().encode(JSON.stringify(file) + "\n");
}
