// Token + position embeddings, forward and backward.
//
// Forward: x[t] = word[ids[t]] + position[t % seq], where position is the learned table or
// positionScale * the sinusoid table. Backward, deterministic without float atomics:
// - dword: the host sorts the token positions by id (tokenOrder); the sorted list is cut into tiles of
//   TILE positions, one workgroup each (times column chunks), so the work per workgroup is the same
//   however the ids repeat. A tile sums each id's rows in sorted order: an id whose rows all lie in the
//   tile is added to dword[id] there; an id whose rows cross a tile edge leaves its partial sum per tile
//   in `carry`, and embedding_backward_carry adds them up in tile order. A frequent id ([MASK], [SEP],
//   "the") thus spreads over many workgroups instead of one long serial loop, and a tile inside one id's
//   rows splits them over its lanes;
// - learned positions: one thread per (position, column) sums dx over the batch in order;
// - position scale: dot(dx, sinusoid) summed by the tiles as they read dx (one read of dx for both
//   gradients), one partial per workgroup (workgroup_sum), then one workgroup of embedding_backward_carry
//   adds the partials (strided sums in order, then workgroup_sum).

struct Uniforms {
  tokens: u32,
  seq: u32,
  // hidden / 4.
  hidden4: u32,
  // Backward word kernels: segment slots in tokenOrder (min(tokens, vocab)).
  count: u32,
}

// Threads per workgroup of the element-wise kernels; the word kernel's COLS4 * LANES (its workgroup_sum,
// which the loader adds from reduce_subgroups.wgsl or reduce_workgroup.wgsl, needs the count).
override WG: u32 = 256u;
// Backward word kernels: vec4 columns per workgroup x lanes (invocations working on different ids, or
// different rows or tiles of one id, for the same columns); COLS4 * LANES is a power of two.
override COLS4: u32 = 64u;
override LANES: u32 = 4u;
// Sorted token positions per tile, at most COLS4 * LANES (one invocation loads each).
override TILE: u32 = 64u;
// Backward word kernels: also the position-scale gradient.
override SCALE: bool = false;

// Loads issued together before they are summed, in order.
const BATCH: u32 = 8u;

@group(0) @binding(0) var<uniform> uniforms: Uniforms;
// Forward.
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> word: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> position: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> x: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> positionScale: array<f32>;
// Word kernels: dword, and the carries between them.
@group(0) @binding(1) var<storage, read_write> dword: array<vec4<f32>>;
// [tiles][2][hidden4]: per tile, the partial sum of the id that began before it (row 0) and of the id
// that began in it and goes on past it (row 1).
@group(0) @binding(2) var<storage, read_write> carry: array<vec4<f32>>;
// [tiles]: (last tile, id) of the id whose carry is the tile's row 1; the last tile is the tile itself when
// no id begins in it and goes on past it.
@group(0) @binding(3) var<storage, read_write> carryOwner: array<vec2<u32>>;
// embedding_backward_word: tokenOrder = [order (tokens) | segmentStart (tokens + 1) | uniqueIds (tokens)],
// dx [tokens, hidden], and with SCALE the sinusoid table [seq, hidden] and a partial sum per workgroup
// (16-byte placeholders without SCALE).
@group(0) @binding(4) var<storage, read> tokenOrder: array<u32>;
@group(0) @binding(5) var<storage, read> dx: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> sinusoid: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> scalePartials: array<f32>;
// embedding_backward_learned: dx and the table's gradient.
@group(0) @binding(1) var<storage, read> learnedDx: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dposition: array<vec4<f32>>;
// embedding_backward_carry with SCALE: the word kernel's scale partials and the 1-element gradient
// (16-byte placeholders without SCALE).
@group(0) @binding(4) var<storage, read> partialsIn: array<f32>;
@group(0) @binding(5) var<storage, read_write> dscale: array<f32>;

// embedding_backward_word: the tile's token positions, and for its local segments (ids) s = 0, 1, ...
// the global segment bounds and the id.
var<workgroup> tile_rows: array<u32, TILE>;
var<workgroup> seg_start: array<u32, TILE>;
var<workgroup> seg_end: array<u32, TILE>;
var<workgroup> seg_id: array<u32, TILE>;
var<workgroup> found: u32;
var<workgroup> owner: vec2<u32>;
var<workgroup> seg_count: u32;
var<workgroup> lane_sums: array<vec4<f32>, COLS4 * LANES>;

