// The sparse MLM head around the decoder matmul: gather the M masked rows of the hidden states, the fused
// softmax cross-entropy forward and backward over their logits, the deterministic loss total, and the
// scatter of the masked rows' gradient back to the full hidden states.
//
// Buffers are sized for `rows` = the most masked tokens a micro-batch may have; the actual M is read from
// count[0], which the host writes with the positions and labels before each submit. Rows past M are
// zero in the gathered states and in the logit gradients, so the fixed-size decoder matmuls that run
// over all `rows` add nothing for them.
//
// The gather's and the scatter's float tensors are each stored as their own alias (f32 unless the
// wrapper sets it to f16), converted to f32 on load and rounded on store; the logits stay f32.

struct Uniforms {
  // Capacity in masked rows.
  rows: u32,
  // hidden / 4.
  hidden4: u32,
  // vocab / 4.
  vocab4: u32,
  // Tokens of the full hidden states (zero_rows).
  tokens: u32,
}

struct LossTotals {
  sum: f32,
  count: u32,
}

override WG: u32 = 256u;
// cross_entropy: hold the row in registers, RESIDENT_VEC4 vec4s per invocation (needs vocab4 <=
// RESIDENT_VEC4 * WG), so it is read once; else the two-pass loop over the row.
override RESIDENT: bool = false;
const RESIDENT_VEC4 = 8u;
const LOWEST = -3.0e38;

@group(0) @binding(0) var<uniform> uniforms: Uniforms;
@group(0) @binding(1) var<storage, read> count: array<u32>;
// gather_rows and scatter_rows: positions [rows] u32, token index of each masked row.
@group(0) @binding(2) var<storage, read> positions: array<u32>;
// gather_rows: hidden states [tokens, hidden] -> gathered [rows, hidden].
alias STATES_T = f32;
alias GATHERED_T = f32;
@group(0) @binding(3) var<storage, read> states: array<vec4<STATES_T>>;
@group(0) @binding(4) var<storage, read_write> gathered: array<vec4<GATHERED_T>>;
// scatter_rows: dgathered [rows, hidden] -> dstates [tokens, hidden]; zero_rows clears dstates first.
alias DGATHERED_T = f32;
alias DSTATES_T = f32;
@group(0) @binding(3) var<storage, read> dgathered: array<vec4<DGATHERED_T>>;
@group(0) @binding(4) var<storage, read_write> dstates: array<vec4<DSTATES_T>>;
@group(0) @binding(1) var<storage, read_write> cleared: array<vec4<DSTATES_T>>;
// cross_entropy: gradScale [1] f32, labels [rows] u32, logits [rows, vocab] (overwritten with their
// gradient), rowLoss [rows] f32.
@group(0) @binding(2) var<storage, read> gradScale: array<f32>;
@group(0) @binding(3) var<storage, read> labels: array<u32>;
@group(0) @binding(4) var<storage, read_write> logits: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> rowLoss: array<f32>;
// cross_entropy_scaled: the loss scale, which multiplies the gradient too.
@group(0) @binding(6) var<storage, read> lossScale: LossScale;
// loss_total: rowLoss again and the running totals the host reads every few steps.
@group(0) @binding(2) var<storage, read> rowLossIn: array<f32>;
@group(0) @binding(3) var<storage, read_write> totals: LossTotals;

var<workgroup> row_count: u32;
var<workgroup> label_logit: f32;

// One thread per vec4 of gathered: gathered[m] = states[positions[m]] for m < M, zero past M.
@compute @workgroup_size(WG)
fn gather_rows(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = flat_index(wid, nwg, lid, WG);
  if (i >= uniforms.rows * uniforms.hidden4) {
    return;
  }
  let m = i / uniforms.hidden4;
  var v = vec4<f32>(0.0);
  if (m < count[0]) {
    v = vec4<f32>(states[positions[m] * uniforms.hidden4 + i % uniforms.hidden4]);
  }
  gathered[i] = vec4<GATHERED_T>(v);
}

// One thread per vec4 of dstates: zero, before scatter_rows fills the masked rows.
@compute @workgroup_size(WG)
fn zero_rows(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = flat_index(wid, nwg, lid, WG);
  if (i < uniforms.tokens * uniforms.hidden4) {
    cleared[i] = vec4<DSTATES_T>(0.0);
  }
}

// One thread per vec4 of dgathered: dstates[positions[m]] = dgathered[m] for m < M (positions are
// distinct, so no two threads write one element).
@compute @workgroup_size(WG)
fn scatter_rows(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = flat_index(wid, nwg, lid, WG);
  let m = i / uniforms.hidden4;
  if (i < uniforms.rows * uniforms.hidden4 && m < count[0]) {
    dstates[positions[m] * uniforms.hidden4 + i % uniforms.hidden4] = vec4<DSTATES_T>(vec4<f32>(dgathered[i]));
  }
}

// One workgroup per logits row m. For m < M: rowLoss[m] = -log softmax(row)[label] and the row becomes
// (softmax - onehot(label)) * gradScale[0]. Past M: the row and its loss become zero.
@compute @workgroup_size(WG)
fn cross_entropy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  softmax_cross_entropy(wid.x, lid, gradScale[0]);
}

// As cross_entropy, the gradient multiplied by the loss scale too (the loss is not).
@compute @workgroup_size(WG)
fn cross_entropy_scaled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  softmax_cross_entropy(wid.x, lid, gradScale[0] * lossScale.scale);
}

