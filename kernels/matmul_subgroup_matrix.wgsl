// Matrix products on the matrix units (tensor cores) through subgroup matrices: the products of
// matmul.wgsl for f16 A and B, with f32 accumulation. Dawn only (the subgroup-matrix extension); the
// loader declares the extension and the device's matrix shape SUBGROUP_MATRIX_M x _N x _K (16x16x16 on
// an H200, 8x8x8 on Mesa's lavapipe) and SUBGROUP_SIZE.
//
// C[m,n] = op(A)[m,k] op(B)[k,n], A stored [M,K] (or [K,M] when TRANS_A), B stored [K,N] (or [N,K] when
// TRANS_B), C stored [M,N]; rows lda, ldb and ldc elements apart; batched and split-K as in matmul.wgsl,
// with the same uniform (MatmulParams, in the prelude), and whose matmul_split_sum adds the split-K
// slices. MODE 0 writes C, 1 adds to C, 2 writes ADD + product.
//
// A workgroup of SG_ROWS x SG_COLS subgroups computes a BM x BN tile of C; each subgroup holds FRAG_M x
// FRAG_N result fragments of SUBGROUP_MATRIX_M x _N in named variables (an indexed array could spill).
// Tiles of A and B, BK deep, are double-buffered in workgroup memory in their stored layout (padded rows
// against bank conflicts) and read by subgroupMatrixLoad as row- or column-major; the next tile is loaded
// into registers, 8 halves per load, while the current one is multiplied; one barrier per tile. The
// results leave through a per-subgroup f32 fragment in workgroup memory, where the mode and C's storage
// type are applied.
//
// The wrapper guarantees: A and B stored f16; M, N, K, every offset, row stride and batch stride a
// multiple of 8 elements (one 16-byte load never straddles a row or the end of K). Ragged M, N and K
// slices are handled when EDGE is set: rows beyond M or N are clamped on load and skipped on store, k
// beyond the slice is loaded as zero.
alias C_T = f32;
alias ADD_T = f32;

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override MODE: u32 = 0u;
override EDGE: bool = false;
// Subgroups along m and n, result fragments per subgroup along m and n (1, 2 or 4), matrix steps of
// SUBGROUP_MATRIX_K per K tile, and halves of padding per row of a staged tile.
override SG_ROWS: u32 = 2u;
override SG_COLS: u32 = 2u;
override FRAG_M: u32 = 4u;
override FRAG_N: u32 = 4u;
override K_STEPS: u32 = 2u;
override PAD: u32 = 8u;

override THREADS: u32 = SUBGROUP_SIZE * SG_ROWS * SG_COLS;
override SUB_M: u32 = FRAG_M * SUBGROUP_MATRIX_M;
override SUB_N: u32 = FRAG_N * SUBGROUP_MATRIX_N;
override BM: u32 = SG_ROWS * SUB_M;
override BN: u32 = SG_COLS * SUB_N;
override BK: u32 = K_STEPS * SUBGROUP_MATRIX_K;
// Row strides of the staged tiles, in halves: A is [BM][BK] or, when TRANS_A, [BK][BM]; B is [BK][BN] or,
// when TRANS_B, [BN][BK].
override A_STRIDE: u32 = select(BK, BM, TRANS_A) + PAD;
override B_STRIDE: u32 = select(BN, BK, TRANS_B) + PAD;
override A_TILE: u32 = select(BM, BK, TRANS_A) * A_STRIDE;
override B_TILE: u32 = select(BK, BN, TRANS_B) * B_STRIDE;
// 16-byte loads per thread per K tile (1, 2, 4 or 8 each).
override LOADS_A: u32 = BM * BK / 8u / THREADS;
override LOADS_B: u32 = BN * BK / 8u / THREADS;

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> a8: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> b8: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> c: array<C_T>;
@group(0) @binding(4) var<storage, read> add: array<ADD_T>;

// The staged tiles: A's two buffers, then B's two (B_BASE on).
override B_BASE: u32 = 2u * A_TILE;
var<workgroup> tiles: array<f16, 2u * (A_TILE + B_TILE)>;
var<workgroup> out_frag: array<f32, SG_ROWS * SG_COLS * SUBGROUP_MATRIX_M * SUBGROUP_MATRIX_N>;

