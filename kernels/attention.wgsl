// Bidirectional multi-head self-attention over the fused QKV projection, forward and backward.
//
// qkv [N, 3H] holds per token all q heads, then all k heads, then all v heads (head h at columns
// h*headDim..). One workgroup owns BLOCK rows of one (batch, head) and streams the other side's rows
// through workgroup memory CHUNK rows at a time; the BLOCK x SEQ tile of scores stays in workgroup memory.
// The forward saves the probabilities [batch, heads, SEQ, SEQ]; the backward reads them instead of
// recomputing QK^T (at seq 128 that saves three of the seven 128x128x64 products per (batch, head)).
//
// Backward, three dispatches in this order (each reduction has one owner, so results are deterministic):
//   attention_backward_keys  (weights = probs,    rows = dout): dV = P^T dO
//   attention_backward_query (probs -> dscores in place):      dS = P * (dO V^T - rowsum(P * dO V^T)) * scale,
//                                                               dQ = dS K
//   attention_backward_keys  (weights = dscores,  rows = q):    dK = dS^T Q
//
// Finetuning drops probabilities (PROBS_DROPOUT): out = P' V with P' = P * keep / (1 - p), the mask a hash
// of (seed, flat probs index) as in dropout.wgsl. The forward still saves P; the backward recomputes the
// mask: dV = P'^T dO, and with dP' = dO V^T, dS = P * (dP' m - rowsum(P * dP' m)) * scale (m = keep/(1-p)).

struct Params {
  heads: u32,
  // Forward: 1 if keyMask is bound and used.
  hasMask: u32,
  // 1 / sqrt(headDim), rounded to f32 on the host.
  scale: f32,
  // attention_backward_keys: vec4s per row of `rows` (H/4 for dout, 3H/4 for qkv) ...
  rowStride4: u32,
  // ... and the vec4 offset of the written section (dK: H/4, dV: H/2) within a dqkv row.
  outSection4: u32,
  // Probability dropout (PROBS_DROPOUT): keep iff hash >> 8 >= dropThreshold, kept values times
  // dropScale = 1 / (1 - p); the mask's seed is seeds[seedIndex].
  dropThreshold: u32,
  dropScale: f32,
  seedIndex: u32,
}

override WG: u32 = 128u;
override SEQ: u32;
// headDim / 4.
override D4: u32;
// Rows (queries, or keys in attention_backward_keys) owned by one workgroup; WG % BLOCK == 0.
override BLOCK: u32 = 16u;
// Rows staged in workgroup memory per step.
override CHUNK: u32 = 32u;
// Output vec4s per thread: the host keeps BLOCK * D4 <= ACC * WG.
const ACC = 4u;
// Below any real score: the running maximum starts here and masked keys never raise it.
const LOWEST = -3.0e38;
// Applies probability dropout (finetuning); the dK pass of attention_backward_keys never does.
override PROBS_DROPOUT: bool = false;

@group(0) @binding(0) var<uniform> params: Params;
// attention_forward and attention_backward_query.
@group(0) @binding(1) var<storage, read> qkv: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> probs: array<f32>;
// attention_forward: out [N, H] and keyMask [N] (1 attend, 0 padding).
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> keyMask: array<u32>;
// attention_backward_query: dqkv [N, 3H] (its q section) and dout [N, H].
@group(0) @binding(3) var<storage, read_write> dqkv: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> dout: array<vec4<f32>>;
// attention_backward_keys: rows (dout or qkv), weights (probs or dscores) and dqkv (its k or v section).
@group(0) @binding(1) var<storage, read> rows: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
// The step's dropout seeds (a placeholder word without PROBS_DROPOUT): attention_forward and
// attention_backward_query bind them after their other buffers, attention_backward_keys at 4.
@group(0) @binding(5) var<storage, read> seeds: array<u32>;
@group(0) @binding(4) var<storage, read> keysSeeds: array<u32>;

// The block's own rows: q in the forward, dout in attention_backward_query.
var<workgroup> blockRows: array<vec4<f32>, BLOCK * D4>;
// Streamed rows, padded by one vec4 each so that threads reading different rows hit different banks.
var<workgroup> chunkRows: array<vec4<f32>, CHUNK * (D4 + 1u)>;
// Scores, probabilities or score gradients of the block's rows against all SEQ keys.
var<workgroup> tile: array<f32, BLOCK * SEQ>;
var<workgroup> partial: array<f32, WG>;
// attention_backward_keys: a CHUNK x BLOCK slice of the weights.
var<workgroup> chunkWeights: array<f32, CHUNK * BLOCK>;

