// General matrix products C[m,n] = op(A)[m,k] op(B)[k,n] in f32, for every layout the model needs:
// A stored [M,K] (or [K,M] when TRANS_A), B stored [K,N] (or [N,K] when TRANS_B), C stored [M,N].
//
// Entry points:
// - matmul_tiled: the fast kernel (design in /work/shared/notes/wgsl-matmul-h200.md). A workgroup of
//   WG_X x WG_Y threads computes a BM x BN tile of C; each thread owns 8 rows x (4 * COL_GROUPS) columns
//   held in named vec4 accumulators (an indexed private array spills). Tiles of A and B are
//   double-buffered in workgroup memory, k-major as vec4, so every fragment read is one vec4 load; the
//   next K tile is loaded into registers while the current one is multiplied; one barrier per K tile.
//   Needs vec4-aligned rows (the wrapper checks); ragged M, N and K are handled when EDGE is set.
//   Split-K: workgroup z multiplies only the K slice [z * k_chunk, (z + 1) * k_chunk) and writes its
//   partial product to slice z of a scratch buffer (split_stride elements apart); matmul_split_sum then
//   (its own entry point) adds the slices in a fixed order. This fills the GPU when M x N has few tiles
//   but K is deep (weight gradients: K = tokens).
// - matmul_general: a plain 16x16 shared-memory kernel for any shape, offset and stride (scalar loads).
//
// Rows are lda, ldb and ldc elements apart (a matrix inside a wider one, e.g. one head's columns of the
// fused QKV activations). Batched products: workgroup z (with splits, z / splits) picks product
// t = outer * batch_inner + inner, whose matrices start outer * x_outer + inner * x_inner elements
// after their offsets (e.g. outer a sequence, inner a head). The uniform, MatmulParams, is in the prelude
// (matmul_subgroup_matrix.wgsl shares it).
//
// MODE: 0 writes C = op(A) op(B); 1 accumulates C += op(A) op(B); 2 writes C = ADD + op(A) op(B).
// Every sum runs in a fixed order, so results are identical from run to run.
//
// Storage: A, B, C and ADD are each f32 or f16 (the aliases below, see src/gpu/kernels.ts). The math is
// f32 throughout: operands are widened as they are loaded, and C is rounded once as it is stored. The
// split-K partial products stay f32.
alias A_T = f32;
alias B_T = f32;
alias C_T = f32;
alias ADD_T = f32;

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override MODE: u32 = 0u;

@group(0) @binding(0) var<uniform> p: MatmulParams;

// ---------------------------------------------------------------------------------------------------
// matmul_tiled

// Threads along n and along m.
override WG_X: u32 = 16u;
override WG_Y: u32 = 16u;
// Column groups of 4 per thread: 2 (an 8x8 thread tile) or 4 (8x16).
override COL_GROUPS: u32 = 2u;
// K depth of one workgroup tile (8 or 16), and how many of its k steps are written out in each pass of the
// loop over them (8: all of them, and no loop; see multiply_tile).
override BK: u32 = 8u;
override K_UNROLL: u32 = 8u;
// Set when M, N or a K slice is not a multiple of the tile: loads clamp rows and zero k beyond the
// slice, stores skip rows and columns beyond C.
override EDGE: bool = false;

override THREADS: u32 = WG_X * WG_Y;
override BM: u32 = 8u * WG_Y;
override BN: u32 = 4u * COL_GROUPS * WG_X;
// vec4 loads per thread per K tile: BM * BK / 4 / THREADS of A and BN * BK / 4 / THREADS of B (1, 2 or 4).
override LOADS_A: u32 = 2u * BK / WG_X;
override LOADS_B: u32 = COL_GROUPS * BK / WG_Y;

@group(0) @binding(1) var<storage, read> a4: array<vec4<A_T>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<B_T>>;
@group(0) @binding(3) var<storage, read_write> c4: array<vec4<C_T>>;
@group(0) @binding(4) var<storage, read> add4: array<vec4<ADD_T>>;