alias Left = subgroup_matrix_left<f16, SUBGROUP_MATRIX_K, SUBGROUP_MATRIX_M>;
alias Right = subgroup_matrix_right<f16, SUBGROUP_MATRIX_N, SUBGROUP_MATRIX_K>;
alias Result = subgroup_matrix_result<f32, SUBGROUP_MATRIX_N, SUBGROUP_MATRIX_M>;

// Where this workgroup's A, B and C start (in halves for A and B, elements for C), and its K slice.
var<private> a_start: u32;
var<private> b_start: u32;
var<private> c_start: u32;
var<private> k_end: u32;

// The next K tile in registers: 16-byte loads of A and of B.
var<private> na0: vec4<u32>;
var<private> na1: vec4<u32>;
var<private> na2: vec4<u32>;
var<private> na3: vec4<u32>;
var<private> na4: vec4<u32>;
var<private> na5: vec4<u32>;
var<private> na6: vec4<u32>;
var<private> na7: vec4<u32>;
var<private> nb0: vec4<u32>;
var<private> nb1: vec4<u32>;
var<private> nb2: vec4<u32>;
var<private> nb3: vec4<u32>;
var<private> nb4: vec4<u32>;
var<private> nb5: vec4<u32>;
var<private> nb6: vec4<u32>;
var<private> nb7: vec4<u32>;

// Load `slot` of A's K tile at k0: 8 halves along the stored row (k, or m when TRANS_A), as 4 words.
fn load_a(slot: u32, tid: u32, m0: u32, k0: u32) -> vec4<u32> {
  let i = tid + slot * THREADS;
  var row: u32;
  var col: u32;
  var zero = false;
  if (TRANS_A) {
    row = k0 + i / (BM / 8u);
    col = m0 + (i % (BM / 8u)) * 8u;
    if (EDGE) {
      zero = row >= k_end;
      row = min(row, k_end - 1u);
      col = min(col, p.m - 8u);
    }
  } else {
    row = m0 + i / (BK / 8u);
    col = k0 + (i % (BK / 8u)) * 8u;
    if (EDGE) {
      zero = col >= k_end;
      row = min(row, p.m - 1u);
      col = min(col, k_end - 8u);
    }
  }
  let v = a8[(a_start + row * p.lda + col) / 8u];
  return select(v, vec4<u32>(), zero);
}

// Load `slot` of B's K tile at k0 (the mirror image of load_a: B's stored rows are k unless TRANS_B).
fn load_b(slot: u32, tid: u32, n0: u32, k0: u32) -> vec4<u32> {
  let i = tid + slot * THREADS;
  var row: u32;
  var col: u32;
  var zero = false;
  if (TRANS_B) {
    row = n0 + i / (BK / 8u);
    col = k0 + (i % (BK / 8u)) * 8u;
    if (EDGE) {
      zero = col >= k_end;
      row = min(row, p.n - 1u);
      col = min(col, k_end - 8u);
    }
  } else {
    row = k0 + i / (BN / 8u);
    col = n0 + (i % (BN / 8u)) * 8u;
    if (EDGE) {
      zero = row >= k_end;
      row = min(row, k_end - 1u);
      col = min(col, p.n - 8u);
    }
  }
  let v = b8[(b_start + row * p.ldb + col) / 8u];
  return select(v, vec4<u32>(), zero);
}

// Where 16-byte load `slot` goes in a staged tile whose rows hold `width` halves, `stride` apart.
fn staged_index(slot: u32, tid: u32, width: u32, stride: u32) -> u32 {
  let i = tid + slot * THREADS;
  return (i / (width / 8u)) * stride + (i % (width / 8u)) * 8u;
}

// Stores the 8 halves of a 16-byte load at `s` of the staged tiles.
fn stage(s: u32, v: vec4<u32>) {
  let h0 = bitcast<vec2<f16>>(v.x);
  let h1 = bitcast<vec2<f16>>(v.y);
  let h2 = bitcast<vec2<f16>>(v.z);
  let h3 = bitcast<vec2<f16>>(v.w);
  tiles[s] = h0.x;
  tiles[s + 1u] = h0.y;
  tiles[s + 2u] = h1.x;
  tiles[s + 3u] = h1.y;
  tiles[s + 4u] = h2.x;
  tiles[s + 5u] = h2.y;
  tiles[s + 6u] = h3.x;
  tiles[s + 7u] = h3.y;
}

