// LayerNorm over rows of `cols` values, forward and backward, as PyTorch's (biased variance, eps inside
// the square root): y = (x - mean) * rstd * weight + bias with rstd = 1 / sqrt(var + eps).
//
// The forward takes one workgroup per row, the backward one per block of rows; rows are read as vec4s
// (cols is a multiple of 4) strided over a row's invocations, so reads are coalesced. The forward's sums
// are workgroup_sum (the loader adds reduce_subgroups.wgsl or reduce_workgroup.wgsl); the backward's row
// sums start with lanes_reduce where the device has subgroups (lanes_subgroups.wgsl), else with a fixed
// tree in workgroup memory, and its column sums are fixed sequences. Never atomics: the results are the
// same bit for bit on every run of one device.
// The grid is 2-D when one dimension's 65535 workgroups are not enough: the flat workgroup id is
// wid.y * nwg.x + wid.x.
//
// The forward's y and the backward's dy may be stored as f16 (the wrapper sets their aliases below): they
// are converted to f32 on load and rounded on store, so all the arithmetic stays f32.

// Invocations per workgroup of the forward; a power of two (the tree of reduce_workgroup.wgsl). 768 columns are 192 vec4s:
// 3 per invocation.
override WG: u32 = 64;
// Backward: dx also adds `bwd_residual` (the gradient arriving through the residual connection around
// the normalized branch), which saves the model a separate add pass per LayerNorm.
override RESIDUAL: bool = false;

struct Shape {
  rows: u32,
  // cols / 4.
  cols4: u32,
  eps: f32,
  // Backward: rows per block of the first reduction stage.
  rows_per_block: u32,
}

@group(0) @binding(0) var<uniform> shape: Shape;

// layernorm_forward: y, and the mean and rstd of each row for the backward. Two passes over the row
// (mean, then the mean of squared deviations) rather than E[x^2] - E[x]^2, which cancels in f32 when
// |mean| >> std; the second and third reads of a row come from cache.
alias FWD_Y_T = f32;

@group(0) @binding(1) var<storage, read> fwd_x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> fwd_weight: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> fwd_bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> fwd_y: array<vec4<FWD_Y_T>>;
@group(0) @binding(5) var<storage, read_write> fwd_mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> fwd_rstd: array<f32>;

@compute @workgroup_size(WG)
fn layernorm_forward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= shape.rows) {
    return;
  }
  let cols4 = shape.cols4;
  let inv_cols = 1.0 / f32(4u * cols4);
  let base = row * cols4;
  var sum = 0.0;
  for (var c = lid; c < cols4; c += WG) {
    sum += sum4(fwd_x[base + c]);
  }
  let mean = workgroup_sum(sum, lid) * inv_cols;
  var squares = 0.0;
  for (var c = lid; c < cols4; c += WG) {
    let d = fwd_x[base + c] - mean;
    squares += dot(d, d);
  }
  let rstd = inverseSqrt(workgroup_sum(squares, lid) * inv_cols + shape.eps);
  for (var c = lid; c < cols4; c += WG) {
    fwd_y[base + c] = vec4<FWD_Y_T>((fwd_x[base + c] - mean) * rstd * fwd_weight[c] + fwd_bias[c]);
  }
  if (lid == 0u) {
    fwd_mean[row] = mean;
    fwd_rstd[row] = rstd;
  }
}

// layernorm_backward, stage 1 of 2. dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * weight
// and xhat = (x - mean) * rstd; each workgroup also sums dy * xhat and dy over its block of rows_per_block
// rows into one row of `bwd_partials`, [blocks][dweight cols4, dbias cols4], which stage 2 adds up.
//
// A workgroup works on BWD_WG / TPR rows at once, TPR invocations a row. Invocation `lane` of a row holds
// its K <= 4 vec4 columns lane + k * TPR in registers: one round of loads per row (dy, x and the residual
// issued together, and those of all the rows in flight overlapping), a two-level row reduction, then dx,
// and per-column dweight/dbias sums that stay in registers until the block ends. The k = 0..3 columns are
// written out rather than looped over: the driver does not unroll such loops, and then every load waits
// for the one before it and local arrays spill to memory.
const BWD_WG: u32 = 256u;
// Invocations per row, a power of two dividing BWD_WG: the wrapper picks the fewest with K <= 4.
override TPR: u32 = 64u;
// vec4 columns per invocation: ceil(cols4 / TPR), at most 4. Columns k >= K fold away at compile time.
override K: u32 = 3u;
// Row sums by lanes_reduce over LANES consecutive lanes (the wrapper: min(TPR, the smallest subgroup)),
// then over the TPR / LANES group sums: one barrier a round instead of two. Set only on a device with
// subgroups; without, a workgroup-memory tree of 8 lanes replaces lanes_reduce.
override SUBGROUP_ROWS: bool = false;
override LANES: u32 = 8u;
// (BWD_WG / TPR) * cols4: the row slots' dweight (then dbias) sums, combined in slot order at the end.
override SLOT_COLS4: u32 = 768u;

