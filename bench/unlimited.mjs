// The benchmarks measure the edge, not its abuse limits: a copy of
// edge/wrangler.toml whose Rate Limiting bindings allow a billion requests a
// minute, beside it (so its relative paths hold). Returns its file name.
import { readFileSync, writeFileSync } from 'node:fs';

export function unlimitedConfig(root) {
  const name = 'wrangler.unlimited.toml';
  const toml = readFileSync(`${root}edge/wrangler.toml`, 'utf8').replace(/limit = \d+/g, 'limit = 1000000000');
  writeFileSync(`${root}edge/${name}`, toml);
  return name;
}
