// Loads the Kubernetes STAND-IN API server (TypeScript, under test/support/) for
// the k8s benchmarks, through Vite's module runner (vitest's own dependency).
import { join } from 'node:path';
import { runnerImport } from 'vite';

const ROOT = join(import.meta.dirname, '..', '..');

export async function loadStandIn() {
  const { module } = await runnerImport(join(ROOT, 'test/support/kube-stand-in/index.ts'), { configFile: false, root: ROOT, logLevel: 'silent' });
  return module;
}