alias BWD_DY_T = f32;

@group(0) @binding(1) var<storage, read> bwd_dy: array<vec4<BWD_DY_T>>;
@group(0) @binding(2) var<storage, read> bwd_x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bwd_weight: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> bwd_mean: array<f32>;
@group(0) @binding(5) var<storage, read> bwd_rstd: array<f32>;
@group(0) @binding(6) var<storage, read_write> bwd_dx: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> bwd_partials: array<vec4<f32>>;
// Read only when RESIDUAL; otherwise a 16-byte placeholder is bound.
@group(0) @binding(8) var<storage, read> bwd_residual: array<vec4<f32>>;

var<workgroup> lane_sums: array<vec2<f32>, BWD_WG>;
// Two halves, alternating by round with SUBGROUP_ROWS: a round's sums are read after its one barrier and
// not overwritten until the round after next, behind the next round's barrier.
var<workgroup> group_sums: array<vec2<f32>, 2u * BWD_WG>;
var<workgroup> slot_sums: array<vec4<f32>, SLOT_COLS4>;

// Whether the invocation's column k (lane + k * TPR) exists.
fn has_column(k: u32, lane: u32) -> bool {
  return k < K && lane + k * TPR < shape.cols4;
}

// Column k of a row at `base`: dy, x and the residual; zero where the column does not exist.
fn load_column(k: u32, lane: u32, base: u32) -> mat3x4<f32> {
  var m = mat3x4<f32>();
  if (has_column(k, lane)) {
    let i = base + lane + k * TPR;
    m[0] = vec4<f32>(bwd_dy[i]);
    m[1] = bwd_x[i];
    if (RESIDUAL) {
      m[2] = bwd_residual[i];
    }
  }
  return m;
}

fn load_weight(k: u32, lane: u32) -> vec4<f32> {
  if (has_column(k, lane)) {
    return bwd_weight[lane + k * TPR];
  }
  return vec4<f32>(0.0);
}

// The column's terms of the row sums of g and g * xhat (zero for a missing column: dy and weight are 0).
fn row_terms(m: mat3x4<f32>, weight: vec4<f32>, mean: f32, rstd: f32) -> vec2<f32> {
  let g = m[0] * weight;
  return vec2<f32>(sum4(g), dot(g, (m[1] - mean) * rstd));
}

// Writes the column's dx and adds its dy * xhat and dy to `sums` (dweight, dbias).
fn finish_column(
  k: u32,
  lane: u32,
  base: u32,
  m: mat3x4<f32>,
  weight: vec4<f32>,
  mean: f32,
  rstd: f32,
  means: vec2<f32>,
  sums: ptr<function, mat2x4<f32>>,
) {
  if (!has_column(k, lane)) {
    return;
  }
  let xhat = (m[1] - mean) * rstd;
  var dx = rstd * (m[0] * weight - means.x - xhat * means.y);
  if (RESIDUAL) {
    dx += m[2];
  }
  bwd_dx[base + lane + k * TPR] = dx;
  (*sums)[0] += m[0] * xhat;
  (*sums)[1] += m[0];
}

fn stash_column(k: u32, lane: u32, slot: u32, v: vec4<f32>) {
  if (has_column(k, lane)) {
    slot_sums[slot * shape.cols4 + lane + k * TPR] = v;
  }
}

// Partial row `out` = the sums over the slots, in slot order, of what the slots stashed.
fn store_slot_sums(lid: u32, out: u32) {
  let cols4 = shape.cols4;
  workgroupBarrier();
  for (var c = lid; c < cols4; c += BWD_WG) {
    var total = slot_sums[c];
    for (var s = 1u; s < BWD_WG / TPR; s++) {
      total += slot_sums[s * cols4 + c];
    }
    bwd_partials[out + c] = total;
  }
  workgroupBarrier(); // slot_sums is read before it is written again
}

