import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

/**
 * globalSetup of the 'hosts' project: starts the hosts lab (one Debian
 * container per inventory host, each a real OpenSSH server) once per run.
 * Fails the run when the lab cannot start — never skips.
 */
const ROOT = join(import.meta.dirname, '..', '..');
export const HOSTS_LAB_STATE = process.env.ENSSIB_HOSTS_LAB_STATE ?? '/tmp/enssib-lab-hosts';

export default function setup(project: TestProject): () => void {
  execFileSync('bash', [join(ROOT, 'test/lab/hosts/up.sh'), '--state', HOSTS_LAB_STATE], { stdio: ['ignore', 'ignore', 'inherit'] });
  project.provide('hostsLab', HOSTS_LAB_STATE);
  return () => {
    if (process.env.ENSSIB_KEEP_LAB) return;
    execFileSync('bash', [join(ROOT, 'test/lab/hosts/down.sh'), '--state', HOSTS_LAB_STATE], { stdio: ['ignore', 'ignore', 'inherit'] });
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** State folder of the hosts lab: inventory.yaml, ssh_config, known_hosts, stand-ins/bin, hosts.json. */
    hostsLab: string;
  }
}
