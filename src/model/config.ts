/**
 * The model's shape: a crammed-BERT encoder (pre-LayerNorm, no biases in linear layers, tied MLM decoder).
 * Presets, validation with one-line errors naming the field, and conversion to and from the JSON config
 * that the PyTorch peer (torch_peer.py) reads from a checkpoint's metadata.
 *
 * @module
 */

/** The feed-forward activation: GELU, or GELU-gated linear unit (up projects to I, down reads I/2). */
export type Ffn = "gelu" | "gelu-glu";

/** Position embedding: a learned scale times a fixed sinusoid table, or a learned [maxSeqLen, hidden] table. */
export type Positions = "scaled-sinusoidal" | "learned";

/** The shape of a crammed-BERT model. */
export interface ModelConfig {
  /**
   * Word embedding rows and MLM decoder columns: the tokenizer's size rounded up to a multiple of 8
   * ({@linkcode paddedVocabSize}) when fitted to a dataset.
   */
  vocabSize: number;
  /** Width of the hidden states. */
  hidden: number;
  /** Transformer layers. */
  layers: number;
  /** Attention heads; `hidden` is a multiple of it. */
  heads: number;
  /** Width of the FFN up projection (for gelu-glu the down projection reads half of it). */
  intermediate: number;
  /** The longest sequence the model takes (the position table's length). */
  maxSeqLen: number;
  /** The FFN's activation: GELU, or gated GELU. */
  ffn: Ffn;
  /** Position embeddings: scaled sinusoids or a learned table. */
  positions: Positions;
  /** LayerNorm epsilon. */
  normEps: number;
}

/** The Cramming paper's model: BERT-base shape, 32768-token vocabulary, sequences of 128. */
export const crammed: ModelConfig = {
  vocabSize: 32768,
  hidden: 768,
  layers: 16,
  heads: 12,
  intermediate: 3072,
  maxSeqLen: 128,
  ffn: "gelu",
  positions: "scaled-sinusoidal",
  normEps: 1e-12,
};

/**
 * A model for budgets of minutes to an hour on a GPU (BERT-small's shape: 4 layers of 512). In 10 minutes
 * on an H200 the crammed model makes about 1,300 steps of 256 sequences and its MLM loss is still near the
 * unigram level (5.77 nats against the corpus's 6.66), which finetunes no better than a random model;
 * this one does about an eighth of the work per token, so the same minutes buy many more steps.
 */
export const compact: ModelConfig = {
  vocabSize: 32768,
  hidden: 512,
  layers: 4,
  heads: 8,
  intermediate: 2048,
  maxSeqLen: 128,
  ffn: "gelu",
  positions: "scaled-sinusoidal",
  normEps: 1e-12,
};

/**
 * A model that trains visibly within minutes on a CPU WebGPU adapter (the default there). Its smaller
 * vocabulary is what a raw corpus is tokenized with for it; given tokenized data, a run takes the
 * data's vocabulary size instead (see tasks/pretrain.ts).
 */
export const small: ModelConfig = {
  vocabSize: 8192,
  hidden: 128,
  layers: 4,
  heads: 4,
  intermediate: 512,
  maxSeqLen: 128,
  ffn: "gelu",
  positions: "scaled-sinusoidal",
  normEps: 1e-12,
};

/** A model small enough for unit tests of every kernel and of whole-model gradients. */
export const tiny: ModelConfig = {
  vocabSize: 96,
  hidden: 32,
  layers: 2,
  heads: 4,
  intermediate: 64,
  maxSeqLen: 16,
  ffn: "gelu",
  positions: "scaled-sinusoidal",
  normEps: 1e-12,
};

/** The presets by name. */
export const presets: Readonly<Record<string, ModelConfig>> = { crammed, compact, small, tiny };

/** The part of a model's shape that may be chosen apart from its preset (pretrain's --layers and so on). */
export type ModelShape = Partial<Pick<ModelConfig, "layers" | "hidden" | "heads" | "intermediate">>;

/**
 * A model's name: its preset's, then what differs from the preset's shape, e.g. `compact`, `compact 8x512`
 * or `compact 4x768, 12 heads, FFN 3072` (depth x width first, heads and FFN width when they differ).
 */
export function modelName(preset: string, config: ModelConfig): string {
  const base = presets[preset];
  if (!base) return preset;
  const { layers, hidden, heads, intermediate } = config;
  if (
    layers === base.layers && hidden === base.hidden && heads === base.heads &&
    intermediate === base.intermediate
  ) {
    return preset;
  }
  const parts = [`${preset} ${layers}x${hidden}`];
  if (heads !== base.heads) parts.push(`${heads} heads`);
  if (intermediate !== base.intermediate) parts.push(`FFN ${intermediate}`);
  return parts.join(", ");
}

const ffnValues: readonly Ffn[] = ["gelu", "gelu-glu"];
const positionValues: readonly Positions[] = ["scaled-sinusoidal", "learned"];

