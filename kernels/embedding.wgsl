// Token + position embeddings, forward and backward.
//
// Forward: x[t] = word[ids[t]] + position[t % seq], where position is the learned table or
// positionScale * the sinusoid table. Backward, deterministic without float atomics:
// - dword: one workgroup per (distinct id, column chunk) sums that id's dx rows in the order the host
//   sorted them and adds the sum to dword[id] (which the tied decoder also accumulates into);
// - learned positions: one thread per (position, column) sums dx over the batch in order;
// - position scale: dot(dx, sinusoid) reduced in two fixed-shape stages (per-workgroup partials, then one
//   workgroup), added to the 1-element gradient.

struct Params {
  tokens: u32,
  seq: u32,
  // hidden / 4.
  hidden4: u32,
  // embedding_backward_word: segment slots in tokenOrder (min(tokens, vocab));
  // embedding_scale_partials / embedding_scale_total: number of partial sums.
  count: u32,
}

// Threads per workgroup of the element-wise kernels and the scale reduction (a power of two).
override WG: u32 = 256u;
// embedding_backward_word: vec4 columns per workgroup x lanes splitting a long segment.
override COLS4: u32 = 64u;
override LANES: u32 = 4u;

@group(0) @binding(0) var<uniform> params: Params;
// Forward.
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> word: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> position: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> x: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> positionScale: array<f32>;
// Backward: dx [tokens, hidden] at binding 1 in every entry point.
@group(0) @binding(1) var<storage, read> dx: array<vec4<f32>>;
// embedding_backward_word: tokenOrder = [order (tokens) | segmentStart (tokens + 1) | uniqueIds (tokens)].
@group(0) @binding(2) var<storage, read> tokenOrder: array<u32>;
@group(0) @binding(3) var<storage, read_write> dword: array<vec4<f32>>;
// embedding_backward_learned.
@group(0) @binding(2) var<storage, read_write> dposition: array<vec4<f32>>;
// embedding_scale_partials: the sinusoid table [seq, hidden] and one partial sum per workgroup.
@group(0) @binding(2) var<storage, read> sinusoid: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;
// embedding_scale_total: the partials again and the 1-element gradient.
@group(0) @binding(1) var<storage, read> partialsIn: array<f32>;
@group(0) @binding(2) var<storage, read_write> dscale: array<f32>;

var<workgroup> laneSums: array<vec4<f32>, COLS4 * LANES>;
var<workgroup> sums: array<f32, WG>;

fn flatIndex(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid;
}

fn embed(i: u32, scale: f32) {
  if (i >= params.tokens * params.hidden4) {
    return;
  }
  let t = i / params.hidden4;
  let e = i % params.hidden4;
  x[i] = word[ids[t] * params.hidden4 + e] + scale * position[(t % params.seq) * params.hidden4 + e];
}

// One thread per vec4 of x; position is the learned table.
@compute @workgroup_size(WG)
fn embedding_forward_learned(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  embed(flatIndex(wid, nwg, lid), 1.0);
}

// One thread per vec4 of x; position is the sinusoid table, scaled by positionScale[0].
@compute @workgroup_size(WG)
fn embedding_forward_scaled(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  embed(flatIndex(wid, nwg, lid), positionScale[0]);
}

// Workgroups (segment slot, column chunk); slots stride by the grid width. Lane l sums the segment's
// rows l, l + LANES, ...; lane 0 adds the lanes in order. Empty slots (past the distinct ids) add nothing.
@compute @workgroup_size(COLS4 * LANES)
fn embedding_backward_word(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let n = params.tokens;
  let col = lid % COLS4;
  let lane = lid / COLS4;
  let e = wid.y * COLS4 + col;
  let inside = e < params.hidden4;
  for (var slot = wid.x; slot < params.count; slot += nwg.x) {
    let start = tokenOrder[n + slot];
    let end = tokenOrder[n + slot + 1u];
    var sum = vec4<f32>(0.0);
    if (inside) {
      for (var j = start + lane; j < end; j += LANES) {
        sum += dx[tokenOrder[j] * params.hidden4 + e];
      }
    }
    laneSums[lid] = sum;
    workgroupBarrier();
    if (lane == 0u && inside && end > start) {
      var total = laneSums[col];
      for (var l = 1u; l < LANES; l++) {
        total += laneSums[l * COLS4 + col];
      }
      let id = tokenOrder[2u * n + 1u + slot];
      dword[id * params.hidden4 + e] += total;
    }
    workgroupBarrier();
  }
}

// One thread per vec4 of the learned table: dposition[p] += sum over the batch of dx[b * seq + p].
@compute @workgroup_size(WG)
fn embedding_backward_learned(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = flatIndex(wid, nwg, lid);
  let stride = params.seq * params.hidden4;
  if (i >= stride) {
    return;
  }
  var sum = vec4<f32>(0.0);
  for (var j = i; j < params.tokens * params.hidden4; j += stride) {
    sum += dx[j];
  }
  dposition[i] += sum;
}

// Tree sum of one value per thread; every thread gets the total.
fn workgroupSum(lid: u32, value: f32) -> f32 {
  sums[lid] = value;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half /= 2u) {
    if (lid < half) {
      sums[lid] += sums[lid + half];
    }
    workgroupBarrier();
  }
  return sums[0];
}

// Workgroup g of params.count: partials[g] = sum of dot(dx[i], sinusoid[i % (seq * hidden4)]) over
// its grid-strided vec4s i.
@compute @workgroup_size(WG)
fn embedding_scale_partials(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let table = params.seq * params.hidden4;
  var sum = 0.0;
  for (var i = wid.x * WG + lid; i < params.tokens * params.hidden4; i += params.count * WG) {
    sum += dot(dx[i], sinusoid[i % table]);
  }
  let total = workgroupSum(lid, sum);
  if (lid == 0u) {
    partials[wid.x] = total;
  }
}

// One workgroup: dscale[0] += the sum of the params.count partials.
@compute @workgroup_size(WG)
fn embedding_scale_total(@builtin(local_invocation_index) lid: u32) {
  var sum = 0.0;
  for (var i = lid; i < params.count; i += WG) {
    sum += partialsIn[i];
  }
  let total = workgroupSum(lid, sum);
  if (lid == 0u) {
    dscale[0] += total;
  }
}