fn embed(i: u32, scale: f32) {
  if (i >= uniforms.tokens * uniforms.hidden4) {
    return;
  }
  let t = i / uniforms.hidden4;
  let e = i % uniforms.hidden4;
  x[i] = word[ids[t] * uniforms.hidden4 + e] + scale * position[(t % uniforms.seq) * uniforms.hidden4 + e];
}

// One thread per vec4 of x; position is the learned table.
@compute @workgroup_size(WG)
fn embedding_forward_learned(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  embed(flat_index(wid, nwg, lid, WG), 1.0);
}

// One thread per vec4 of x; position is the sinusoid table, scaled by positionScale[0].
@compute @workgroup_size(WG)
fn embedding_forward_scaled(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  embed(flat_index(wid, nwg, lid, WG), positionScale[0]);
}

// segment_start(u): where slot u's positions begin in the sorted order (slots past the distinct ids, and
// u = count, give `tokens`).
fn segment_start(u: u32) -> u32 {
  return tokenOrder[uniforms.tokens + min(u, uniforms.count)];
}

// The slot of the id at sorted position `p`: the last u with segment_start(u) <= p, found by the whole
// workgroup in a few rounds of COLS4 * LANES probes (two rounds for 16384 slots).
fn find_segment(p: u32, lid: u32) -> u32 {
  let threads = COLS4 * LANES;
  var lo = 0u;
  var len = uniforms.count + 1u;
  loop {
    if (len <= 1u) {
      break;
    }
    let stride = (len + threads - 1u) / threads;
    let probe = lid * stride;
    let here = probe < len && segment_start(lo + probe) <= p;
    let next = probe + stride < len && segment_start(lo + probe + stride) <= p;
    if (here && !next) {
      found = probe;
    }
    let step = workgroupUniformLoad(&found);
    lo += step;
    len = min(stride, len - step);
    workgroupBarrier(); // `found` is read by all before the next round writes it
  }
  return lo;
}

// Sorted position p's dx row at column e and, with SCALE, its sinusoid row; zero at p >= hi.
fn gather(p: u32, hi: u32, tile_start: u32, e: u32) -> mat2x4<f32> {
  var g = mat2x4<f32>();
  if (p < hi) {
    let t = tile_rows[p - tile_start];
    g[0] = dx[t * uniforms.hidden4 + e];
    if (SCALE) {
      g[1] = sinusoid[(t % uniforms.seq) * uniforms.hidden4 + e];
    }
  }
  return g;
}

fn accumulate(g: mat2x4<f32>, sum: ptr<function, vec4<f32>>, scale: ptr<function, f32>) {
  *sum += g[0];
  if (SCALE) {
    *scale += dot(g[0], g[1]);
  }
}

// The sum of the dx rows of sorted positions [begin, begin + BATCH), [begin + step, ...), ... below hi, in
// order, at column e. A batch's BATCH loads are written out rather than looped: the driver does not
// unroll such loops, and then each load waits for the one before it and local arrays spill to memory.
fn sum_rows(begin: u32, hi: u32, step: u32, tile_start: u32, e: u32, scale: ptr<function, f32>) -> vec4<f32> {
  var sum = vec4<f32>(0.0);
  for (var j = begin; j < hi; j += step) {
    let g0 = gather(j, hi, tile_start, e);
    let g1 = gather(j + 1u, hi, tile_start, e);
    let g2 = gather(j + 2u, hi, tile_start, e);
    let g3 = gather(j + 3u, hi, tile_start, e);
    let g4 = gather(j + 4u, hi, tile_start, e);
    let g5 = gather(j + 5u, hi, tile_start, e);
    let g6 = gather(j + 6u, hi, tile_start, e);
    let g7 = gather(j + 7u, hi, tile_start, e);
    accumulate(g0, &sum, scale);
    accumulate(g1, &sum, scale);
    accumulate(g2, &sum, scale);
    accumulate(g3, &sum, scale);
    accumulate(g4, &sum, scale);
    accumulate(g5, &sum, scale);
    accumulate(g6, &sum, scale);
    accumulate(g7, &sum, scale);
  }
  return sum;
}