// vec4 index of head `head`'s slice of section `section` (0 q, 1 k, 2 v) in qkv row `token`.
fn qkvIndex(token: u32, section: u32, head: u32) -> u32 {
  let hidden4 = params.heads * D4;
  return token * 3u * hidden4 + section * hidden4 + head * D4;
}

// Stages rows first.. first+CHUNK of a qkv section (zeros past the sequence) into chunkRows.
fn stageQkvChunk(batch: u32, first: u32, section: u32, head: u32, lid: u32) {
  workgroupBarrier();
  for (var i = lid; i < CHUNK * D4; i += WG) {
    let r = i / D4;
    let e = i % D4;
    var v = vec4<f32>(0.0);
    if (first + r < SEQ) {
      v = qkv[qkvIndex(batch * SEQ + first + r, section, head) + e];
    }
    chunkRows[r * (D4 + 1u) + e] = v;
  }
  workgroupBarrier();
}

// tile[r, c] = blockRows[r] . (row c of a qkv section), for all SEQ keys c.
fn blockDots(batch: u32, section: u32, head: u32, lid: u32) {
  for (var first = 0u; first < SEQ; first += CHUNK) {
    stageQkvChunk(batch, first, section, head, lid);
    for (var i = lid; i < BLOCK * CHUNK; i += WG) {
      let r = i / CHUNK;
      let c = i % CHUNK;
      if (first + c < SEQ) {
        var s = 0.0;
        for (var e = 0u; e < D4; e++) {
          s += dot(blockRows[r * D4 + e], chunkRows[c * (D4 + 1u) + e]);
        }
        tile[r * SEQ + first + c] = s;
      }
    }
  }
}

// The block's output rows tile[r, :] x (a qkv section): thread lid owns output vec4 lid + a*WG.
fn tileTimesSection(batch: u32, section: u32, head: u32, lid: u32) -> array<vec4<f32>, ACC> {
  var acc: array<vec4<f32>, ACC>;
  for (var first = 0u; first < SEQ; first += CHUNK) {
    stageQkvChunk(batch, first, section, head, lid);
    let n = min(CHUNK, SEQ - first);
    for (var a = 0u; a < ACC; a++) {
      let o = lid + a * WG;
      if (o < BLOCK * D4) {
        let r = o / D4;
        let e = o % D4;
        for (var c = 0u; c < n; c++) {
          acc[a] += tile[r * SEQ + first + c] * chunkRows[c * (D4 + 1u) + e];
        }
      }
    }
  }
  return acc;
}

// Row reductions over the WG / BLOCK lanes that share a row (r = lid / lanes), in a fixed order.
fn laneSum(lid: u32, value: f32) -> f32 {
  let lanes = WG / BLOCK;
  workgroupBarrier();
  partial[lid] = value;
  workgroupBarrier();
  var total = 0.0;
  for (var l = lid - lid % lanes; l < lid - lid % lanes + lanes; l++) {
    total += partial[l];
  }
  return total;
}

fn laneMax(lid: u32, value: f32) -> f32 {
  let lanes = WG / BLOCK;
  workgroupBarrier();
  partial[lid] = value;
  workgroupBarrier();
  var m = LOWEST;
  for (var l = lid - lid % lanes; l < lid - lid % lanes + lanes; l++) {
    m = max(m, partial[l]);
  }
  return m;
}

// The hash of dropout.wgsl (PCG-RXS-M-XS; WGSL has no includes): the tests hold both to the reference's
// dropoutKeep, bit for bit.
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

// The mask key of this step's probability dropout, from its seed.
fn dropKey(seed: u32) -> u32 {
  return select(0u, pcg(seed), PROBS_DROPOUT);
}

// keep / (1 - p) of flat probs index `index`.
fn dropFactor(key: u32, index: u32) -> f32 {
  return select(0.0, params.dropScale, (pcg(key ^ index) >> 8u) >= params.dropThreshold);
}

fn attends(batch: u32, key: u32) -> bool {
  return params.hasMask == 0u || keyMask[batch * SEQ + key] != 0u;
}

