// LayerNorm over rows of `cols` values, forward and backward, as PyTorch's (biased variance, eps inside
// the square root): y = (x - mean) * rstd * weight + bias with rstd = 1 / sqrt(var + eps).
//
// One workgroup per row (forward) or per block of rows (backward); the row is read as vec4s (cols is a
// multiple of 4) strided over the workgroup's invocations, so reads are coalesced. Every reduction is a
// fixed tree or a fixed sequence, never atomics, so the results are the same bit for bit on every run.
// The grid is 2-D when one dimension's 65535 workgroups are not enough: the flat workgroup id is
// wid.y * nwg.x + wid.x.

// Invocations per workgroup of the row kernels; a power of two (tree reduction). 768 columns are 192
// vec4s: 3 per invocation.
override WG: u32 = 64;
// vec4 columns of the backward's per-workgroup dweight/dbias accumulators: the wrapper sets it to cols / 4.
override ACC_COLS4: u32 = 192;
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

var<workgroup> partial: array<vec2<f32>, WG>;

// The sum of `v` over the workgroup by a fixed tree; every invocation gets the total.
fn workgroup_sum(v: vec2<f32>, lid: u32) -> vec2<f32> {
  partial[lid] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier(); // everyone has read the total before `partial` is reused
  return total;
}

fn sum4(v: vec4<f32>) -> f32 {
  return (v.x + v.y) + (v.z + v.w);
}

// layernorm_forward: y, and the mean and rstd of each row for the backward. Two passes over the row
// (mean, then the mean of squared deviations) rather than E[x^2] - E[x]^2, which cancels in f32 when
// |mean| >> std; the second and third reads of a row come from cache.
@group(0) @binding(1) var<storage, read> fwd_x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> fwd_weight: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> fwd_bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> fwd_y: array<vec4<f32>>;
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
  let mean = workgroup_sum(vec2<f32>(sum, 0.0), lid).x * inv_cols;
  var squares = 0.0;
  for (var c = lid; c < cols4; c += WG) {
    let d = fwd_x[base + c] - mean;
    squares += dot(d, d);
  }
  let rstd = inverseSqrt(workgroup_sum(vec2<f32>(squares, 0.0), lid).x * inv_cols + shape.eps);
  for (var c = lid; c < cols4; c += WG) {
    fwd_y[base + c] = (fwd_x[base + c] - mean) * rstd * fwd_weight[c] + fwd_bias[c];
  }
  if (lid == 0u) {
    fwd_mean[row] = mean;
    fwd_rstd[row] = rstd;
  }
}

// layernorm_backward, stage 1 of 2. Each workgroup takes a block of rows_per_block rows: for each row it
// writes dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * weight, xhat = (x - mean) * rstd,
// and adds the row's dy * xhat and dy to per-column accumulators in workgroup memory (each column owned
// by one invocation, so no races). The block's column sums go to `bwd_partials`, [blocks][dweight cols4,
// dbias cols4]; stage 2 adds them up.
@group(0) @binding(1) var<storage, read> bwd_dy: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bwd_x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bwd_weight: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> bwd_mean: array<f32>;
@group(0) @binding(5) var<storage, read> bwd_rstd: array<f32>;
@group(0) @binding(6) var<storage, read_write> bwd_dx: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> bwd_partials: array<vec4<f32>>;
// Read only when RESIDUAL; otherwise a 16-byte placeholder is bound.
@group(0) @binding(8) var<storage, read> bwd_residual: array<vec4<f32>>;

var<workgroup> dweight_sums: array<vec4<f32>, ACC_COLS4>;
var<workgroup> dbias_sums: array<vec4<f32>, ACC_COLS4>;

@compute @workgroup_size(WG)
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
  for (var c = lid; c < cols4; c += WG) {
    dweight_sums[c] = vec4<f32>(0.0);
    dbias_sums[c] = vec4<f32>(0.0);
  }
  for (var row = first; row < last; row++) {
    let base = row * cols4;
    let mean = bwd_mean[row];
    let rstd = bwd_rstd[row];
    var s = vec2<f32>(0.0);
    for (var c = lid; c < cols4; c += WG) {
      let xhat = (bwd_x[base + c] - mean) * rstd;
      let g = bwd_dy[base + c] * bwd_weight[c];
      s += vec2<f32>(sum4(g), dot(g, xhat));
    }
    let means = workgroup_sum(s, lid) * inv_cols;
    for (var c = lid; c < cols4; c += WG) {
      let dy = bwd_dy[base + c];
      let xhat = (bwd_x[base + c] - mean) * rstd;
      var dx = rstd * (dy * bwd_weight[c] - means.x - xhat * means.y);
      if (RESIDUAL) {
        dx += bwd_residual[base + c];
      }
      bwd_dx[base + c] = dx;
      dweight_sums[c] += dy * xhat;
      dbias_sums[c] += dy;
    }
  }
  let out = block * 2u * cols4;
  for (var c = lid; c < cols4; c += WG) {
    bwd_partials[out + c] = dweight_sums[c];
    bwd_partials[out + cols4 + c] = dbias_sums[c];
  }
}

// layernorm_param_grads, stage 2 of 2: dweight += the sum over blocks of the partial dweights, dbias the
// same. A workgroup takes 32 adjacent vec4 columns (coalesced reads) with 8 lanes each; lane l sums
// blocks l, l + 8, ... in order, then lane 0 adds the 8 lane sums in order.
const PG_COLS4: u32 = 32u;
const PG_LANES: u32 = 8u;

@group(0) @binding(1) var<storage, read> pg_partials: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> pg_dweight: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> pg_dbias: array<vec4<f32>>;

var<workgroup> lane_dweight: array<array<vec4<f32>, PG_COLS4>, PG_LANES>;
var<workgroup> lane_dbias: array<array<vec4<f32>, PG_COLS4>, PG_LANES>;

@compute @workgroup_size(PG_COLS4, PG_LANES)
fn layernorm_param_grads(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  let cols4 = shape.cols4;
  let c = wid.x * PG_COLS4 + lid.x;
  let blocks = (shape.rows + shape.rows_per_block - 1u) / shape.rows_per_block;
  var dweight = vec4<f32>(0.0);
  var dbias = vec4<f32>(0.0);
  if (c < cols4) {
    for (var b = lid.y; b < blocks; b += PG_LANES) {
      dweight += pg_partials[b * 2u * cols4 + c];
      dbias += pg_partials[b * 2u * cols4 + cols4 + c];
    }
  }
  lane_dweight[lid.y][lid.x] = dweight;
  lane_dbias[lid.y][lid.x] = dbias;
  workgroupBarrier();
  if (lid.y == 0u && c < cols4) {
    for (var l = 1u; l < PG_LANES; l++) {
      dweight += lane_dweight[l][lid.x];
      dbias += lane_dbias[l][lid.x];
    }
    pg_dweight[c] += dweight;
    pg_dbias[c] += dbias;
  }
}