// The tile's sum for local segment s at column e: added to dword if all the id's rows are in the tile
// (`old` is dword's value, read ahead so that its latency overlaps the rows'), else left as a carry.
fn finish_segment(s: u32, tile: u32, tile_start: u32, tile_end: u32, e: u32, old: vec4<f32>, sum: vec4<f32>) {
  if (seg_start[s] >= tile_start && seg_end[s] <= tile_end) {
    dword[seg_id[s] * uniforms.hidden4 + e] = old + sum;
  } else {
    carry[(2u * tile + select(1u, 0u, seg_start[s] < tile_start)) * uniforms.hidden4 + e] = sum;
  }
}

// dword's value for local segment s at column e if the tile adds to it, else 0.
fn read_ahead(s: u32, tile_start: u32, tile_end: u32, e: u32) -> vec4<f32> {
  if (seg_start[s] >= tile_start && seg_end[s] <= tile_end) {
    return dword[seg_id[s] * uniforms.hidden4 + e];
  }
  return vec4<f32>(0.0);
}

// Workgroup (tile, column chunk of COLS4 vec4s). Lane l takes the tile's ids l, l + LANES, ..., each id's
// rows in sorted order; a tile inside a single id's rows has lane l sum its rows l * BATCH, ... instead,
// and the lane sums are added in order.
@compute @workgroup_size(COLS4, LANES)
fn embedding_backward_word(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_id) local: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let n = uniforms.tokens;
  let tile = wid.x;
  let tile_start = tile * TILE;
  let tile_end = min(tile_start + TILE, n);
  let first = find_segment(tile_start, lid);
  if (lid < TILE) {
    let u = first + lid;
    let start = segment_start(u);
    let end = segment_start(u + 1u);
    seg_start[lid] = start;
    seg_end[lid] = end;
    let id = tokenOrder[2u * n + 1u + min(u, n - 1u)];
    seg_id[lid] = id;
    if (tile_start + lid < tile_end) {
      tile_rows[lid] = tokenOrder[tile_start + lid];
    }
    // The id holding the tile's last position: its local index bounds the loops below, and if it goes on
    // past the tile, after beginning in it, this tile adds up its carries.
    if (start < tile_end && end >= tile_end) {
      seg_count = lid + 1u;
      if (wid.y == 0u) {
        let owns = end > tile_end && start >= tile_start;
        carryOwner[tile] = vec2<u32>(select(tile, (end - 1u) / TILE, owns), id);
      }
    }
  }
  let count = workgroupUniformLoad(&seg_count);
  let e = wid.y * COLS4 + local.x;
  let inside = e < uniforms.hidden4;
  var scale = 0.0;
  if (count == 1u) {
    var old = vec4<f32>(0.0);
    var sum = vec4<f32>(0.0);
    if (inside) {
      if (local.y == 0u) {
        old = read_ahead(0u, tile_start, tile_end, e);
      }
      sum = sum_rows(tile_start + local.y * BATCH, tile_end, LANES * BATCH, tile_start, e, &scale);
    }
    lane_sums[lid] = sum;
    workgroupBarrier();
    if (inside && local.y == 0u) {
      for (var l = 1u; l < LANES; l++) {
        sum += lane_sums[l * COLS4 + local.x];
      }
      finish_segment(0u, tile, tile_start, tile_end, e, old, sum);
    }
  } else if (inside) {
    for (var s = local.y; s < count; s += LANES) {
      let old = read_ahead(s, tile_start, tile_end, e);
      let sum =
        sum_rows(max(seg_start[s], tile_start), min(seg_end[s], tile_end), BATCH, tile_start, e, &scale);
      finish_segment(s, tile, tile_start, tile_end, e, old, sum);
    }
  }
  if (SCALE) {
    let partial = workgroup_sum(scale, lid);
    if (lid == 0u) {
      scalePartials[wid.y * nwg.x + tile] = partial;
    }
  }
}