// Workgroup (query block, head, batch): probs of the block's queries and out = probs V.
@compute @workgroup_size(WG)
fn attention_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let first = wid.x * BLOCK;
  let head = wid.y;
  let batch = wid.z;
  for (var i = lid; i < BLOCK * D4; i += WG) {
    let q = first + i / D4;
    var v = vec4<f32>(0.0);
    if (q < SEQ) {
      v = qkv[qkvIndex(batch * SEQ + q, 0u, head) + i % D4];
    }
    blockRows[i] = v;
  }
  blockDots(batch, 1u, head, lid);
  workgroupBarrier();

  // Softmax of each row over its attended keys; a row with none gets all-zero probabilities.
  let lanes = WG / BLOCK;
  let r = lid / lanes;
  var m = LOWEST;
  for (var c = lid % lanes; c < SEQ; c += lanes) {
    if (attends(batch, c)) {
      m = max(m, tile[r * SEQ + c] * params.scale);
    }
  }
  let rowMax = laneMax(lid, m);
  var s = 0.0;
  for (var c = lid % lanes; c < SEQ; c += lanes) {
    var p = 0.0;
    if (attends(batch, c)) {
      p = exp(tile[r * SEQ + c] * params.scale - rowMax);
    }
    tile[r * SEQ + c] = p;
    s += p;
  }
  let rowSum = laneSum(lid, s);
  let inverse = select(0.0, 1.0 / rowSum, rowSum > 0.0);
  for (var c = lid % lanes; c < SEQ; c += lanes) {
    tile[r * SEQ + c] *= inverse;
  }
  workgroupBarrier();

  let probsBase = ((batch * params.heads + head) * SEQ + first) * SEQ;
  let key = dropKey(seeds[params.seedIndex]);
  for (var i = lid; i < BLOCK * SEQ; i += WG) {
    if (first + i / SEQ < SEQ) {
      probs[probsBase + i] = tile[i];
    }
    // Saved undropped; the output uses the dropped probabilities (each thread rescales what it wrote).
    if (PROBS_DROPOUT) {
      tile[i] *= dropFactor(key, probsBase + i);
    }
  }

  let acc = tileTimesSection(batch, 2u, head, lid);
  let hidden4 = params.heads * D4;
  for (var a = 0u; a < ACC; a++) {
    let o = lid + a * WG;
    let q = first + o / D4;
    if (o < BLOCK * D4 && q < SEQ) {
      out[(batch * SEQ + q) * hidden4 + head * D4 + o % D4] = acc[a];
    }
  }
}

// Workgroup (query block, head, batch): overwrites the block's probs with the score gradients dS and
// writes dQ = dS K into the q section of dqkv. Runs after dV has been taken from the probs.
@compute @workgroup_size(WG)
fn attention_backward_query(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let first = wid.x * BLOCK;
  let head = wid.y;
  let batch = wid.z;
  let hidden4 = params.heads * D4;
  for (var i = lid; i < BLOCK * D4; i += WG) {
    let q = first + i / D4;
    var v = vec4<f32>(0.0);
    if (q < SEQ) {
      v = dout[(batch * SEQ + q) * hidden4 + head * D4 + i % D4];
    }
    blockRows[i] = v;
  }
  blockDots(batch, 2u, head, lid);
  workgroupBarrier();

  let lanes = WG / BLOCK;
  let r = lid / lanes;
  let valid = first + r < SEQ;
  let probsRow = ((batch * params.heads + head) * SEQ + first + r) * SEQ;
  let key = dropKey(seeds[params.seedIndex]);
  var d = 0.0;
  if (valid) {
    for (var c = lid % lanes; c < SEQ; c += lanes) {
      // dP = dP' * keep / (1 - p): the gradient reaching the undropped probabilities.
      if (PROBS_DROPOUT) {
        tile[r * SEQ + c] *= dropFactor(key, probsRow + c);
      }
      d += probs[probsRow + c] * tile[r * SEQ + c];
    }
  }
  let rowDot = laneSum(lid, d);
  for (var c = lid % lanes; c < SEQ; c += lanes) {
    var ds = 0.0;
    if (valid) {
      ds = probs[probsRow + c] * (tile[r * SEQ + c] - rowDot) * params.scale;
      probs[probsRow + c] = ds;
    }
    tile[r * SEQ + c] = ds;
  }
  workgroupBarrier();

  let acc = tileTimesSection(batch, 1u, head, lid);
  for (var a = 0u; a < ACC; a++) {
    let o = lid + a * WG;
    let q = first + o / D4;
    if (o < BLOCK * D4 && q < SEQ) {
      dqkv[qkvIndex(batch * SEQ + q, 0u, head) + o % D4] = acc[a];
    }
  }
}