fn store_a(slot: u32, tid: u32, buf: u32, v: vec4<u32>) {
  stage(buf * A_TILE + staged_index(slot, tid, select(BK, BM, TRANS_A), A_STRIDE), v);
}

fn store_b(slot: u32, tid: u32, buf: u32, v: vec4<u32>) {
  stage(B_BASE + buf * B_TILE + staged_index(slot, tid, select(BN, BK, TRANS_B), B_STRIDE), v);
}

fn fetch_next(tid: u32, m0: u32, n0: u32, k0: u32) {
  na0 = load_a(0u, tid, m0, k0);
  if (LOADS_A > 1u) {
    na1 = load_a(1u, tid, m0, k0);
  }
  if (LOADS_A > 2u) {
    na2 = load_a(2u, tid, m0, k0);
    na3 = load_a(3u, tid, m0, k0);
  }
  if (LOADS_A > 4u) {
    na4 = load_a(4u, tid, m0, k0);
    na5 = load_a(5u, tid, m0, k0);
    na6 = load_a(6u, tid, m0, k0);
    na7 = load_a(7u, tid, m0, k0);
  }
  nb0 = load_b(0u, tid, n0, k0);
  if (LOADS_B > 1u) {
    nb1 = load_b(1u, tid, n0, k0);
  }
  if (LOADS_B > 2u) {
    nb2 = load_b(2u, tid, n0, k0);
    nb3 = load_b(3u, tid, n0, k0);
  }
  if (LOADS_B > 4u) {
    nb4 = load_b(4u, tid, n0, k0);
    nb5 = load_b(5u, tid, n0, k0);
    nb6 = load_b(6u, tid, n0, k0);
    nb7 = load_b(7u, tid, n0, k0);
  }
}

fn stash_next(tid: u32, buf: u32) {
  store_a(0u, tid, buf, na0);
  if (LOADS_A > 1u) {
    store_a(1u, tid, buf, na1);
  }
  if (LOADS_A > 2u) {
    store_a(2u, tid, buf, na2);
    store_a(3u, tid, buf, na3);
  }
  if (LOADS_A > 4u) {
    store_a(4u, tid, buf, na4);
    store_a(5u, tid, buf, na5);
    store_a(6u, tid, buf, na6);
    store_a(7u, tid, buf, na7);
  }
  store_b(0u, tid, buf, nb0);
  if (LOADS_B > 1u) {
    store_b(1u, tid, buf, nb1);
  }
  if (LOADS_B > 2u) {
    store_b(2u, tid, buf, nb2);
    store_b(3u, tid, buf, nb3);
  }
  if (LOADS_B > 4u) {
    store_b(4u, tid, buf, nb4);
    store_b(5u, tid, buf, nb5);
    store_b(6u, tid, buf, nb6);
    store_b(7u, tid, buf, nb7);
  }
}

// Fragment `f` (along m) of A at matrix step `ks` of staged buffer `buf`, for the subgroup whose rows
// start at `sub_m` within the tile.
fn fragment_a(buf: u32, sub_m: u32, f: u32, ks: u32) -> Left {
  let m = sub_m + f * SUBGROUP_MATRIX_M;
  let k = ks * SUBGROUP_MATRIX_K;
  if (TRANS_A) {
    return subgroupMatrixLoad<Left, col_major>(&tiles, buf * A_TILE + k * A_STRIDE + m, A_STRIDE);
  }
  return subgroupMatrixLoad<Left, row_major>(&tiles, buf * A_TILE + m * A_STRIDE + k, A_STRIDE);
}

fn fragment_b(buf: u32, sub_n: u32, f: u32, ks: u32) -> Right {
  let n = sub_n + f * SUBGROUP_MATRIX_N;
  let k = ks * SUBGROUP_MATRIX_K;
  if (TRANS_B) {
    return subgroupMatrixLoad<Right, col_major>(&tiles, B_BASE + buf * B_TILE + n * B_STRIDE + k, B_STRIDE);
  }
  return subgroupMatrixLoad<Right, row_major>(&tiles, B_BASE + buf * B_TILE + k * B_STRIDE + n, B_STRIDE);
}

