/**
 * The pretrained model `deno task eval` starts from: a checkpoint of a pretraining run and the tokenizer
 * it was trained with, checked against each other (the checkpoint records its vocabulary's hash).
 *
 * @module
 */
import { Tokenizer } from "../data/tokenizer.ts";
import { type ModelConfig, paddedVocabSize } from "../model/config.ts";
import { locateCheckpoint, readModelFolder } from "../train/checkpoints.ts";
import { RunFileError } from "../train/run_dir.ts";

/** A checkpoint and tokenizer ready for finetuning. */
export interface Pretrained {
  /** The model's shape. */
  config: ModelConfig;
  /** Parameters in paramLayout. */
  params: Float32Array;
  /** The tokenizer the model was pretrained with. */
  tokenizer: Tokenizer;
  /** The checkpoint folder, and the run folder that holds it. */
  dir: string;
  /** The run folder that holds the checkpoint. */
  runDir: string;
  /** The optimizer step the checkpoint was taken at. */
  step: number;
}

/**
 * Reads the checkpoint at `path` (a run folder: its newest checkpoint; or a checkpoint folder) and the
 * tokenizer in `tokenizerDir` (default: the run folder, where pretraining saves it). Every failure is a
 * one-line error naming the file.
 */
export async function loadPretrained(path: string, tokenizerDir?: string): Promise<Pretrained> {
  const { dir, runDir } = await locateCheckpoint(path, "--checkpoint");
  // The optimizer's moments are not needed to finetune: a checkpoint without them is fine.
  const { state, params } = await readModelFolder(dir);
  let tokenizer: Tokenizer;
  try {
    tokenizer = await Tokenizer.load(tokenizerDir ?? runDir);
  } catch (e) {
    // Runs written before pretraining kept its tokenizer have none: say how to name it.
    if (tokenizerDir !== undefined) throw e;
    throw new RunFileError(`${(e as Error).message} (give --tokenizer <folder of its vocab.txt>)`);
  }
  const { vocabHash } = state.dataset;
  if (tokenizer.hash !== vocabHash || paddedVocabSize(tokenizer.size) !== state.config.vocabSize) {
    throw new RunFileError(
      `${dir} was pretrained with vocabulary ${vocabHash} (${state.config.vocabSize} rows), but the ` +
        `tokenizer in ${tokenizerDir ?? runDir} has ${tokenizer.hash} of ${tokenizer.size} tokens`,
    );
  }
  return { config: state.config, params, tokenizer, dir, runDir, step: state.step };
}