// Two buffers of BK k-rows, each row the tile's BM (or BN) values as vec4; the inner size is a constant
// (BM, BN <= 128) so index clamps on it depend only on the thread and can be hoisted out of the loop.
var<workgroup> tile_a: array<array<vec4<f32>, 32>, 2u * BK>;
var<workgroup> tile_b: array<array<vec4<f32>, 32>, 2u * BK>;

// Accumulators: c<row><column group>. Rows 0-3 are the thread's first group of 4 rows, 4-7 its second
// group (BM / 2 further down); column group g starts 4 * WG_X * g columns right of group 0.
var<private> c00: vec4<f32>;
var<private> c01: vec4<f32>;
var<private> c02: vec4<f32>;
var<private> c03: vec4<f32>;
var<private> c10: vec4<f32>;
var<private> c11: vec4<f32>;
var<private> c12: vec4<f32>;
var<private> c13: vec4<f32>;
var<private> c20: vec4<f32>;
var<private> c21: vec4<f32>;
var<private> c22: vec4<f32>;
var<private> c23: vec4<f32>;
var<private> c30: vec4<f32>;
var<private> c31: vec4<f32>;
var<private> c32: vec4<f32>;
var<private> c33: vec4<f32>;
var<private> c40: vec4<f32>;
var<private> c41: vec4<f32>;
var<private> c42: vec4<f32>;
var<private> c43: vec4<f32>;
var<private> c50: vec4<f32>;
var<private> c51: vec4<f32>;
var<private> c52: vec4<f32>;
var<private> c53: vec4<f32>;
var<private> c60: vec4<f32>;
var<private> c61: vec4<f32>;
var<private> c62: vec4<f32>;
var<private> c63: vec4<f32>;
var<private> c70: vec4<f32>;
var<private> c71: vec4<f32>;
var<private> c72: vec4<f32>;
var<private> c73: vec4<f32>;

// End of this workgroup's K slice, and where its A, B and C (or partial product) start, in vec4s.
var<private> k_end: u32;
var<private> a_start: u32;
var<private> b_start: u32;
var<private> c_start: u32;

// The next K tile, held in registers while the current one is multiplied. It stays in the storage type
// until it is written to workgroup memory: widened as it is loaded, f16 may make the thread wait for the
// load at the start of the tile instead of after its products (the suspected cost of f16 operands; the
// change is not yet timed on a GPU).
var<private> next_a0: vec4<A_T>;
var<private> next_a1: vec4<A_T>;
var<private> next_a2: vec4<A_T>;
var<private> next_a3: vec4<A_T>;
var<private> next_b0: vec4<B_T>;
var<private> next_b1: vec4<B_T>;
var<private> next_b2: vec4<B_T>;
var<private> next_b3: vec4<B_T>;

// Load slot `slot` of A for the K tile at k0. Consecutive threads take consecutive rows of the tile
// when A is row-major (so the transposing store below writes consecutive words), and consecutive
// vec4s along m when A is stored transposed.
fn load_a(slot: u32, tid: u32, m0: u32, k0: u32) -> vec4<A_T> {
  let i = tid + slot * THREADS;
  if (TRANS_A) {
    let k = k0 + i / (BM / 4u);
    var m4 = m0 / 4u + i % (BM / 4u);
    var kr = k;
    if (EDGE) {
      m4 = min(m4, p.m / 4u - 1u);
      kr = min(k, k_end - 1u);
    }
    let v = a4[a_start + kr * (p.lda / 4u) + m4];
    return select(v, vec4<A_T>(), EDGE && k >= k_end);
  }
  let k4 = k0 / 4u + i / BM;
  var m = m0 + i % BM;
  var k4r = k4;
  if (EDGE) {
    m = min(m, p.m - 1u);
    k4r = min(k4, k_end / 4u - 1u);
  }
  let v = a4[a_start + m * (p.lda / 4u) + k4r];
  return select(v, vec4<A_T>(), EDGE && k4 >= k_end / 4u);
}

