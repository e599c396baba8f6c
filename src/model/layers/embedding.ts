/**
 * Token + position embeddings (kernels/embedding.wgsl).
 *
 * The word-embedding gradient is a scatter-add of dx rows by token id, and WGSL has no float atomics.
 * The host knows each batch's ids before the GPU needs them (it masks the batch while the GPU runs the
 * previous step), so it also sorts them: {@linkcode sortTokens} buckets the token positions by id (a
 * stable O(N log N) sort: 2-3 ms for 16k ids on a 2-core CPU, off the GPU's critical path). The kernel
 * cuts the sorted positions into tiles of equal length, one workgroup each, and sums every id's rows in
 * that fixed order; an id spanning several tiles (a frequent word, [MASK]) leaves one partial sum per
 * tile, which a second kernel adds in tile order. The result is the same bit for bit on every run.
 */
import { storageBuffer } from "../../gpu/buffers.ts";
import { dispatch, uniformBuffer } from "../../gpu/kernels.ts";
import type { Binding, Dispatch, Kernels } from "../../gpu/kernels.ts";
import { uniformStruct } from "../../gpu/uniforms.ts";
import { checkBuffer, checkMultiple, flatGrid } from "./plan.ts";
import { type BenchShape, benchTokens, f32Bytes as f32, type KernelCase } from "../../bench/case.ts";

/** Token positions bucketed by id. */
export interface SortedTokens {
  /** Token positions sorted by id; positions with equal ids stay in increasing order. */
  order: Uint32Array<ArrayBuffer>;
  /** The distinct ids, increasing. */
  uniqueIds: Uint32Array<ArrayBuffer>;
  /** uniqueIds.length + 1 entries: id uniqueIds[u] owns order[segmentStart[u] .. segmentStart[u + 1]). */
  segmentStart: Uint32Array<ArrayBuffer>;
}

/** Buckets the positions of `ids` by id (see the module comment for why the host does this). */
export function sortTokens(ids: ArrayLike<number>): SortedTokens {
  const n = ids.length;
  // One numeric sort of id * n + position: ties between equal ids break by position, so it is stable.
  const keys = new Float64Array(n);
  for (let t = 0; t < n; t++) {
    const id = ids[t];
    if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) {
      throw new RangeError(`sortTokens: id ${id} at position ${t} is not a u32`);
    }
    keys[t] = id * n + t;
    if (keys[t] > Number.MAX_SAFE_INTEGER) {
      throw new RangeError(`sortTokens: id ${id} times ${n} tokens is past exact doubles`);
    }
  }
  keys.sort();
  const order = new Uint32Array(n);
  const starts: number[] = [];
  const unique: number[] = [];
  for (let i = 0; i < n; i++) {
    const id = Math.floor(keys[i] / n);
    order[i] = keys[i] - id * n;
    if (i === 0 || id !== unique[unique.length - 1]) {
      unique.push(id);
      starts.push(i);
    }
  }
  starts.push(n);
  return { order, uniqueIds: Uint32Array.from(unique), segmentStart: Uint32Array.from(starts) };
}

/**
 * The `tokenOrder` buffer contents for a batch of `tokens` ids (3 * tokens + 1 u32s, the same size for
 * every batch): [order (tokens) | segmentStart (tokens + 1) | uniqueIds (tokens)], the segment starts
 * padded with `tokens` (empty segments) and the ids with 0.
 */
export function packTokenOrder(sorted: SortedTokens, tokens: number): Uint32Array<ArrayBuffer> {
  const { order, uniqueIds, segmentStart } = sorted;
  if (order.length !== tokens) {
    throw new RangeError(`packTokenOrder: ${order.length} sorted positions, expected ${tokens}`);
  }
  const packed = new Uint32Array(3 * tokens + 1);
  packed.set(order);
  packed.fill(tokens, tokens, 2 * tokens + 1);
  packed.set(segmentStart, tokens);
  packed.set(uniqueIds, 2 * tokens + 1);
  return packed;
}

/** Shapes of the embedding layer. */
export interface EmbeddingShape {
  /** Tokens in the batch (batch * seq). */
  tokens: number;
  /** Tokens per sequence: token t has position t % seq. */
  seq: number;
  /** A multiple of 4. */
  hidden: number;
  vocab: number;
}

/** The position embedding of the forward: a learned table or a scaled constant sinusoid table. */
export type PositionInput =
  /** table [>= seq, hidden] f32. */
  | { kind: "learned"; table: Binding }
  /** table [>= seq, hidden] f32 (the reference's `sinusoidTable`), scale [1] f32 (a parameter). */
  | { kind: "scaled-sinusoidal"; table: Binding; scale: Binding };

