import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir } from '../cache-dir.js';
import { inventoryOf, type Inventory } from './inventory.js';
import { locateInventory, readInventory } from './locate.js';
import type { InventoryData } from './schema.js';

/**
 * The validated data of the inventories loaded last, so that a command whose
 * inventory did not change neither parses it nor loads the YAML parser and the
 * schema (most of enssib's start-up). An entry is found by the hash of the
 * file's path, its exact text and the source of the code that validates it
 * (load, schema, checks): any change to one of them is a miss. A miss, or a
 * cache that cannot be read, only means parsing again; failing to write it is
 * ignored. In `<cache>/inventories.json`, the last 16 inventories.
 */

const MAX_ENTRIES = 16;
const FILE = 'inventories.json';

interface Entry {
  key: string;
  data: InventoryData;
}

let validatorStamp: string | undefined;

/** The source of the modules that decide what a valid inventory is (their .js in dist, .ts under the tests). */
function validator(): string {
  if (validatorStamp === undefined) {
    const ext = extname(fileURLToPath(import.meta.url));
    const h = createHash('sha256');
    for (const m of ['load', 'schema', 'checks']) h.update(readFileSync(new URL(`./${m}${ext}`, import.meta.url))).update('\0');
    validatorStamp = h.digest('hex');
  }
  return validatorStamp;
}

function keyOf(file: string, text: string): string {
  return createHash('sha256').update(validator()).update('\0').update(file).update('\0').update(text).digest('hex');
}

function readEntries(env: NodeJS.ProcessEnv): Entry[] {
  try {
    const entries: unknown = JSON.parse(readFileSync(join(cacheDir(env, ''), FILE), 'utf8'));
    return Array.isArray(entries) ? entries.filter((e): e is Entry => typeof e?.key === 'string' && typeof e?.data === 'object' && e.data !== null) : [];
  } catch {
    return [];
  }
}

/** The cached inventory for this file and text, or null. */
export function cachedInventory(file: string, text: string, env: NodeJS.ProcessEnv): Inventory | null {
  let key: string;
  try {
    key = keyOf(file, text);
  } catch {
    return null;
  }
  const hit = readEntries(env).find((e) => e.key === key);
  return hit ? inventoryOf(hit.data, file, env) : null;
}

/** Keeps the validated data of this file and text (newest first, at most MAX_ENTRIES). */
export function rememberInventory(file: string, text: string, data: InventoryData, env: NodeJS.ProcessEnv): void {
  try {
    const key = keyOf(file, text);
    const entries = [{ key, data }, ...readEntries(env).filter((e) => e.key !== key)].slice(0, MAX_ENTRIES);
    const dir = cacheDir(env, '');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = join(dir, `${FILE}.${process.pid}.tmp`);
    writeFileSync(tmp, JSON.stringify(entries), { mode: 0o600 });
    renameSync(tmp, join(dir, FILE));
  } catch {
    // a cache that cannot be written costs the next command a parse, nothing else
  }
}

/**
 * How the command line's inventory will be loaded: from the cache when its
 * file did not change (the parser is then never loaded), else by the parser,
 * which remembers what it validated. Errors (no such file…) surface when the
 * command asks for the inventory, as before.
 */
export async function inventoryLoader(flag: string | undefined, env: NodeJS.ProcessEnv, cwd: string): Promise<() => Inventory> {
  const loc = locateInventory(flag, env, cwd);
  try {
    const hit = cachedInventory(loc.path, readInventory(loc), env);
    if (hit) return () => hit;
  } catch {
    // reported by the parser below, when the command needs the inventory
  }
  const { loadInventory } = await import('./load.js');
  return () => loadInventory(loc, env, { remember: true });
}
