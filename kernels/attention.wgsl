// The softmax of bidirectional multi-head self-attention, forward and backward. The attention's products
// (two forward, four backward) run as batched matmuls (matmul.wgsl, one product per (sequence, head)); these kernels work on
// the [batch, heads, SEQ, SEQ] score matrix between them, in place:
//
//   forward:  probs = QK^T (matmul)  ->  softmax_forward (or softmax_forward_resident):
//             probs = softmax(scale * probs) over attended keys
//             out = probs V (matmul; with dropout, out = dropped V)
//   backward: dV = probs^T dO, grads = dO V^T (matmuls)  ->  softmax_backward:
//             probs = scale * probs * (grads - rowsum(probs * grads))  ->  dQ = probs K, dK = probs^T Q
//
// Finetuning drops probabilities (PROBS_DROPOUT): dropped = probs * keep / (1 - p), the mask a hash of
// (seed, flat probs index) as in dropout.wgsl. probs stay undropped for the backward, which rebuilds
// `dropped` (dropped_probs) for dV and scales grads by the same mask.
//
// A row is reduced by LANES invocations with lanes_reduce (the loader adds it: shuffles within a subgroup
// where the device has subgroups, else a tree in workgroup memory), the same on every run.
//
// The float buffers may be stored as f16 (each by its own alias below, see src/gpu/kernels.ts): the
// kernels widen on load, compute in f32 and round on store.

struct Uniforms {
  // batch * heads * SEQ.
  rows: u32,
  heads: u32,
  // 1 if keyMask is bound and used.
  hasMask: u32,
  // 1 / sqrt(headDim), rounded to f32 on the host.
  scale: f32,
  // Probability dropout (PROBS_DROPOUT): keep iff hash >> 8 >= dropThreshold, kept values times
  // dropScale = 1 / (1 - p); the mask's seed is seeds[seedIndex].
  dropThreshold: u32,
  dropScale: f32,
  seedIndex: u32,
}

override SEQ: u32;
// Invocations per row, a power of two (with subgroups, at most the smallest subgroup); WG / LANES rows per
// workgroup.
override LANES: u32 = 32u;
override WG: u32 = 256u;
override PROBS_DROPOUT: bool = false;
// Below any real score: the running maximum starts here and masked keys never raise it.
const LOWEST = -3.0e38;
// softmax_forward_resident: vec4s of a row each lane holds (needs SEQ % 4 == 0 and
// SEQ <= 4 * RESIDENT_VEC4 * LANES).
const RESIDENT_VEC4 = 4u;

// Storage types of probs, dropped, grads and rebuilt.
alias P_T = f32;
alias D_T = f32;
alias G_T = f32;
alias R_T = f32;

@group(0) @binding(0) var<uniform> uniforms: Uniforms;
@group(0) @binding(1) var<storage, read_write> probs: array<P_T>;
@group(0) @binding(2) var<storage, read> seeds: array<u32>;
// softmax_forward: the key mask [batch * SEQ] and, with dropout, the dropped probabilities (written).
@group(0) @binding(3) var<storage, read> keyMask: array<u32>;
@group(0) @binding(4) var<storage, read_write> dropped: array<D_T>;
// softmax_forward_resident: the same buffers as vec4s.
@group(0) @binding(1) var<storage, read_write> probs4: array<vec4<P_T>>;
@group(0) @binding(3) var<storage, read> keyMask4: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read_write> dropped4: array<vec4<D_T>>;
// softmax_backward: the gradient of the (dropped) probabilities.
@group(0) @binding(3) var<storage, read> grads: array<G_T>;
// dropped_probs: the dropped probabilities, written.
@group(0) @binding(3) var<storage, read_write> rebuilt: array<R_T>;


// keep / (1 - p) of flat probs index `index` for the mask of seed `seed`.
fn drop_factor(seed: u32, index: u32) -> f32 {
  return select(0.0, uniforms.dropScale, (hash_index(pcg(seed), index) >> 8u) >= uniforms.dropThreshold);
}

// The row of this invocation (or rows past the end, which compute nothing but join the barriers).
fn row_of(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return ((wid.y * nwg.x + wid.x) * WG + lid) / LANES;
}

fn attends(row: u32, key: u32) -> bool {
  return uniforms.hasMask == 0u || keyMask[row / (uniforms.heads * SEQ) * SEQ + key] != 0u;
}

// Row-wise softmax of the scaled scores over the attended keys (online maximum and sum in one pass, then
// the normalized values); a row with no attended key gets all-zero probabilities.
@compute @workgroup_size(WG)
fn softmax_forward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = row_of(wid, nwg, lid);
  let live = row < uniforms.rows;
  let base = row * SEQ;
  // (running maximum, sum of exp(score - maximum)) of this lane's keys.
  var stats = vec2<f32>(LOWEST, 0.0);
  for (var c = lid % LANES; live && c < SEQ; c += LANES) {
    if (attends(row, c)) {
      let s = f32(probs[base + c]) * uniforms.scale;
      let m = max(stats.x, s);
      stats = vec2<f32>(m, stats.y * exp(stats.x - m) + exp(s - m));
    }
  }
  let row_max = lanes_reduce(lid, vec2<f32>(stats.x, 0.0), true).x;
  let row_sum = lanes_reduce(lid, vec2<f32>(0.0, stats.y * exp(stats.x - row_max)), false).y;
  let inverse = select(0.0, 1.0 / row_sum, row_sum > 0.0);
  let seed = seeds[uniforms.seedIndex];
  for (var c = lid % LANES; live && c < SEQ; c += LANES) {
    var p = 0.0;
    if (attends(row, c)) {
      p = exp(f32(probs[base + c]) * uniforms.scale - row_max) * inverse;
    }
    probs[base + c] = P_T(p);
    if (PROBS_DROPOUT) {
      dropped[base + c] = D_T(p * drop_factor(seed, base + c));
    }
  }
}