// Workgroup (key block, head, batch): dqkv[key] section = sum over queries i of weights[i, key] rows[i],
// i.e. dV = P^T dO or dK = dS^T Q.
@compute @workgroup_size(WG)
fn attention_backward_keys(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let first = wid.x * BLOCK;
  let head = wid.y;
  let batch = wid.z;
  let weightsBase = (batch * params.heads + head) * SEQ * SEQ;
  let dropMask = dropKey(keysSeeds[params.seedIndex]);
  var acc: array<vec4<f32>, ACC>;
  for (var i0 = 0u; i0 < SEQ; i0 += CHUNK) {
    workgroupBarrier();
    for (var i = lid; i < CHUNK * D4; i += WG) {
      let t = i0 + i / D4;
      var v = vec4<f32>(0.0);
      if (t < SEQ) {
        v = rows[(batch * SEQ + t) * params.rowStride4 + head * D4 + i % D4];
      }
      chunkRows[(i / D4) * (D4 + 1u) + i % D4] = v;
    }
    for (var i = lid; i < CHUNK * BLOCK; i += WG) {
      let t = i0 + i / BLOCK;
      let key = first + i % BLOCK;
      var w = 0.0;
      if (t < SEQ && key < SEQ) {
        w = weights[weightsBase + t * SEQ + key];
        if (PROBS_DROPOUT) {
          w *= dropFactor(dropMask, weightsBase + t * SEQ + key);
        }
      }
      chunkWeights[i] = w;
    }
    workgroupBarrier();
    for (var a = 0u; a < ACC; a++) {
      let o = lid + a * WG;
      if (o < BLOCK * D4) {
        let c = o / D4;
        let e = o % D4;
        for (var t = 0u; t < CHUNK; t++) {
          acc[a] += chunkWeights[t * BLOCK + c] * chunkRows[t * (D4 + 1u) + e];
        }
      }
    }
  }
  let hidden4 = params.heads * D4;
  for (var a = 0u; a < ACC; a++) {
    let o = lid + a * WG;
    let key = first + o / D4;
    if (o < BLOCK * D4 && key < SEQ) {
      dqkv[(batch * SEQ + key) * 3u * hidden4 + params.outSection4 + head * D4 + o % D4] = acc[a];
    }
  }
}

// ---- Register-tiled variant (attention_*_tiled): same bindings, semantics and saved probabilities ----
//
// WG = headDim threads; a workgroup owns TB = 16 rows (queries, or keys in attention_backward_keys_tiled)
// and streams the other side's rows TK = headDim at a time. Thread lid owns rows 4g..4g+3 of the block
// (g = lid / D4) against columns 4c..4c+3 (c = lid % D4: keys of a score chunk, or output dimensions), a
// 4x4 tile held in four named vec4 accumulators: each step of a product is two vec4 loads from workgroup
// memory for 16 FMAs. For the scores the block's rows and the streamed chunk are stored dimension-major
// (a vec4 spans 4 rows); the score tile is stored key-major (a vec4 spans 4 of the block's rows), so the
// products with V or K read one vec4 per key. The tile is padded to SEQ_PAD keys (a multiple of TK):
// padded keys get probability 0 and padded rows are never written. The host picks this variant only when
// headDim % 16 == 0 and the workgroup memory below fits the adapter.

const TB = 16u;
override SEQ_PAD: u32 = (SEQ + 4u * D4 - 1u) / (4u * D4) * (4u * D4);

// tiledBlock[d * 4 + g] = the block's rows 4g..4g+3 at dimension d.
var<workgroup> tiledBlock: array<vec4<f32>, 16u * D4>;
// TK = 4 * D4 streamed rows: dimension-major for the scores (tiledChunk[d * D4 + c] = rows 4c..4c+3 at
// dimension d), row-major for the products (tiledChunk[t * D4 + e] = row t, dimensions 4e..4e+3).
var<workgroup> tiledChunk: array<vec4<f32>, 4u * D4 * D4>;
// tiledTile[column * 4 + g] = the block's rows 4g..4g+3 at `column` (a score, probability or gradient).
var<workgroup> tiledTile: array<vec4<f32>, SEQ_PAD * 4u>;
var<workgroup> tiledPartial: array<f32, WG>;