fn store_a(slot: u32, tid: u32, buf: u32, stored: vec4<A_T>) {
  let v = vec4<f32>(stored);
  let i = tid + slot * THREADS;
  if (TRANS_A) {
    tile_a[buf * BK + i / (BM / 4u)][i % (BM / 4u)] = v;
    return;
  }
  let k = buf * BK + (i / BM) * 4u;
  let m = i % BM;
  tile_a[k][m / 4u][m % 4u] = v.x;
  tile_a[k + 1u][m / 4u][m % 4u] = v.y;
  tile_a[k + 2u][m / 4u][m % 4u] = v.z;
  tile_a[k + 3u][m / 4u][m % 4u] = v.w;
}

// Load slot `slot` of B for the K tile at k0 (mirror image of load_a: B's rows are k unless TRANS_B).
fn load_b(slot: u32, tid: u32, n0: u32, k0: u32) -> vec4<B_T> {
  let i = tid + slot * THREADS;
  if (TRANS_B) {
    let k4 = k0 / 4u + i / BN;
    var n = n0 + i % BN;
    var k4r = k4;
    if (EDGE) {
      n = min(n, p.n - 1u);
      k4r = min(k4, k_end / 4u - 1u);
    }
    let v = b4[b_start + n * (p.ldb / 4u) + k4r];
    return select(v, vec4<B_T>(), EDGE && k4 >= k_end / 4u);
  }
  let k = k0 + i / (BN / 4u);
  var n4 = n0 / 4u + i % (BN / 4u);
  var kr = k;
  if (EDGE) {
    n4 = min(n4, p.n / 4u - 1u);
    kr = min(k, k_end - 1u);
  }
  let v = b4[b_start + kr * (p.ldb / 4u) + n4];
  return select(v, vec4<B_T>(), EDGE && k >= k_end);
}

fn store_b(slot: u32, tid: u32, buf: u32, stored: vec4<B_T>) {
  let v = vec4<f32>(stored);
  let i = tid + slot * THREADS;
  if (!TRANS_B) {
    tile_b[buf * BK + i / (BN / 4u)][i % (BN / 4u)] = v;
    return;
  }
  let k = buf * BK + (i / BN) * 4u;
  let n = i % BN;
  tile_b[k][n / 4u][n % 4u] = v.x;
  tile_b[k + 1u][n / 4u][n % 4u] = v.y;
  tile_b[k + 2u][n / 4u][n % 4u] = v.z;
  tile_b[k + 3u][n / 4u][n % 4u] = v.w;
}

fn fetch_next(tid: u32, m0: u32, n0: u32, k0: u32) {
  next_a0 = load_a(0u, tid, m0, k0);
  if (LOADS_A > 1u) {
    next_a1 = load_a(1u, tid, m0, k0);
  }
  if (LOADS_A > 2u) {
    next_a2 = load_a(2u, tid, m0, k0);
    next_a3 = load_a(3u, tid, m0, k0);
  }
  next_b0 = load_b(0u, tid, n0, k0);
  if (LOADS_B > 1u) {
    next_b1 = load_b(1u, tid, n0, k0);
  }
  if (LOADS_B > 2u) {
    next_b2 = load_b(2u, tid, n0, k0);
    next_b3 = load_b(3u, tid, n0, k0);
  }
}

fn stash_next(tid: u32, buf: u32) {
  store_a(0u, tid, buf, next_a0);
  if (LOADS_A > 1u) {
    store_a(1u, tid, buf, next_a1);
  }
  if (LOADS_A > 2u) {
    store_a(2u, tid, buf, next_a2);
    store_a(3u, tid, buf, next_a3);
  }
  store_b(0u, tid, buf, next_b0);
  if (LOADS_B > 1u) {
    store_b(1u, tid, buf, next_b1);
  }
  if (LOADS_B > 2u) {
    store_b(2u, tid, buf, next_b2);
    store_b(3u, tid, buf, next_b3);
  }
}