// Row `row` of cross_entropy with the gradient's factor `scale`.
fn softmax_cross_entropy(row: u32, lid: u32, scale: f32) {
  let base = row * uniforms.vocab4;
  if (lid == 0u) {
    row_count = count[0];
  }
  if (row >= workgroupUniformLoad(&row_count)) {
    for (var j = lid; j < uniforms.vocab4; j += WG) {
      logits[base + j] = vec4<f32>(0.0);
    }
    if (lid == 0u) {
      rowLoss[row] = 0.0;
    }
    return;
  }
  let label = labels[row];
  if (lid == 0u) {
    label_logit = logits[base + label / 4u][label % 4u];
  }
  if (RESIDENT) {
    resident_row(row, base, label, lid, scale);
  } else {
    streamed_row(row, base, label, lid, scale);
  }
}

// vec4 j of the row at `base`, or LOWEST (exp gives 0) past its end.
fn resident_load(base: u32, j: u32) -> vec4<f32> {
  if (j < uniforms.vocab4) {
    return logits[base + j];
  }
  return vec4<f32>(LOWEST);
}

// The gradient of vec4 j from its exp(v - max) `e`, written if j is in the row.
fn resident_store(base: u32, j: u32, e: vec4<f32>, factor: f32, label: u32, scale: f32) {
  if (j < uniforms.vocab4) {
    let column = vec4<u32>(4u * j) + vec4<u32>(0u, 1u, 2u, 3u);
    let hot = select(vec4<f32>(0.0), vec4<f32>(scale), column == vec4<u32>(label));
    logits[base + j] = e * factor - hot;
  }
}

// The row held in registers: invocation lid holds vec4s lid, lid + WG, ..., lid + 7 WG (named, not an
// array, so that they stay registers), read once; the max, the exps and their sum, the gradient written.
fn resident_row(row: u32, base: u32, label: u32, lid: u32, scale: f32) {
  let v0 = resident_load(base, lid);
  let v1 = resident_load(base, lid + WG);
  let v2 = resident_load(base, lid + 2u * WG);
  let v3 = resident_load(base, lid + 3u * WG);
  let v4 = resident_load(base, lid + 4u * WG);
  let v5 = resident_load(base, lid + 5u * WG);
  let v6 = resident_load(base, lid + 6u * WG);
  let v7 = resident_load(base, lid + 7u * WG);
  let m = max(max(max(max4(v0), max4(v1)), max(max4(v2), max4(v3))), max(max(max4(v4), max4(v5)), max(max4(v6), max4(v7))));
  let row_max = vec4<f32>(workgroup_max(m, lid));
  let e0 = exp(v0 - row_max);
  let e1 = exp(v1 - row_max);
  let e2 = exp(v2 - row_max);
  let e3 = exp(v3 - row_max);
  let e4 = exp(v4 - row_max);
  let e5 = exp(v5 - row_max);
  let e6 = exp(v6 - row_max);
  let e7 = exp(v7 - row_max);
  let s = ((sum4(e0) + sum4(e1)) + (sum4(e2) + sum4(e3))) + ((sum4(e4) + sum4(e5)) + (sum4(e6) + sum4(e7)));
  let row_sum = workgroup_sum(s, lid);
  if (lid == 0u) {
    rowLoss[row] = log(row_sum) + (row_max.x - label_logit);
  }
  let factor = scale / row_sum;
  resident_store(base, lid, e0, factor, label, scale);
  resident_store(base, lid + WG, e1, factor, label, scale);
  resident_store(base, lid + 2u * WG, e2, factor, label, scale);
  resident_store(base, lid + 3u * WG, e3, factor, label, scale);
  resident_store(base, lid + 4u * WG, e4, factor, label, scale);
  resident_store(base, lid + 5u * WG, e5, factor, label, scale);
  resident_store(base, lid + 6u * WG, e6, factor, label, scale);
  resident_store(base, lid + 7u * WG, e7, factor, label, scale);
}

// The row streamed twice: one read pass keeps a running (max, sum of exp) per invocation; the workgroup's
// max and rescaled sum follow; a second pass writes the gradient.
fn streamed_row(row: u32, base: u32, label: u32, lid: u32, scale: f32) {
  var m = LOWEST;
  var s = 0.0;
  for (var j = lid; j < uniforms.vocab4; j += WG) {
    let v = logits[base + j];
    let next = max(m, max4(v));
    let e = exp(v - vec4<f32>(next));
    s = s * exp(m - next) + (e.x + e.y) + (e.z + e.w);
    m = next;
  }
  // The row's max, then each thread's sum rescaled to it (workgroup_max and workgroup_sum: the loader
  // adds a variant of them).
  let row_max = workgroup_max(m, lid);
  let row_sum = workgroup_sum(s * exp(m - row_max), lid);
  if (lid == 0u) {
    rowLoss[row] = log(row_sum) + (row_max - label_logit);
  }
  let factor = scale / row_sum;
  for (var j = lid; j < uniforms.vocab4; j += WG) {
    let column = vec4<u32>(4u * j) + vec4<u32>(0u, 1u, 2u, 3u);
    let hot = select(vec4<f32>(0.0), vec4<f32>(scale), column == vec4<u32>(label));
    logits[base + j] = exp(logits[base + j] - vec4<f32>(row_max)) * factor - hot;
  }
}

// One workgroup: totals.sum += the sum of rowLoss (workgroup_sum), totals.count += M.
@compute @workgroup_size(WG)
fn loss_total(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var i = lid; i < uniforms.rows; i += WG) {
    s += rowLossIn[i];
  }
  let total = workgroup_sum(s, lid);
  if (lid == 0u) {
    totals.sum += total;
    totals.count += count[0];
  }
}