/** Width of each attention head. */
export function headDim(config: ModelConfig): number {
  return config.hidden / config.heads;
}

/** Width of the activation the FFN down projection reads: I, or I/2 for gelu-glu. */
export function downInputWidth(config: ModelConfig): number {
  return config.ffn === "gelu-glu" ? config.intermediate / 2 : config.intermediate;
}

/**
 * The model's vocabulary (word embedding rows, MLM decoder columns) for a tokenizer of `tokens` tokens,
 * rounded up to a multiple of 8: the kernels read rows of logits as vec4s and the tensor-core products take
 * sizes in multiples of 8 (a tokenizer of 1,001 tokens gives 1,008). The rows past the tokenizer's are never
 * an input or a label; training only pushes their logits down.
 */
export function paddedVocabSize(tokens: number): number {
  return Math.ceil(tokens / 8) * 8;
}

/**
 * The largest value of each size of a config: far beyond any model this engine can train (the shards hold
 * 16-bit token ids), and checked before anything is allocated from a config read from a file, so that a
 * crafted checkpoint cannot make the loader allocate without bound.
 */
export const CONFIG_LIMITS: Readonly<
  Record<"vocabSize" | "hidden" | "layers" | "heads" | "intermediate" | "maxSeqLen", number>
> = { vocabSize: 65536, hidden: 16384, layers: 512, heads: 256, intermediate: 65536, maxSeqLen: 8192 };

/**
 * Returns `config` if it describes a valid model, else throws a `RangeError` whose one-line message starts
 * with `source` and names the field.
 */
export function validateConfig(config: ModelConfig, source = "model config"): ModelConfig {
  return checkConfig(config, source, (field) => field);
}

function checkConfig(
  config: ModelConfig,
  source: string,
  fieldName: (field: keyof ModelConfig) => string,
): ModelConfig {
  const fail = (field: keyof ModelConfig, expected: string, got: unknown): never => {
    throw new RangeError(`${source}: ${fieldName(field)} must be ${expected}, got ${JSON.stringify(got)}`);
  };
  for (const field of ["vocabSize", "hidden", "layers", "heads", "intermediate", "maxSeqLen"] as const) {
    const value = config[field];
    const max = CONFIG_LIMITS[field];
    if (!Number.isSafeInteger(value) || value < 1 || value > max) {
      fail(field, `an integer from 1 to ${max}`, value);
    }
  }
  if (!ffnValues.includes(config.ffn)) fail("ffn", `one of ${ffnValues.join(", ")}`, config.ffn);
  if (!positionValues.includes(config.positions)) {
    fail("positions", `one of ${positionValues.join(", ")}`, config.positions);
  }
  if (!(Number.isFinite(config.normEps) && config.normEps > 0)) {
    fail("normEps", "a positive number", config.normEps);
  }
  if (config.hidden % config.heads !== 0) {
    fail("hidden", `a multiple of heads (${config.heads})`, config.hidden);
  }
  // The sinusoid table pairs sin and cos columns.
  if (config.hidden % 2 !== 0) fail("hidden", "even", config.hidden);
  if (config.ffn === "gelu-glu" && config.intermediate % 2 !== 0) {
    fail("intermediate", "even for ffn gelu-glu", config.intermediate);
  }
  return config;
}

/** The peer's JSON key of each field. */
const peerKeys: Readonly<Record<keyof ModelConfig, string>> = {
  vocabSize: "vocab_size",
  hidden: "hidden_size",
  layers: "num_layers",
  heads: "num_heads",
  intermediate: "intermediate_size",
  maxSeqLen: "max_seq_len",
  ffn: "ffn",
  normEps: "norm_eps",
  positions: "positions",
};

/** The config as the peer's JSON keys (the `config` entry of a checkpoint's metadata). */
export function toPeerConfig(config: ModelConfig): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const [field, key] of Object.entries(peerKeys)) out[key] = config[field as keyof ModelConfig];
  return out;
}

/**
 * Parses and validates the peer's JSON config (a JSON string or a parsed object). Every key is required;
 * errors start with `source` and name the key.
 */
export function fromPeerConfig(json: unknown, source = "model config"): ModelConfig {
  let value = json;
  if (typeof json === "string") {
    try {
      value = JSON.parse(json);
    } catch (e) {
      throw new RangeError(`${source}: config is not valid JSON: ${(e as Error).message}`);
    }
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new RangeError(`${source}: config must be a JSON object`);
  }
  const object = value as Record<string, unknown>;
  const config: Record<string, unknown> = {};
  for (const [field, key] of Object.entries(peerKeys)) {
    if (!(key in object)) throw new RangeError(`${source}: config key ${key} is missing`);
    config[field] = object[key];
  }
  return checkConfig(config as unknown as ModelConfig, source, (field) => `config key ${peerKeys[field]}`);
}