export interface EmbeddingForwardOptions extends EmbeddingShape {
  /** [tokens] u32 token ids. */
  ids: GPUBuffer;
  /** [vocab, hidden] f32. */
  word: Binding;
  position: PositionInput;
  /** [tokens, hidden] f32, written. */
  x: GPUBuffer;
}

/** Where the backward adds the position gradient. */
export type PositionGradient =
  /** grad [>= seq, hidden] f32: rows p < seq accumulate the gradient of table row p. */
  | { kind: "learned"; grad: Binding }
  /** table: the forward's sinusoid table; grad [1] f32 accumulates the gradient of the scale. */
  | { kind: "scaled-sinusoidal"; table: Binding; grad: Binding };

export interface EmbeddingBackwardOptions extends EmbeddingShape {
  /** [tokens, hidden] f32: gradient of the forward's x. */
  dx: GPUBuffer;
  /** [3 * tokens + 1] u32: {@linkcode packTokenOrder} of this batch's ids, uploaded before submit. */
  tokenOrder: GPUBuffer;
  /** [vocab, hidden] f32, accumulated into (+=). */
  dword: Binding;
  position: PositionGradient;
}

const FAMILY = "embedding";
const WG = 256;
/** The kernels' uniform; count is the backward word kernels' segment slots (0 elsewhere). */
const UNIFORMS = uniformStruct(FAMILY, "Uniforms", {
  tokens: "u32",
  seq: "u32",
  hidden4: "u32",
  count: "u32",
});
/** The word-gradient kernels' workgroups: COLS4 vec4 columns by LANES lanes. */
const COLS4 = 64;
const LANES = 4;
/**
 * Sorted positions per tile of the word gradient: 256 tiles x 3 column chunks for 16384 tokens of 768,
 * several workgroups per SM of a 132-SM GPU. Measured on an H200 against 32: the same time for the tiles,
 * half the workgroups (and partial sums) for the carries.
 */
const TILE = 64;

/** Records x = word[ids] + position. */
export async function embeddingForward(k: Kernels, args: EmbeddingForwardOptions): Promise<Dispatch[]> {
  const gpu = k.gpu;
  const { tokens, seq, hidden, vocab, position } = args;
  checkShape(args);
  checkBuffer("embedding ids", args.ids, tokens * 4);
  checkBuffer("embedding word", args.word, vocab * hidden * 4);
  checkBuffer("embedding position table", position.table, seq * hidden * 4);
  checkBuffer("embedding x", args.x, tokens * hidden * 4);
  const uniforms = uniformBuffer(k, UNIFORMS, "embedding.forward uniforms", {
    tokens,
    seq,
    hidden4: hidden / 4,
    count: 0,
  });
  const grid = flatGrid(gpu, Math.ceil((tokens * hidden) / 4 / WG));
  const bindings = [uniforms, args.ids, args.word, position.table, args.x];
  if (position.kind === "learned") {
    const pipeline = await k.pipeline(FAMILY, "embedding_forward_learned", { WG });
    return [dispatch(gpu, pipeline, bindings, grid)];
  }
  checkBuffer("embedding position scale", position.scale, 4);
  const pipeline = await k.pipeline(FAMILY, "embedding_forward_scaled", { WG });
  return [dispatch(gpu, pipeline, [...bindings, position.scale], grid)];
}

/**
 * Records the backward: dword += the scatter-add of dx by id, and the position gradient (learned table
 * rows, or the scale of the sinusoid, summed as the word gradient reads dx). The scratch buffers of the
 * reductions (1.5 MiB for 16384 tokens of 768) are made here.
 */
