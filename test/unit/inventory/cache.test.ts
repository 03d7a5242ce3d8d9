import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { cachedInventory, inventoryLoader, rememberInventory } from '../../../src/inventory/cache.js';
import { parseInventory } from '../../../src/inventory/load.js';
import { enssib } from '../../support/cli.js';
import { VALID_INVENTORY } from '../../support/inventory-text.js';

function site() {
  const dir = mkdtempSync(join(tmpdir(), 'enssib-inv-cache-'));
  const file = join(dir, 'inventory.yaml');
  writeFileSync(file, VALID_INVENTORY);
  // the CA file the inventory names (inventory check verifies it)
  mkdirSync(join(dir, 'certs'));
  writeFileSync(join(dir, 'certs', 'enssib-ca.crt'), '');
  return { dir, file, env: { ENSSIB_CACHE_DIR: join(dir, 'cache'), HOME: dir } };
}

describe('the inventory cache', () => {
  it('gives back exactly what the parser validated (the data survives JSON)', () => {
    const s = site();
    const parsed = parseInventory(VALID_INVENTORY, s.file, s.env);
    expect(JSON.parse(JSON.stringify(parsed.data))).toStrictEqual(parsed.data);
    expect(cachedInventory(s.file, VALID_INVENTORY, s.env)).toBeNull();
    rememberInventory(s.file, VALID_INVENTORY, parsed.data, s.env);
    const hit = cachedInventory(s.file, VALID_INVENTORY, s.env);
    expect(hit?.data).toStrictEqual(parsed.data);
    expect(hit?.file).toBe(s.file);
    expect(hit?.path('certs/enssib-ca.crt')).toBe(join(s.dir, 'certs/enssib-ca.crt'));
  });

  it('misses on any change of the text or the path', () => {
    const s = site();
    rememberInventory(s.file, VALID_INVENTORY, parseInventory(VALID_INVENTORY, s.file, s.env).data, s.env);
    expect(cachedInventory(s.file, `${VALID_INVENTORY}# a comment\n`, s.env)).toBeNull();
    expect(cachedInventory(join(s.dir, 'other.yaml'), VALID_INVENTORY, s.env)).toBeNull();
  });

  it('keeps the 16 most recent inventories', () => {
    const s = site();
    const data = parseInventory(VALID_INVENTORY, s.file, s.env).data;
    for (let i = 0; i < 20; i++) rememberInventory(join(s.dir, `inv${i}.yaml`), VALID_INVENTORY, data, s.env);
    const entries = JSON.parse(readFileSync(join(s.env.ENSSIB_CACHE_DIR, 'inventories.json'), 'utf8')) as unknown[];
    expect(entries).toHaveLength(16);
    expect(cachedInventory(join(s.dir, 'inv19.yaml'), VALID_INVENTORY, s.env)).not.toBeNull();
    expect(cachedInventory(join(s.dir, 'inv3.yaml'), VALID_INVENTORY, s.env)).toBeNull();
  });

  it('treats a corrupt or unwritable cache as a miss', () => {
    const s = site();
    const data = parseInventory(VALID_INVENTORY, s.file, s.env).data;
    rememberInventory(s.file, VALID_INVENTORY, data, s.env);
    writeFileSync(join(s.env.ENSSIB_CACHE_DIR, 'inventories.json'), '{"not": "a list"');
    expect(cachedInventory(s.file, VALID_INVENTORY, s.env)).toBeNull();
    rememberInventory(s.file, VALID_INVENTORY, data, s.env);
    expect(cachedInventory(s.file, VALID_INVENTORY, s.env)).not.toBeNull();
    const blocked = { ...s.env, ENSSIB_CACHE_DIR: join(s.file, 'cannot-be-a-folder') };
    expect(() => rememberInventory(s.file, VALID_INVENTORY, data, blocked)).not.toThrow();
  });

  it('the loader parses and remembers on a miss, reads the cache on a hit, and reports a missing file when asked', async () => {
    const s = site();
    const first = await inventoryLoader(s.file, s.env, s.dir);
    expect(first().workers().map((h) => h.name)).toEqual(['node01', 'node02']);
    expect(cachedInventory(s.file, VALID_INVENTORY, s.env)).not.toBeNull();
    const second = await inventoryLoader(undefined, { ...s.env, ENSSIB_INVENTORY: s.file }, '/');
    expect(second().data).toStrictEqual(first().data);
    const missing = await inventoryLoader('nope.yaml', s.env, s.dir);
    expect(() => missing()).toThrow(ConfigError);
    expect(() => missing()).toThrow(/nope\.yaml: no such file/);
  });

  it('a command after an edit that breaks the inventory reports the error (never the cached inventory)', async () => {
    const s = site();
    const env = { ENSSIB_CACHE_DIR: s.env.ENSSIB_CACHE_DIR };
    expect((await enssib(['-i', s.file, 'inventory', 'check'], { env })).code).toBe(0);
    expect(existsSync(join(s.env.ENSSIB_CACHE_DIR, 'inventories.json'))).toBe(true);
    expect((await enssib(['-i', s.file, 'inventory', 'check'], { env })).code).toBe(0);
    writeFileSync(s.file, VALID_INVENTORY.replace('metadataHost: data1', 'metadataHost: node09'));
    const r = await enssib(['-i', s.file, 'inventory', 'check'], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('node09');
  });
});