fn tileAt(row: u32, column: u32) -> f32 {
  return tiledTile[column * 4u + row / 4u][row % 4u];
}

fn setTile(row: u32, column: u32, value: f32) {
  tiledTile[column * 4u + row / 4u][row % 4u] = value;
}

// Stores vec4 `e` of block row r dimension-major.
fn storeBlockRow(r: u32, e: u32, v: vec4<f32>) {
  tiledBlock[(4u * e) * 4u + r / 4u][r % 4u] = v.x;
  tiledBlock[(4u * e + 1u) * 4u + r / 4u][r % 4u] = v.y;
  tiledBlock[(4u * e + 2u) * 4u + r / 4u][r % 4u] = v.z;
  tiledBlock[(4u * e + 3u) * 4u + r / 4u][r % 4u] = v.w;
}

// Stages rows first..first+TK of a qkv section (zeros past the sequence) into tiledChunk, dimension-major
// or row-major.
fn stageTiledChunk(batch: u32, first: u32, section: u32, head: u32, lid: u32, dimensionMajor: bool) {
  workgroupBarrier();
  for (var i = lid; i < 4u * D4 * D4; i += WG) {
    let t = i / D4;
    let e = i % D4;
    var v = vec4<f32>(0.0);
    if (first + t < SEQ) {
      v = qkv[qkvIndex(batch * SEQ + first + t, section, head) + e];
    }
    if (dimensionMajor) {
      tiledChunk[(4u * e) * D4 + t / 4u][t % 4u] = v.x;
      tiledChunk[(4u * e + 1u) * D4 + t / 4u][t % 4u] = v.y;
      tiledChunk[(4u * e + 2u) * D4 + t / 4u][t % 4u] = v.z;
      tiledChunk[(4u * e + 3u) * D4 + t / 4u][t % 4u] = v.w;
    } else {
      tiledChunk[i] = v;
    }
  }
  workgroupBarrier();
}

// The tile = tiledBlock rows . (rows of a qkv section) for all SEQ_PAD columns (zero past SEQ).
fn tiledScores(batch: u32, section: u32, head: u32, lid: u32) {
  let g = lid / D4;
  let c = lid % D4;
  for (var first = 0u; first < SEQ_PAD; first += 4u * D4) {
    stageTiledChunk(batch, first, section, head, lid, true);
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    var s3 = vec4<f32>(0.0);
    for (var d = 0u; d < 4u * D4; d++) {
      let a = tiledBlock[d * 4u + g];
      let b = tiledChunk[d * D4 + c];
      s0 += a.x * b;
      s1 += a.y * b;
      s2 += a.z * b;
      s3 += a.w * b;
    }
    let column = (first + 4u * c) * 4u + g;
    tiledTile[column] = vec4<f32>(s0.x, s1.x, s2.x, s3.x);
    tiledTile[column + 4u] = vec4<f32>(s0.y, s1.y, s2.y, s3.y);
    tiledTile[column + 8u] = vec4<f32>(s0.z, s1.z, s2.z, s3.z);
    tiledTile[column + 12u] = vec4<f32>(s0.w, s1.w, s2.w, s3.w);
  }
}

// The block's rows 4g..4g+3 of tile x (a qkv section), dimensions 4c..4c+3 (g, c from lid).
fn tiledTileTimesSection(batch: u32, section: u32, head: u32, lid: u32) -> mat4x4<f32> {
  let g = lid / D4;
  let c = lid % D4;
  var o0 = vec4<f32>(0.0);
  var o1 = vec4<f32>(0.0);
  var o2 = vec4<f32>(0.0);
  var o3 = vec4<f32>(0.0);
  for (var first = 0u; first < SEQ_PAD; first += 4u * D4) {
    stageTiledChunk(batch, first, section, head, lid, false);
    for (var t = 0u; t < 4u * D4; t++) {
      let a = tiledTile[(first + t) * 4u + g];
      let b = tiledChunk[t * D4 + c];
      o0 += a.x * b;
      o1 += a.y * b;
      o2 += a.z * b;
      o3 += a.w * b;
    }
  }
  return mat4x4<f32>(o0, o1, o2, o3);
}