// One k step: the outer product of the thread's 8 values of A and 4 * COL_GROUPS values of B at tile row r.
// Written as fma() (SPIR-V's GLSL.std.450 Fma) rather than `c += a * b`, a multiply and an add that the
// driver may fuse or not; WGSL lets fma round either way too, so this asks, it does not guarantee.
fn step(r: u32, tx: u32, ty: u32) {
  let a0 = tile_a[r][ty];
  let a1 = tile_a[r][ty + WG_Y];
  let b0 = tile_b[r][tx];
  let b1 = tile_b[r][tx + WG_X];
  c00 = fma(vec4<f32>(a0.x), b0, c00);
  c01 = fma(vec4<f32>(a0.x), b1, c01);
  c10 = fma(vec4<f32>(a0.y), b0, c10);
  c11 = fma(vec4<f32>(a0.y), b1, c11);
  c20 = fma(vec4<f32>(a0.z), b0, c20);
  c21 = fma(vec4<f32>(a0.z), b1, c21);
  c30 = fma(vec4<f32>(a0.w), b0, c30);
  c31 = fma(vec4<f32>(a0.w), b1, c31);
  c40 = fma(vec4<f32>(a1.x), b0, c40);
  c41 = fma(vec4<f32>(a1.x), b1, c41);
  c50 = fma(vec4<f32>(a1.y), b0, c50);
  c51 = fma(vec4<f32>(a1.y), b1, c51);
  c60 = fma(vec4<f32>(a1.z), b0, c60);
  c61 = fma(vec4<f32>(a1.z), b1, c61);
  c70 = fma(vec4<f32>(a1.w), b0, c70);
  c71 = fma(vec4<f32>(a1.w), b1, c71);
  if (COL_GROUPS == 4u) {
    let b2 = tile_b[r][tx + 2u * WG_X];
    let b3 = tile_b[r][tx + 3u * WG_X];
    c02 = fma(vec4<f32>(a0.x), b2, c02);
    c03 = fma(vec4<f32>(a0.x), b3, c03);
    c12 = fma(vec4<f32>(a0.y), b2, c12);
    c13 = fma(vec4<f32>(a0.y), b3, c13);
    c22 = fma(vec4<f32>(a0.z), b2, c22);
    c23 = fma(vec4<f32>(a0.z), b3, c23);
    c32 = fma(vec4<f32>(a0.w), b2, c32);
    c33 = fma(vec4<f32>(a0.w), b3, c33);
    c42 = fma(vec4<f32>(a1.x), b2, c42);
    c43 = fma(vec4<f32>(a1.x), b3, c43);
    c52 = fma(vec4<f32>(a1.y), b2, c52);
    c53 = fma(vec4<f32>(a1.y), b3, c53);
    c62 = fma(vec4<f32>(a1.z), b2, c62);
    c63 = fma(vec4<f32>(a1.z), b3, c63);
    c72 = fma(vec4<f32>(a1.w), b2, c72);
    c73 = fma(vec4<f32>(a1.w), b3, c73);
  }
}

