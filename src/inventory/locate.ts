import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../errors.js';

/**
 * Finding and reading the inventory file. Kept apart from the parser (YAML and
 * the schema) so that a command whose inventory is cached never loads it.
 */

/** An inventory is a few kilobytes; anything this large is a wrong file. */
export const MAX_INVENTORY_BYTES = 1024 * 1024;

export interface InventoryLocation {
  path: string;
  /** How the path was chosen, for error messages. */
  source: '--inventory' | 'ENSSIB_INVENTORY' | 'default';
}

export function locateInventory(flag: string | undefined, env: NodeJS.ProcessEnv, cwd: string): InventoryLocation {
  if (flag) return { path: resolve(cwd, flag), source: '--inventory' };
  if (env.ENSSIB_INVENTORY) return { path: resolve(cwd, env.ENSSIB_INVENTORY), source: 'ENSSIB_INVENTORY' };
  return { path: resolve(cwd, 'inventory.yaml'), source: 'default' };
}

/** The inventory's text; ConfigError when it is missing, a folder, unreadable or too large. */
export function readInventory(loc: InventoryLocation): string {
  const file = loc.path;
  let size: number;
  try {
    const st = statSync(file);
    if (st.isDirectory()) throw new ConfigError(`${file}: is a directory, not an inventory file`, hint(loc));
    size = st.size;
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(`${file}: ${code === 'ENOENT' ? 'no such file' : `cannot read (${code ?? String(e)})`}`, hint(loc));
  }
  if (size > MAX_INVENTORY_BYTES) {
    throw new ConfigError(`${file}: the file is ${(size / 1024 / 1024).toFixed(1)} MiB; an inventory is at most 1 MiB — is this the right file?`);
  }
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}

function hint(loc: InventoryLocation): string[] {
  if (loc.source === 'default') return ['enssib looks for --inventory PATH, then $ENSSIB_INVENTORY, then ./inventory.yaml.'];
  return [`(the path came from ${loc.source})`];
}