// Writes result fragment `frag` at (row0, col0) of C through the subgroup's f32 fragment in workgroup
// memory, applying MODE and rounding to C's type. Every invocation of the workgroup calls it the same
// number of times (it has barriers).
fn write_fragment(frag: Result, sg: u32, lane: u32, lanes: u32, row0: u32, col0: u32) {
  let base = sg * SUBGROUP_MATRIX_M * SUBGROUP_MATRIX_N;
  subgroupMatrixStore<row_major>(&out_frag, base, frag, SUBGROUP_MATRIX_N);
  workgroupBarrier();
  for (var e = lane; e < SUBGROUP_MATRIX_M * SUBGROUP_MATRIX_N; e += lanes) {
    let row = row0 + e / SUBGROUP_MATRIX_N;
    let col = col0 + e % SUBGROUP_MATRIX_N;
    if (!EDGE || (row < p.m && col < p.n)) {
      let v = out_frag[base + e];
      let o = c_start + row * p.ldc + col;
      if (MODE == 1u) {
        c[o] = C_T(f32(c[o]) + v);
      } else if (MODE == 2u) {
        c[o] = C_T(f32(add[p.add_offset + row * p.ldc + col]) + v);
      } else {
        c[o] = C_T(v);
      }
    }
  }
  workgroupBarrier();
}

