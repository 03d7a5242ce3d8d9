import { accessSync, constants, statSync } from 'node:fs';
import type { Finding } from './checks.js';
import type { Inventory } from './inventory.js';

/**
 * The local files the inventory names: each must exist, be readable and be a
 * regular file; the registry password file must not be readable by everyone.
 * Checked by `enssib inventory check` (other commands meet them when they need
 * them), so that a file missing on this machine is found before a command fails.
 */
export function fileFindings(inv: Inventory): Finding[] {
  const d = inv.data;
  const named: { path: (string | number)[]; value: string | undefined; what: string; secret?: boolean }[] = [
    { path: ['ssh', 'config'], value: d.ssh?.config, what: 'ssh config' },
    { path: ['ssh', 'knownHosts'], value: d.ssh?.knownHosts, what: 'known_hosts file' },
    { path: ['registry', 'ca'], value: d.registry.ca, what: "registry's CA certificate" },
    { path: ['registry', 'auth', 'passwordFile'], value: d.registry.auth?.passwordFile, what: 'registry password file', secret: true },
    { path: ['kubernetes', 'kubeconfig'], value: d.kubernetes.kubeconfig, what: 'kubeconfig' },
  ];
  const out: Finding[] = [];
  for (const n of named) {
    if (n.value === undefined) continue;
    const file = inv.path(n.value);
    const problem = fileProblem(file, n.secret === true);
    if (problem) out.push({ path: n.path, message: `the ${n.what} ${file} ${problem}` });
  }
  return out;
}

function fileProblem(file: string, secret: boolean): string | null {
  let st;
  try {
    st = statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? String(e)})`;
  }
  if (st.isDirectory()) return 'is a directory, not a file';
  if (!st.isFile()) return 'is not a regular file';
  try {
    accessSync(file, constants.R_OK);
  } catch {
    return 'is not readable by this user';
  }
  if (secret && (st.mode & 0o004) !== 0) {
    return `is readable by everyone (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}): chmod 600 it`;
  }
  return null;
}