// vec4 j of the scaled scores of `row` (its first vec4 at base4), LOWEST at keys not attended, past the
// row's end and on rows past the last.
fn resident_scores(live: bool, row: u32, base4: u32, j: u32) -> vec4<f32> {
  if (!live || j >= SEQ / 4u) {
    return vec4<f32>(LOWEST);
  }
  let s = vec4<f32>(probs4[base4 + j]) * uniforms.scale;
  if (uniforms.hasMask == 0u) {
    return s;
  }
  let attended = keyMask4[row / (uniforms.heads * SEQ) * (SEQ / 4u) + j] != vec4<u32>(0u);
  return select(vec4<f32>(LOWEST), s, attended);
}

// exp(v - row_max) at attended keys, 0 at the others (so a row with none sums to 0).
fn resident_exp(v: vec4<f32>, row_max: f32) -> vec4<f32> {
  return select(vec4<f32>(0.0), exp(v - vec4<f32>(row_max)), v > vec4<f32>(LOWEST));
}

// Stores vec4 j of the probabilities (e / row sum) and, with dropout, of the dropped ones.
fn resident_store(base4: u32, j: u32, e: vec4<f32>, inverse: f32, seed: u32) {
  if (j >= SEQ / 4u) {
    return;
  }
  let p = e * inverse;
  probs4[base4 + j] = vec4<P_T>(p);
  if (PROBS_DROPOUT) {
    let i = (base4 + j) * 4u;
    let keep = vec4<f32>(
      drop_factor(seed, i),
      drop_factor(seed, i + 1u),
      drop_factor(seed, i + 2u),
      drop_factor(seed, i + 3u),
    );
    dropped4[base4 + j] = vec4<D_T>(p * keep);
  }
}

// softmax_forward with the row held in registers: lane l of a row holds its vec4s l, l + LANES, l + 2 LANES
// and l + 3 LANES (named, not an array, so that they stay registers), read once and exponentiated once,
// where softmax_forward reads the row twice.
@compute @workgroup_size(WG)
fn softmax_forward_resident(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = row_of(wid, nwg, lid);
  let live = row < uniforms.rows;
  let base4 = row * (SEQ / 4u);
  let lane = lid % LANES;
  let v0 = resident_scores(live, row, base4, lane);
  let v1 = resident_scores(live, row, base4, lane + LANES);
  let v2 = resident_scores(live, row, base4, lane + 2u * LANES);
  let v3 = resident_scores(live, row, base4, lane + 3u * LANES);
  let m = max(max(max4(v0), max4(v1)), max(max4(v2), max4(v3)));
  let row_max = lanes_reduce(lid, vec2<f32>(m, 0.0), true).x;
  let e0 = resident_exp(v0, row_max);
  let e1 = resident_exp(v1, row_max);
  let e2 = resident_exp(v2, row_max);
  let e3 = resident_exp(v3, row_max);
  let s = (sum4(e0) + sum4(e1)) + (sum4(e2) + sum4(e3));
  let row_sum = lanes_reduce(lid, vec2<f32>(0.0, s), false).y;
  let inverse = select(0.0, 1.0 / row_sum, row_sum > 0.0);
  let seed = seeds[uniforms.seedIndex];
  if (live) {
    resident_store(base4, lane, e0, inverse, seed);
    resident_store(base4, lane + LANES, e1, inverse, seed);
    resident_store(base4, lane + 2u * LANES, e2, inverse, seed);
    resident_store(base4, lane + 3u * LANES, e3, inverse, seed);
  }
}

// The gradient of the undropped probability at flat index i: the dropped one's, times the same mask.
fn probs_grad(seed: u32, i: u32) -> f32 {
  let g = f32(grads[i]);
  if (PROBS_DROPOUT) {
    return g * drop_factor(seed, i);
  }
  return g;
}

// Score gradients from the probabilities and their gradient, in place of the probabilities.
@compute @workgroup_size(WG)
fn softmax_backward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = row_of(wid, nwg, lid);
  let live = row < uniforms.rows;
  let base = row * SEQ;
  let seed = seeds[uniforms.seedIndex];
  var dot = 0.0;
  for (var c = lid % LANES; live && c < SEQ; c += LANES) {
    dot += f32(probs[base + c]) * probs_grad(seed, base + c);
  }
  let row_dot = lanes_reduce(lid, vec2<f32>(0.0, dot), false).y;
  for (var c = lid % LANES; live && c < SEQ; c += LANES) {
    probs[base + c] = P_T(uniforms.scale * f32(probs[base + c]) * (probs_grad(seed, base + c) - row_dot));
  }
}

// rebuilt = probs * keep / (1 - p): the forward's dropped probabilities, for the backward's dV.
@compute @workgroup_size(WG)
fn dropped_probs(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid;
  if (i < uniforms.rows * SEQ) {
    rebuilt[i] = R_T(f32(probs[i]) * drop_factor(seeds[uniforms.seedIndex], i));
  }
}
