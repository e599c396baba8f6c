// Workgroup reductions in workgroup memory by a fixed tree: the loader adds this file after the prelude
// to a family that calls workgroup_sum or workgroup_max on a device without subgroups
// (reduce_subgroups.wgsl is the other variant, with the same functions). The family declares
// `override WG` (its workgroup size, one dimension, a power of two). The result is the same bit for bit
// on every run.

var<workgroup> reduce_slots: array<f32, WG>;

// The sum (or with `op_max` the largest) of `v` over the workgroup; every invocation gets it. Call from
// uniform control flow.
fn workgroup_reduce(v: f32, lid: u32, op_max: bool) -> f32 {
  reduce_slots[lid] = v;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      let a = reduce_slots[lid];
      let b = reduce_slots[lid + stride];
      reduce_slots[lid] = select(a + b, max(a, b), op_max);
    }
    workgroupBarrier();
  }
  let total = reduce_slots[0];
  workgroupBarrier(); // every invocation has read the total before the slots are written again
  return total;
}

// The sum of `v` over the workgroup; every invocation gets it. Call from uniform control flow.
fn workgroup_sum(v: f32, lid: u32) -> f32 {
  return workgroup_reduce(v, lid, false);
}

// The largest `v` over the workgroup; every invocation gets it. Call from uniform control flow.
fn workgroup_max(v: f32, lid: u32) -> f32 {
  return workgroup_reduce(v, lid, true);
}
