import { afterAll, beforeAll, beforeEach } from 'vitest';
import { makeSite, type Site } from './harness.js';
import { startKubeStandIn, type KubeStandIn } from './index.js';

/**
 * One stand-in API server per test file and a fresh site folder (inventory,
 * kubeconfig, services/) per test: the hooks every k8s test file needs.
 */
export function standInSite(opts: Parameters<typeof startKubeStandIn>[0] = {}): { readonly standIn: KubeStandIn; site: Site } {
  let standIn: KubeStandIn | undefined;
  let site: Site | undefined;
  beforeAll(async () => {
    standIn = await startKubeStandIn(opts);
  });
  afterAll(async () => {
    site?.cleanup();
    await standIn?.close();
  });
  beforeEach(() => {
    site?.cleanup();
    site = makeSite(env.standIn);
  });
  const env = {
    get standIn(): KubeStandIn {
      if (!standIn) throw new Error('the stand-in API server is not started yet');
      return standIn;
    },
    get site(): Site {
      if (!site) throw new Error('no site yet: use it inside a test');
      return site;
    },
    /** A test may swap in a site made another way (cleaned up like the others). */
    set site(s: Site) {
      site = s;
    },
  };
  return env;
}
