// Shared by every kernel family: the loader (src/gpu/kernels.ts) puts this file, after the enable lines
// the backend needs, before each family's source. Error messages keep the family's own line numbers.

// The flat index of invocation `lid` of a workgroup of `size` invocations in a grid of `nwg` workgroups,
// for kernels with more workgroups than one dimension holds (flatGrid in src/model/layers/plan.ts):
// workgroups count along x, then y.
fn flat_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32, size: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * size + lid;
}

// The largest and the sum of a vec4's components (pairwise, in a fixed order).
fn max4(v: vec4<f32>) -> f32 {
  return max(max(v.x, v.y), max(v.z, v.w));
}

fn sum4(v: vec4<f32>) -> f32 {
  return (v.x + v.y) + (v.z + v.w);
}

// PCG-RXS-M-XS, in wrapping u32 arithmetic like the reference's Math.imul version (the dropout hash: the
// tests hold every kernel that drops to the reference's dropoutKeep, bit for bit).
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

// Element `index` of stream `key`, as the reference's hashIndex: two rounds of pcg (one round leaves
// correlations of about 1e-3 between elements at a few distances rich in powers of two).
fn hash_index(key: u32, index: u32) -> u32 {
  return pcg(pcg(key ^ index));
}

// The dynamic loss scale of f16 storage (src/model/loss_scale.ts): the losses' kernels multiply their
// gradient by `scale` (cross_entropy.wgsl, head.wgsl), and the gradient norm divides it out and adjusts it
// (optimizer.wgsl).
struct LossScale {
  scale: f32,
  // Finite steps in a row since the scale last changed.
  good_steps: u32,
}

// The uniform of the matrix products, which matmul.wgsl and matmul_subgroup_matrix.wgsl share field for
// field (src/model/layers/matmul.ts declares it once, by name, for either).
struct MatmulParams {
  m: u32,
  n: u32,
  k: u32,
  // Element offsets of each matrix inside its buffer (multiples of 4 for matmul_tiled).
  a_offset: u32,
  b_offset: u32,
  c_offset: u32,
  add_offset: u32,
  // K depth of one split-K slice (k when not split), the distance between the slices' partial
  // products in the scratch buffer, and the number of slices.
  k_chunk: u32,
  split_stride: u32,
  splits: u32,
  // Row strides of the stored A, B and C (ADD has C's).
  lda: u32,
  ldb: u32,
  ldc: u32,
  // Batched products: the inner count, and each matrix's strides per outer and per inner index.
  batch_inner: u32,
  a_outer: u32,
  a_inner: u32,
  b_outer: u32,
  b_inner: u32,
  c_outer: u32,
  c_inner: u32,
}

// Element offsets of product `t`'s A, B and C (batched products: see matmul.wgsl).
fn matmul_batch_offsets(p: MatmulParams, t: u32) -> vec3<u32> {
  let outer = t / p.batch_inner;
  let inner = t % p.batch_inner;
  return vec3<u32>(
    p.a_offset + outer * p.a_outer + inner * p.a_inner,
    p.b_offset + outer * p.b_outer + inner * p.b_inner,
    p.c_offset + outer * p.c_outer + inner * p.c_inner,
  );
}
