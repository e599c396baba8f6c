// Shared by every kernel family: the loader (src/gpu/kernels.ts) puts this file, after the enable lines
// the backend needs, before each family's source. Error messages keep the family's own line numbers.

// The flat index of invocation `lid` of a workgroup of `size` invocations in a grid of `nwg` workgroups,
// for kernels with more workgroups than one dimension holds (flatGrid in src/model/layers/plan.ts):
// workgroups count along x, then y.
fn flat_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32, size: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * size + lid;
}

// PCG-RXS-M-XS, in wrapping u32 arithmetic like the reference's Math.imul version (the dropout hash: the
// tests hold every kernel that drops to the reference's dropoutKeep, bit for bit).
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}