// Tile k's row-0 carry at column e; zero past last_tile.
fn carried(k: u32, last_tile: u32, e: u32) -> vec4<f32> {
  if (k <= last_tile) {
    return carry[2u * k * uniforms.hidden4 + e];
  }
  return vec4<f32>(0.0);
}

// Workgroup (tile, column chunk): if an id begins in the tile and goes on past it, dword[id] += its
// carry here plus its row-0 carries of the following tiles, in tile order (lane l sums tiles l, l + LANES,
// ... after this one, BATCH loads at a time; the lanes are added in order).
@compute @workgroup_size(COLS4, LANES)
fn embedding_backward_carry(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_id) local: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let tile = wid.x;
  if (SCALE && tile == 0u && wid.y == 0u) {
    // dscale += the word kernel's partials (one per workgroup of the same grid), strided sums in order
    // and then workgroup_sum; here rather than in a dispatch of its own, which would cost more than the sum.
    var sum = 0.0;
    for (var i = lid; i < nwg.x * nwg.y; i += COLS4 * LANES) {
      sum += partialsIn[i];
    }
    let total = workgroup_sum(sum, lid);
    if (lid == 0u) {
      dscale[0] += total;
    }
  }
  if (lid == 0u) {
    owner = carryOwner[tile];
  }
  let info = workgroupUniformLoad(&owner);
  let last_tile = info.x;
  if (last_tile <= tile) {
    return;
  }
  let h4 = uniforms.hidden4;
  let e = wid.y * COLS4 + local.x;
  let inside = e < h4;
  let row = info.y * h4 + e;
  var old = vec4<f32>(0.0);
  var own = vec4<f32>(0.0);
  var sum = vec4<f32>(0.0);
  if (inside) {
    if (local.y == 0u) {
      old = dword[row];
      own = carry[(2u * tile + 1u) * h4 + e];
    }
    for (var k = tile + 1u + local.y; k <= last_tile; k += LANES * BATCH) {
      let v0 = carried(k, last_tile, e);
      let v1 = carried(k + LANES, last_tile, e);
      let v2 = carried(k + 2u * LANES, last_tile, e);
      let v3 = carried(k + 3u * LANES, last_tile, e);
      let v4 = carried(k + 4u * LANES, last_tile, e);
      let v5 = carried(k + 5u * LANES, last_tile, e);
      let v6 = carried(k + 6u * LANES, last_tile, e);
      let v7 = carried(k + 7u * LANES, last_tile, e);
      sum += v0;
      sum += v1;
      sum += v2;
      sum += v3;
      sum += v4;
      sum += v5;
      sum += v6;
      sum += v7;
    }
  }
  lane_sums[lid] = sum;
  workgroupBarrier();
  if (inside && local.y == 0u) {
    for (var l = 0u; l < LANES; l++) {
      own += lane_sums[l * COLS4 + local.x];
    }
    dword[row] = old + own;
  }
}

fn learned_row(j: u32, total: u32) -> vec4<f32> {
  if (j < total) {
    return learnedDx[j];
  }
  return vec4<f32>(0.0);
}

// One thread per vec4 of the learned table: dposition[p] += sum over the batch of dx[b * seq + p], in
// batch order, BATCH loads at a time (written out, as in sum_rows).
@compute @workgroup_size(WG)
fn embedding_backward_learned(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = flat_index(wid, nwg, lid, WG);
  let stride = uniforms.seq * uniforms.hidden4;
  if (i >= stride) {
    return;
  }
  let total = uniforms.tokens * uniforms.hidden4;
  var sum = vec4<f32>(0.0);
  for (var j = i; j < total; j += BATCH * stride) {
    let v0 = learned_row(j, total);
    let v1 = learned_row(j + stride, total);
    let v2 = learned_row(j + 2u * stride, total);
    let v3 = learned_row(j + 3u * stride, total);
    let v4 = learned_row(j + 4u * stride, total);
    let v5 = learned_row(j + 5u * stride, total);
    let v6 = learned_row(j + 6u * stride, total);
    let v7 = learned_row(j + 7u * stride, total);
    sum += v0;
    sum += v1;
    sum += v2;
    sum += v3;
    sum += v4;
    sum += v5;
    sum += v6;
    sum += v7;
  }
  dposition[i] += sum;
}