// With K_UNROLL = 8 the k steps are written out with no loop at all. Deno's naga bounds every WGSL loop
// with a hidden 64-bit counter (wgpu's force_loop_bounding: a vec2<u32> Function variable tested with all()
// and decremented each pass), so the loop `for (kk = 0; kk < BK; kk += 8)` (one pass at a depth of 8, two
// at 16) reaches the driver as a two-exit loop whose trip count it may not fold; then kk, the row index r
// and naga's min(r, 2 * BK - 1) clamps stay live in every step. Straight-line code leaves every row index a
// constant once the driver inlines the steps. (The branch is on overrides: the loop is dead code for the u8
// tiles.)
fn multiply_tile(buf: u32, tx: u32, ty: u32) {
  if (K_UNROLL == 8u) {
    eight_steps(buf * BK, tx, ty);
    if (BK == 16u) {
      eight_steps(buf * BK + 8u, tx, ty);
    }
  } else {
    for (var kk = 0u; kk < BK; kk += K_UNROLL) {
      let r = buf * BK + kk;
      step(r, tx, ty);
      if (K_UNROLL > 1u) {
        step(r + 1u, tx, ty);
      }
      if (K_UNROLL > 2u) {
        step(r + 2u, tx, ty);
        step(r + 3u, tx, ty);
      }
    }
  }
}

// The k steps of tile rows r to r + 7, written out.
fn eight_steps(r: u32, tx: u32, ty: u32) {
  step(r, tx, ty);
  step(r + 1u, tx, ty);
  step(r + 2u, tx, ty);
  step(r + 3u, tx, ty);
  step(r + 4u, tx, ty);
  step(r + 5u, tx, ty);
  step(r + 6u, tx, ty);
  step(r + 7u, tx, ty);
}

fn write_c4(m: u32, n4: u32, v: vec4<f32>) {
  if (EDGE && (m >= p.m || n4 >= p.n / 4u)) {
    return;
  }
  let i = c_start + m * (p.ldc / 4u) + n4;
  if (MODE == 1u) {
    c4[i] = vec4<C_T>(vec4<f32>(c4[i]) + v);
  } else if (MODE == 2u) {
    c4[i] = vec4<C_T>(vec4<f32>(add4[p.add_offset / 4u + m * (p.ldc / 4u) + n4]) + v);
  } else {
    c4[i] = vec4<C_T>(v);
  }
}

fn write_row(m: u32, n4: u32, v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>) {
  write_c4(m, n4, v0);
  write_c4(m, n4 + WG_X, v1);
  if (COL_GROUPS == 4u) {
    write_c4(m, n4 + 2u * WG_X, v2);
    write_c4(m, n4 + 3u * WG_X, v3);
  }
}

@compute @workgroup_size(WG_X, WG_Y)
fn matmul_tiled(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let tx = lid.x;
  let ty = lid.y;
  let tid = ty * WG_X + tx;
  let m0 = wid.y * BM;
  let n0 = wid.x * BN;
  let slice = wid.z % p.splits;
  let k_begin = slice * p.k_chunk;
  // A local, not the private k_end, bounds the loop: Tint's uniformity analysis treats private variables
  // as varying per invocation, and the loop holds barriers.
  let k_stop = min(p.k, k_begin + p.k_chunk);
  k_end = k_stop;
  let offsets = matmul_batch_offsets(p, wid.z / p.splits);
  a_start = offsets.x / 4u;
  b_start = offsets.y / 4u;
  c_start = (offsets.z + slice * p.split_stride) / 4u;
  // K is walked in pairs of tiles (buffer 0 then buffer 1) so that buffer indices are constants.
  let pairs = (k_stop - k_begin + 2u * BK - 1u) / (2u * BK);
  fetch_next(tid, m0, n0, k_begin);
  stash_next(tid, 0u);
  workgroupBarrier();
  for (var t = 0u; t < pairs; t++) {
    let k0 = k_begin + t * 2u * BK;
    fetch_next(tid, m0, n0, k0 + BK);
    multiply_tile(0u, tx, ty);
    stash_next(tid, 1u);
    workgroupBarrier();
    let more = t + 1u < pairs;
    if (more) {
      fetch_next(tid, m0, n0, k0 + 2u * BK);
    }
    multiply_tile(1u, tx, ty);
    if (more) {
      stash_next(tid, 0u);
    }
    workgroupBarrier();
  }
  let m = m0 + ty * 4u;
  let h = BM / 2u;
  let n4 = n0 / 4u + tx;
  write_row(m, n4, c00, c01, c02, c03);
  write_row(m + 1u, n4, c10, c11, c12, c13);
  write_row(m + 2u, n4, c20, c21, c22, c23);
  write_row(m + 3u, n4, c30, c31, c32, c33);
  write_row(m + h, n4, c40, c41, c42, c43);
  write_row(m + h + 1u, n4, c50, c51, c52, c53);
  write_row(m + h + 2u, n4, c60, c61, c62, c63);
  write_row(m + h + 3u, n4, c70, c71, c72, c73);
}