// Row reductions over the WG / TB lanes that share a row (r = lid / lanes), in a fixed order.
fn tiledLaneSum(lid: u32, value: f32) -> f32 {
  let lanes = WG / TB;
  workgroupBarrier();
  tiledPartial[lid] = value;
  workgroupBarrier();
  var total = 0.0;
  for (var l = lid - lid % lanes; l < lid - lid % lanes + lanes; l++) {
    total += tiledPartial[l];
  }
  return total;
}

fn tiledLaneMax(lid: u32, value: f32) -> f32 {
  let lanes = WG / TB;
  workgroupBarrier();
  tiledPartial[lid] = value;
  workgroupBarrier();
  var m = LOWEST;
  for (var l = lid - lid % lanes; l < lid - lid % lanes + lanes; l++) {
    m = max(m, tiledPartial[l]);
  }
  return m;
}

// attention_forward, register-tiled: workgroup (query block of TB, head, batch).
@compute @workgroup_size(WG)
fn attention_forward_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let first = wid.x * TB;
  let head = wid.y;
  let batch = wid.z;
  for (var i = lid; i < TB * D4; i += WG) {
    let q = first + i / D4;
    var v = vec4<f32>(0.0);
    if (q < SEQ) {
      v = qkv[qkvIndex(batch * SEQ + q, 0u, head) + i % D4];
    }
    storeBlockRow(i / D4, i % D4, v);
  }
  tiledScores(batch, 1u, head, lid);
  workgroupBarrier();

  // Softmax of each row over its attended keys; a row with none gets all-zero probabilities.
  let lanes = WG / TB;
  let r = lid / lanes;
  var m = LOWEST;
  for (var c = lid % lanes; c < SEQ; c += lanes) {
    if (attends(batch, c)) {
      m = max(m, tileAt(r, c) * params.scale);
    }
  }
  let rowMax = tiledLaneMax(lid, m);
  var s = 0.0;
  for (var c = lid % lanes; c < SEQ_PAD; c += lanes) {
    var p = 0.0;
    if (c < SEQ && attends(batch, c)) {
      p = exp(tileAt(r, c) * params.scale - rowMax);
    }
    setTile(r, c, p);
    s += p;
  }
  let rowSum = tiledLaneSum(lid, s);
  let inverse = select(0.0, 1.0 / rowSum, rowSum > 0.0);
  let probsRow = ((batch * params.heads + head) * SEQ + first + r) * SEQ;
  let key = dropKey(seeds[params.seedIndex]);
  for (var c = lid % lanes; c < SEQ; c += lanes) {
    let p = tileAt(r, c) * inverse;
    if (first + r < SEQ) {
      probs[probsRow + c] = p;
    }
    // Saved undropped; the output uses the dropped probabilities.
    if (PROBS_DROPOUT) {
      setTile(r, c, p * dropFactor(key, probsRow + c));
    } else {
      setTile(r, c, p);
    }
  }

  // Constant matrix column indices keep the accumulators in registers.
  let o = tiledTileTimesSection(batch, 2u, head, lid);
  let q = first + 4u * (lid / D4);
  storeOut(batch, q, head, lid % D4, o[0]);
  storeOut(batch, q + 1u, head, lid % D4, o[1]);
  storeOut(batch, q + 2u, head, lid % D4, o[2]);
  storeOut(batch, q + 3u, head, lid % D4, o[3]);
}

// Vec4 e of query q's output of `head`, if q is in the sequence.
fn storeOut(batch: u32, q: u32, head: u32, e: u32, v: vec4<f32>) {
  if (q < SEQ) {
    out[(batch * SEQ + q) * params.heads * D4 + head * D4 + e] = v;
  }
}