export async function embeddingBackward(k: Kernels, args: EmbeddingBackwardOptions): Promise<Dispatch[]> {
  const gpu = k.gpu;
  const { tokens, seq, hidden, vocab, position } = args;
  checkShape(args);
  const hidden4 = hidden / 4;
  checkBuffer("embedding backward dx", args.dx, tokens * hidden * 4);
  checkBuffer("embedding backward tokenOrder", args.tokenOrder, (3 * tokens + 1) * 4);
  checkBuffer("embedding backward dword", args.dword, vocab * hidden * 4);
  const scaled = position.kind === "scaled-sinusoidal";
  if (scaled) {
    checkBuffer("embedding backward sinusoid table", position.table, seq * hidden * 4);
    checkBuffer("embedding backward position-scale grad", position.grad, 4);
  } else {
    checkBuffer("embedding backward position grad", position.grad, seq * hidden * 4);
  }
  const tiles = Math.ceil(tokens / TILE);
  const chunks = Math.ceil(hidden4 / COLS4);
  const segments = Math.min(tokens, vocab);
  const wordUniforms = uniformBuffer(k, UNIFORMS, "embedding.backward word uniforms", {
    tokens,
    seq,
    hidden4,
    count: segments,
  });
  const carry = storageBuffer(gpu, "embedding.backward carry", tiles * 2 * hidden * 4);
  const owners = storageBuffer(gpu, "embedding.backward carry owners", tiles * 8);
  const constants = { COLS4, LANES, WG: COLS4 * LANES, TILE, SCALE: scaled ? 1 : 0 };
  const [word, carrySum] = await Promise.all([
    k.pipeline(FAMILY, "embedding_backward_word", constants),
    k.pipeline(FAMILY, "embedding_backward_carry", constants),
  ]);
  const placeholder = () => storageBuffer(gpu, "embedding.backward placeholder", 16);
  const scalePartials = scaled
    ? storageBuffer(gpu, "embedding.backward scale partials", tiles * chunks * 4)
    : placeholder();
  const shared = [wordUniforms, args.dword, carry, owners];
  const grid: [number, number] = [tiles, chunks];
  const dispatches = [
    dispatch(gpu, word, [
      ...shared,
      args.tokenOrder,
      args.dx,
      scaled ? position.table : placeholder(),
      scalePartials,
    ], grid),
    dispatch(gpu, carrySum, [...shared, scalePartials, scaled ? position.grad : placeholder()], grid),
  ];
  if (!scaled) {
    const uniforms = uniformBuffer(k, UNIFORMS, "embedding.backward learned uniforms", {
      tokens,
      seq,
      hidden4,
      count: 0,
    });
    const pipeline = await k.pipeline(FAMILY, "embedding_backward_learned", { WG });
    const learnedGrid = flatGrid(gpu, Math.ceil((seq * hidden4) / WG));
    dispatches.push(dispatch(gpu, pipeline, [uniforms, args.dx, position.grad], learnedGrid));
  }
  return dispatches;
}

function checkShape({ tokens, seq, hidden, vocab }: EmbeddingShape): void {
  checkMultiple("embedding tokens", tokens, 1);
  checkMultiple("embedding seq", seq, 1);
  checkMultiple("embedding hidden", hidden, 4);
  checkMultiple("embedding vocab", vocab, 1);
}

/**
 * The embedding's benchmark cases (timed by src/bench/kernels.ts): its forward and its backward, with the
 * configured position embedding, on the batch's token ids (the backward sorts them as training does).
 */
export function embeddingBenchCases(shape: BenchShape): [forward: KernelCase, backward: KernelCase] {
  const { config, batch } = shape;
  const { hidden: H, vocabSize: V, maxSeqLen: S } = config;
  const N = benchTokens(shape);
  const sorted = sortTokens(batch.inputIds);
  const U = sorted.uniqueIds.length;
  const scaled = config.positions === "scaled-sinusoidal";
  const rowsShape = `${N}x${H}`;
  return [{
    name: "embedding_forward",
    shape: `${rowsShape}, ${U} distinct ids`,
    // ids N, the distinct word rows U x H, the position table S x H; x N x H written.
    bytes: f32(N + U * H + S * H + N * H),
    flops: null,
    plan: (k, b) =>
      embeddingForward(k, {
        tokens: N,
        seq: S,
        hidden: H,
        vocab: V,
        ids: b.upload("ids", batch.inputIds),
        word: b.random("word", V * H),
        position: scaled
          ? { kind: "scaled-sinusoidal", table: b.random("sinusoid", S * H), scale: b.random("scale", 1) }
          : { kind: "learned", table: b.random("position", S * H) },
        x: b.zeros("x", N * H),
      }),
  }, {
    name: "embedding_backward",
    shape: `${rowsShape}, ${U} distinct ids`,
    // dx (N x H) read once; of tokenOrder the positions (N) and the U distinct ids read; the U distinct
    // dword rows read and written. Position scale: the sinusoid table (S x H) read. Learned table
    // instead: its gradient (S x H) read and written. Partial sums and segment bounds are not counted.
    bytes: f32(N * H + N + U + 2 * U * H + (scaled ? S * H : 2 * S * H)),
    flops: null,
    plan: (k, b) =>
      embeddingBackward(k, {
        tokens: N,
        seq: S,
        hidden: H,
        vocab: V,
        dx: b.random("dx", N * H),
        tokenOrder: b.upload("token order", packTokenOrder(sorted, N)),
        dword: b.zeros("dword", V * H),
        position: scaled
          ? { kind: "scaled-sinusoidal", table: b.random("sinusoid", S * H), grad: b.zeros("dscale", 1) }
          : { kind: "learned", grad: b.zeros("dposition", S * H) },
      }),
  }];
}
