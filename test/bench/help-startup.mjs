// `enssib --help` wall time against `node -e 0` (target: median at most 1.3x).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { median, requireBuild, ROOT } from './lib.mjs';

requireBuild();
const N = Number(process.env.N ?? 21);
const time = (args) => {
  const t = process.hrtime.bigint();
  execFileSync(process.execPath, args, { stdio: 'ignore' });
  return Number(process.hrtime.bigint() - t) / 1e6;
};
const base = [];
const help = [];
for (let i = 0; i < N; i++) {
  base.push(time(['-e', '0']));
  help.push(time([join(ROOT, 'bin/enssib.js'), '--help']));
}
const b = median(base);
const h = median(help);
console.log(`node -e 0:       median ${b.toFixed(1)} ms over ${N} runs`);
console.log(`enssib --help:   median ${h.toFixed(1)} ms over ${N} runs`);
console.log(`ratio:           ${(h / b).toFixed(2)}x (target <= 1.3x)`);
