/**
 * Where finetuning applies dropout, as the Cramming recipe's finetuning model does (cramming/architectures:
 * EmbeddingComponent, TransformerLayer, the attention's probabilities and PoolingComponent), and each
 * site's index in a step's list of dropout seeds. Pretraining has no dropout.
 *
 * - the embedding output, after its LayerNorm;
 * - per layer: the attention probabilities, the attention block's output (after its output projection,
 *   before the residual add) and the FFN block's output (likewise);
 * - the classifier head's tanh output.
 *
 * A site's mask is `dropoutKeep(seed, element index)` (src/reference/dropout.ts) over the flat tensor it
 * drops from, with the step's seed for that site; the reference and the GPU kernels agree bit for bit.
 *
 * @module
 */
import type { ModelConfig } from "./config.ts";

/** Dropout of finetuning: the probability, and one u32 seed per site ({@linkcode dropoutSiteCount}). */
export interface DropoutSeeds {
  p: number;
  seeds: ArrayLike<number>;
}

/** The embedding output's site. */
export const EMBEDDING_SITE = 0;

/** The three sites of layer `layer`. */
export function layerSites(layer: number): { probs: number; attention: number; ffn: number } {
  return { probs: 1 + 3 * layer, attention: 2 + 3 * layer, ffn: 3 + 3 * layer };
}

/** The classifier head's site. */
export function headSite(config: ModelConfig): number {
  return 1 + 3 * config.layers;
}

/** Seeds a finetuning step needs. */
export function dropoutSiteCount(config: ModelConfig): number {
  return 2 + 3 * config.layers;
}