// attention_backward_query, register-tiled: workgroup (query block of TB, head, batch).
@compute @workgroup_size(WG)
fn attention_backward_query_tiled(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let first = wid.x * TB;
  let head = wid.y;
  let batch = wid.z;
  let hidden4 = params.heads * D4;
  for (var i = lid; i < TB * D4; i += WG) {
    let q = first + i / D4;
    var v = vec4<f32>(0.0);
    if (q < SEQ) {
      v = dout[(batch * SEQ + q) * hidden4 + head * D4 + i % D4];
    }
    storeBlockRow(i / D4, i % D4, v);
  }
  tiledScores(batch, 2u, head, lid);
  workgroupBarrier();

  let lanes = WG / TB;
  let r = lid / lanes;
  let valid = first + r < SEQ;
  let probsRow = ((batch * params.heads + head) * SEQ + first + r) * SEQ;
  let key = dropKey(seeds[params.seedIndex]);
  var d = 0.0;
  if (valid) {
    for (var c = lid % lanes; c < SEQ; c += lanes) {
      // dP = dP' * keep / (1 - p): the gradient reaching the undropped probabilities.
      var dp = tileAt(r, c);
      if (PROBS_DROPOUT) {
        dp *= dropFactor(key, probsRow + c);
        setTile(r, c, dp);
      }
      d += probs[probsRow + c] * dp;
    }
  }
  let rowDot = tiledLaneSum(lid, d);
  for (var c = lid % lanes; c < SEQ_PAD; c += lanes) {
    var ds = 0.0;
    if (valid && c < SEQ) {
      ds = probs[probsRow + c] * (tileAt(r, c) - rowDot) * params.scale;
      probs[probsRow + c] = ds;
    }
    setTile(r, c, ds);
  }

  let o = tiledTileTimesSection(batch, 1u, head, lid);
  let q = first + 4u * (lid / D4);
  storeDqkv(batch, q, 0u, head, lid % D4, o[0]);
  storeDqkv(batch, q + 1u, 0u, head, lid % D4, o[1]);
  storeDqkv(batch, q + 2u, 0u, head, lid % D4, o[2]);
  storeDqkv(batch, q + 3u, 0u, head, lid % D4, o[3]);
}

// Vec4 e of row `row`'s gradient in dqkv, section at vec4 offset section4 (head slices after it), if the
// row is in the sequence.
fn storeDqkv(batch: u32, row: u32, section4: u32, head: u32, e: u32, v: vec4<f32>) {
  if (row < SEQ) {
    dqkv[(batch * SEQ + row) * 3u * params.heads * D4 + section4 + head * D4 + e] = v;
  }
}

// attention_backward_keys, register-tiled: workgroup (key block of TB, head, batch); streams TK queries
// at a time, their weights to the block's keys key-major in tiledTile and their rows row-major.
@compute @workgroup_size(WG)
fn attention_backward_keys_tiled(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let first = wid.x * TB;
  let head = wid.y;
  let batch = wid.z;
  let weightsBase = (batch * params.heads + head) * SEQ * SEQ;
  let dropMask = dropKey(keysSeeds[params.seedIndex]);
  let g = lid / D4;
  let c = lid % D4;
  var o0 = vec4<f32>(0.0);
  var o1 = vec4<f32>(0.0);
  var o2 = vec4<f32>(0.0);
  var o3 = vec4<f32>(0.0);
  for (var i0 = 0u; i0 < SEQ; i0 += 4u * D4) {
    workgroupBarrier();
    for (var i = lid; i < 4u * D4 * D4; i += WG) {
      let t = i0 + i / D4;
      var v = vec4<f32>(0.0);
      if (t < SEQ) {
        v = rows[(batch * SEQ + t) * params.rowStride4 + head * D4 + i % D4];
      }
      tiledChunk[i] = v;
    }
    // tiledTile[t * 4 + kg] = weights of query i0 + t to keys first + 4kg..4kg+3.
    for (var i = lid; i < 4u * D4 * TB; i += WG) {
      let t = i0 + i / TB;
      let key = first + i % TB;
      var w = 0.0;
      if (t < SEQ && key < SEQ) {
        w = weights[weightsBase + t * SEQ + key];
        if (PROBS_DROPOUT) {
          w *= dropFactor(dropMask, weightsBase + t * SEQ + key);
        }
      }
      tiledTile[(i / TB) * 4u + (i % TB) / 4u][i % 4u] = w;
    }
    workgroupBarrier();
    for (var t = 0u; t < 4u * D4; t++) {
      let a = tiledTile[t * 4u + g];
      let b = tiledChunk[t * D4 + c];
      o0 += a.x * b;
      o1 += a.y * b;
      o2 += a.z * b;
      o3 += a.w * b;
    }
  }
  let key = first + 4u * g;
  storeDqkv(batch, key, params.outSection4, head, c, o0);
  storeDqkv(batch, key + 1u, params.outSection4, head, c, o1);
  storeDqkv(batch, key + 2u, params.outSection4, head, c, o2);
  storeDqkv(batch, key + 3u, params.outSection4, head, c, o3);
}