@compute @workgroup_size(BWD_WG)
fn layernorm_backward(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let block = wid.y * nwg.x + wid.x;
  let first = block * shape.rows_per_block;
  if (first >= shape.rows) {
    return;
  }
  let last = min(first + shape.rows_per_block, shape.rows);
  let cols4 = shape.cols4;
  let inv_cols = 1.0 / f32(4u * cols4);
  let slot = lid / TPR;
  let lane = lid % TPR;
  // Without subgroups, the row reduction: groups of `fan` lanes, then the TPR / fan group sums, in order.
  let fan = min(TPR, 8u);
  let row_base = slot * TPR;
  let w0 = load_weight(0u, lane);
  let w1 = load_weight(1u, lane);
  let w2 = load_weight(2u, lane);
  let w3 = load_weight(3u, lane);
  var sums0 = mat2x4<f32>();
  var sums1 = mat2x4<f32>();
  var sums2 = mat2x4<f32>();
  var sums3 = mat2x4<f32>();
  var iteration = 0u;
  for (var round = first; round < last; round += BWD_WG / TPR) {
    let row = round + slot;
    let live = row < last;
    let base = row * cols4;
    var m0 = mat3x4<f32>();
    var m1 = mat3x4<f32>();
    var m2 = mat3x4<f32>();
    var m3 = mat3x4<f32>();
    var mean = 0.0;
    var rstd = 0.0;
    if (live) {
      mean = bwd_mean[row];
      rstd = bwd_rstd[row];
      m0 = load_column(0u, lane, base);
      m1 = load_column(1u, lane, base);
      m2 = load_column(2u, lane, base);
      m3 = load_column(3u, lane, base);
    }
    let terms = row_terms(m0, w0, mean, rstd) + row_terms(m1, w1, mean, rstd) + row_terms(m2, w2, mean, rstd) +
      row_terms(m3, w3, mean, rstd);
    var means = vec2<f32>(0.0);
    if (SUBGROUP_ROWS) {
      let half = iteration % 2u * BWD_WG;
      let group = lanes_reduce(lid, terms, false);
      if (lane % LANES == 0u) {
        group_sums[half + row_base + lane / LANES] = group;
      }
      workgroupBarrier();
      for (var i = 0u; i < TPR / LANES; i++) {
        means += group_sums[half + row_base + i];
      }
    } else {
      lane_sums[lid] = terms;
      workgroupBarrier();
      if (lane < TPR / fan) {
        var t = vec2<f32>(0.0);
        for (var i = 0u; i < fan; i++) {
          t += lane_sums[row_base + lane * fan + i];
        }
        group_sums[row_base + lane] = t;
      }
      workgroupBarrier();
      for (var i = 0u; i < TPR / fan; i++) {
        means += group_sums[row_base + i];
      }
    }
    means *= inv_cols;
    if (live) {
      finish_column(0u, lane, base, m0, w0, mean, rstd, means, &sums0);
      finish_column(1u, lane, base, m1, w1, mean, rstd, means, &sums1);
      finish_column(2u, lane, base, m2, w2, mean, rstd, means, &sums2);
      finish_column(3u, lane, base, m3, w3, mean, rstd, means, &sums3);
    }
    iteration++;
  }
  let out = block * 2u * cols4;
  stash_column(0u, lane, slot, sums0[0]);
  stash_column(1u, lane, slot, sums1[0]);
  stash_column(2u, lane, slot, sums2[0]);
  stash_column(3u, lane, slot, sums3[0]);
  store_slot_sums(lid, out);
  stash_column(0u, lane, slot, sums0[1]);
  stash_column(1u, lane, slot, sums1[1]);
  stash_column(2u, lane, slot, sums2[1]);
  stash_column(3u, lane, slot, sums3[1]);
  store_slot_sums(lid, out + cols4);
}

// layernorm_param_grads, stage 2 of 2: dweight += the sum over blocks of the partial dweights, dbias the
// same. The partial rows are 2 * cols4 vec4 columns; a workgroup takes PG_COLS4 adjacent ones with
// PG_LANES lanes each, so the grid has enough workgroups to keep the reads of the few-MiB scratch in
// flight. Lane l sums blocks l, l + PG_LANES, ... in order, four loads at a time (written out, as above);
// lane 0 adds the lane sums in order.
const PG_COLS4: u32 = 4u;
const PG_LANES: u32 = 64u;

@group(0) @binding(1) var<storage, read> pg_partials: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> pg_dweight: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> pg_dbias: array<vec4<f32>>;

var<workgroup> pg_lane_sums: array<array<vec4<f32>, PG_COLS4>, PG_LANES>;

// Column c of partial row b, zero past the last block.
fn partial_at(b: u32, blocks: u32, c: u32) -> vec4<f32> {
  if (b < blocks) {
    return pg_partials[b * 2u * shape.cols4 + c];
  }
  return vec4<f32>(0.0);
}

@compute @workgroup_size(PG_COLS4, PG_LANES)
fn layernorm_param_grads(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let cols4 = shape.cols4;
  let c = wid.x * PG_COLS4 + lid.x;
  let blocks = (shape.rows + shape.rows_per_block - 1u) / shape.rows_per_block;
  var sum = vec4<f32>(0.0);
  if (c < 2u * cols4) {
    for (var b = lid.y; b < blocks; b += 4u * PG_LANES) {
      let v0 = partial_at(b, blocks, c);
      let v1 = partial_at(b + PG_LANES, blocks, c);
      let v2 = partial_at(b + 2u * PG_LANES, blocks, c);
      let v3 = partial_at(b + 3u * PG_LANES, blocks, c);
      sum += v0;
      sum += v1;
      sum += v2;
      sum += v3;
    }
  }
  pg_lane_sums[lid.y][lid.x] = sum;
  workgroupBarrier();
  if (lid.y == 0u && c < 2u * cols4) {
    for (var l = 1u; l < PG_LANES; l++) {
      sum += pg_lane_sums[l][lid.x];
    }
    if (c < cols4) {
      pg_dweight[c] += sum;
    } else {
      pg_dbias[c - cols4] += sum;
    }
  }
}