// ---------------------------------------------------------------------------------------------------
// matmul_split_sum: C (=, +=, = ADD +) the sum of the split-K partial products, slice 0 first.

@group(0) @binding(1) var<storage, read> partials: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> sum_c: array<vec4<C_T>>;
@group(0) @binding(3) var<storage, read> sum_add: array<vec4<ADD_T>>;

@compute @workgroup_size(256)
fn matmul_split_sum(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= p.split_stride / 4u) {
    return;
  }
  var sum = partials[i];
  for (var z = 1u; z < p.splits; z++) {
    sum += partials[z * (p.split_stride / 4u) + i];
  }
  let o = p.c_offset / 4u + i;
  if (MODE == 1u) {
    sum_c[o] = vec4<C_T>(vec4<f32>(sum_c[o]) + sum);
  } else if (MODE == 2u) {
    sum_c[o] = vec4<C_T>(vec4<f32>(sum_add[p.add_offset / 4u + i]) + sum);
  } else {
    sum_c[o] = vec4<C_T>(sum);
  }
}

// ---------------------------------------------------------------------------------------------------
// matmul_general: one output per thread, 16x16 tiles, any shape and offset.

@group(0) @binding(1) var<storage, read> a1: array<A_T>;
@group(0) @binding(2) var<storage, read> b1: array<B_T>;
@group(0) @binding(3) var<storage, read_write> c1: array<C_T>;
@group(0) @binding(4) var<storage, read> add1: array<ADD_T>;

var<workgroup> general_a: array<array<f32, 16>, 16>;
var<workgroup> general_b: array<array<f32, 16>, 16>;

fn element_a(a0: u32, i: u32, k: u32) -> f32 {
  if (i >= p.m || k >= p.k) {
    return 0.0;
  }
  if (TRANS_A) {
    return f32(a1[a0 + k * p.lda + i]);
  }
  return f32(a1[a0 + i * p.lda + k]);
}

fn element_b(b0: u32, k: u32, j: u32) -> f32 {
  if (k >= p.k || j >= p.n) {
    return 0.0;
  }
  if (TRANS_B) {
    return f32(b1[b0 + j * p.ldb + k]);
  }
  return f32(b1[b0 + k * p.ldb + j]);
}

@compute @workgroup_size(16, 16)
fn matmul_general(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let i = wid.y * 16u + lid.y;
  let j = wid.x * 16u + lid.x;
  let offsets = matmul_batch_offsets(p, wid.z);
  var sum = 0.0;
  for (var k0 = 0u; k0 < p.k; k0 += 16u) {
    general_a[lid.y][lid.x] = element_a(offsets.x, i, k0 + lid.x);
    general_b[lid.y][lid.x] = element_b(offsets.y, k0 + lid.y, j);
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      sum += general_a[lid.y][kk] * general_b[kk][lid.x];
    }
    workgroupBarrier();
  }
  if (i >= p.m || j >= p.n) {
    return;
  }
  let o = offsets.z + i * p.ldc + j;
  if (MODE == 1u) {
    c1[o] = C_T(f32(c1[o]) + sum);
  } else if (MODE == 2u) {
    c1[o] = C_T(f32(add1[p.add_offset + i * p.ldc + j]) + sum);
  } else {
    c1[o] = C_T(sum);
  }
}