@compute @workgroup_size(THREADS)
fn matmul_subgroup_matrix(
  @builtin(local_invocation_index) tid: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(subgroup_id) sg: u32,
  @builtin(subgroup_invocation_id) lane: u32,
  @builtin(subgroup_size) lanes: u32,
) {
  let m0 = wid.y * BM;
  let n0 = wid.x * BN;
  let slice = wid.z % p.splits;
  let k_begin = slice * p.k_chunk;
  // A local bounds the loop (uniform for Tint, which holds private variables as varying).
  let k_stop = min(p.k, k_begin + p.k_chunk);
  k_end = k_stop;
  let offsets = matmul_batch_offsets(p, wid.z / p.splits);
  a_start = offsets.x;
  b_start = offsets.y;
  c_start = offsets.z + slice * p.split_stride;
  let sub_m = (sg / SG_COLS) * SUB_M;
  let sub_n = (sg % SG_COLS) * SUB_N;

  // Result fragments c<row><column> of the subgroup's FRAG_M x FRAG_N (subgroup matrices live in
  // function scope only).
  var c00 = Result();
  var c01 = Result();
  var c02 = Result();
  var c03 = Result();
  var c10 = Result();
  var c11 = Result();
  var c12 = Result();
  var c13 = Result();
  var c20 = Result();
  var c21 = Result();
  var c22 = Result();
  var c23 = Result();
  var c30 = Result();
  var c31 = Result();
  var c32 = Result();
  var c33 = Result();
  let tiles = (k_stop - k_begin + BK - 1u) / BK;
  fetch_next(tid, m0, n0, k_begin);
  stash_next(tid, 0u);
  workgroupBarrier();
  for (var t = 0u; t < tiles; t++) {
    let more = t + 1u < tiles;
    if (more) {
      fetch_next(tid, m0, n0, k_begin + (t + 1u) * BK);
    }
    // Each matrix step loads the subgroup's FRAG_M fragments of A and FRAG_N of B once, then multiplies
    // every pair into the accumulators.
    let buf = t % 2u;
    for (var ks = 0u; ks < K_STEPS; ks++) {
      let a0 = fragment_a(buf, sub_m, 0u, ks);
      var a1 = a0;
      var a2 = a0;
      var a3 = a0;
      if (FRAG_M > 1u) {
        a1 = fragment_a(buf, sub_m, 1u, ks);
      }
      if (FRAG_M > 2u) {
        a2 = fragment_a(buf, sub_m, 2u, ks);
        a3 = fragment_a(buf, sub_m, 3u, ks);
      }
      let b0 = fragment_b(buf, sub_n, 0u, ks);
      var b1 = b0;
      var b2 = b0;
      var b3 = b0;
      if (FRAG_N > 1u) {
        b1 = fragment_b(buf, sub_n, 1u, ks);
      }
      if (FRAG_N > 2u) {
        b2 = fragment_b(buf, sub_n, 2u, ks);
        b3 = fragment_b(buf, sub_n, 3u, ks);
      }
      c00 = subgroupMatrixMultiplyAccumulate(a0, b0, c00);
      if (FRAG_N > 1u) {
        c01 = subgroupMatrixMultiplyAccumulate(a0, b1, c01);
      }
      if (FRAG_N > 2u) {
        c02 = subgroupMatrixMultiplyAccumulate(a0, b2, c02);
        c03 = subgroupMatrixMultiplyAccumulate(a0, b3, c03);
      }
      if (FRAG_M > 1u) {
        c10 = subgroupMatrixMultiplyAccumulate(a1, b0, c10);
        if (FRAG_N > 1u) {
          c11 = subgroupMatrixMultiplyAccumulate(a1, b1, c11);
        }
        if (FRAG_N > 2u) {
          c12 = subgroupMatrixMultiplyAccumulate(a1, b2, c12);
          c13 = subgroupMatrixMultiplyAccumulate(a1, b3, c13);
        }
      }
      if (FRAG_M > 2u) {
        c20 = subgroupMatrixMultiplyAccumulate(a2, b0, c20);
        c30 = subgroupMatrixMultiplyAccumulate(a3, b0, c30);
        if (FRAG_N > 1u) {
          c21 = subgroupMatrixMultiplyAccumulate(a2, b1, c21);
          c31 = subgroupMatrixMultiplyAccumulate(a3, b1, c31);
        }
        if (FRAG_N > 2u) {
          c22 = subgroupMatrixMultiplyAccumulate(a2, b2, c22);
          c23 = subgroupMatrixMultiplyAccumulate(a2, b3, c23);
          c32 = subgroupMatrixMultiplyAccumulate(a3, b2, c32);
          c33 = subgroupMatrixMultiplyAccumulate(a3, b3, c33);
        }
      }
    }
    if (more) {
      stash_next(tid, (t + 1u) % 2u);
    }
    workgroupBarrier();
  }

  let row = m0 + sub_m;
  let col = n0 + sub_n;
  let fm = SUBGROUP_MATRIX_M;
  let fc = SUBGROUP_MATRIX_N;
  write_fragment(c00, sg, lane, lanes, row, col);
  if (FRAG_N > 1u) {
    write_fragment(c01, sg, lane, lanes, row, col + fc);
  }
  if (FRAG_N > 2u) {
    write_fragment(c02, sg, lane, lanes, row, col + 2u * fc);
    write_fragment(c03, sg, lane, lanes, row, col + 3u * fc);
  }
  if (FRAG_M > 1u) {
    write_fragment(c10, sg, lane, lanes, row + fm, col);
    if (FRAG_N > 1u) {
      write_fragment(c11, sg, lane, lanes, row + fm, col + fc);
    }
    if (FRAG_N > 2u) {
      write_fragment(c12, sg, lane, lanes, row + fm, col + 2u * fc);
      write_fragment(c13, sg, lane, lanes, row + fm, col + 3u * fc);
    }
  }
  if (FRAG_M > 2u) {
    write_fragment(c20, sg, lane, lanes, row + 2u * fm, col);
    write_fragment(c30, sg, lane, lanes, row + 3u * fm, col);
    if (FRAG_N > 1u) {
      write_fragment(c21, sg, lane, lanes, row + 2u * fm, col + fc);
      write_fragment(c31, sg, lane, lanes, row + 3u * fm, col + fc);
    }
    if (FRAG_N > 2u) {
      write_fragment(c22, sg, lane, lanes, row + 2u * fm, col + 2u * fc);
      write_fragment(c23, sg, lane, lanes, row + 2u * fm, col + 3u * fc);
      write_fragment(c32, sg, lane, lanes, row + 3u * fm, col + 2u * fc);
      write_fragment(c33, sg, lane, lanes, row + 3u * fm, col + 3u * fc);
    }
  }
}
