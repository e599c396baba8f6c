import assert from "node:assert/strict";
import { crammed, tiny } from "../../src/model/config.ts";
import { dropoutSiteCount, EMBEDDING_SITE, headSite, layerSites } from "../../src/model/dropout_sites.ts";

Deno.test("every dropout site has its own seed index, and the indices fill 0..count-1", () => {
  for (const config of [tiny, crammed]) {
    const sites = [EMBEDDING_SITE, headSite(config)];
    for (let l = 0; l < config.layers; l++) sites.push(...Object.values(layerSites(l)));
    assert.deepEqual(
      [...sites].sort((a, b) => a - b),
      Array.from({ length: dropoutSiteCount(config) }, (_, i) => i),
    );
  }
  assert.equal(dropoutSiteCount(crammed), 50);
});
