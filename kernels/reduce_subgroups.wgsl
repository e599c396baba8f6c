// Workgroup reductions with subgroup operations: the loader adds this file after the prelude to a family
// that calls workgroup_sum or workgroup_max on a device with subgroups (reduce_workgroup.wgsl is the
// variant without). The family declares `override WG` (its workgroup size, one dimension, a multiple of
// the subgroup size).
//
// Each subgroup reduces its lanes, its first lane writes the result to its slot, and every subgroup
// reduces the slots the same way (each lane a strided share, then the subgroup operation again): one
// barrier to publish, one before the slots are reused, instead of a tree's log2(WG) + 1, and no long
// sequential sum (whose rounding a test of LayerNorm's precision caught with subgroups of 8). Subgroups
// are taken to be runs of consecutive local invocation indices, as on every implementation measured
// (NVIDIA, Mesa's lavapipe); the result is the same bit for bit on every run of one device.

// One slot per subgroup. Sized WG rather than WG / 4 (the most subgroups a workgroup can have): naga 29
// panics on an override expression as the size of an array in a module with several entry points.
var<workgroup> reduce_slots: array<f32, WG>;

fn subgroup_reduce(v: f32, op_max: bool) -> f32 {
  if (op_max) {
    return subgroupMax(v);
  }
  return subgroupAdd(v);
}

// The sum (or with `op_max` the largest) of `v` over the workgroup; every invocation gets it. Call from
// uniform control flow.
fn workgroup_reduce(v: f32, lid: u32, op_max: bool) -> f32 {
  // The subgroup's size, and this invocation's lane in it (subgroups being runs of consecutive indices).
  let lanes = subgroupAdd(1u);
  let lane = lid % lanes;
  let mine = subgroup_reduce(v, op_max);
  if (lane == 0u) {
    reduce_slots[lid / lanes] = mine;
  }
  workgroupBarrier();
  // Every subgroup reduces the slots alike: lane i takes slots i, i + lanes, ..., then the subgroup.
  var part = reduce_slots[0];
  if (!op_max) {
    part = 0.0;
  }
  for (var i = lane; i < WG / lanes; i += lanes) {
    part = select(part + reduce_slots[i], max(part, reduce_slots[i]), op_max);
  }
  let total = subgroup_reduce(part, op_max);
  workgroupBarrier(); // every invocation has read the slots before they are written again
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
