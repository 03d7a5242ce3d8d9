import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { crossCheck, type Finding } from './checks.js';
import { Inventory } from './inventory.js';
import { inventorySchema } from './schema.js';

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

export function loadInventory(loc: InventoryLocation, env: NodeJS.ProcessEnv = process.env): Inventory {
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
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  return parseInventory(text, file, env);
}

export function parseInventory(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Inventory {
  if (text.trim() === '') throw new ConfigError(`${file}:1:1: the inventory is empty`, ['See README.md, section "Inventory", for the fields it needs.']);
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const lines = doc.errors.map((e) => {
      const pos = e.linePos?.[0] ?? lc.linePos(e.pos[0]);
      return `${file}:${pos.line}:${pos.col}: YAML syntax error: ${firstLine(e.message)}`;
    });
    throw new ConfigError(lines[0] as string, lines.slice(1));
  }
  if (doc.contents === null) throw new ConfigError(`${file}:1:1: the inventory is empty (only comments)`);
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(`${file}:1:1: expected a mapping of settings (site, networks, hosts, …), found ${describe(data)}`);
  }
  const parsed = inventorySchema.safeParse(data);
  const findings: Finding[] = parsed.success ? crossCheck(parsed.data) : parsed.error.issues.map((i) => zodFinding(i, data));
  if (findings.length > 0) {
    const lines = findings.map((f) => `${locate(doc, lc, f.path, file)}: ${formatPath(f.path)}: ${f.message}`);
    throw new ConfigError(lines[0] as string, lines.slice(1));
  }
  if (!parsed.success) throw new ConfigError(`${file}: invalid inventory`);
  const dir = dirname(file);
  const home = env.HOME ?? homedir();
  const resolvePath = (p: string) => (p === '~' ? home : p.startsWith('~/') ? join(home, p.slice(2)) : isAbsolute(p) ? p : resolve(dir, p));
  return new Inventory(parsed.data, file, resolvePath, env);
}

function hint(loc: InventoryLocation): string[] {
  if (loc.source === 'default') return ['enssib looks for --inventory PATH, then $ENSSIB_INVENTORY, then ./inventory.yaml.'];
  return [`(the path came from ${loc.source})`];
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

function zodFinding(issue: z.core.$ZodIssue, data: unknown): Finding {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  const found = valueAt(data, path);
  switch (issue.code) {
    case 'invalid_type':
      if (found === undefined) return { path, message: `missing; expected ${article(issue.expected)}` };
      return { path, message: `expected ${article(issue.expected)}, found ${describe(found)}` };
    case 'unrecognized_keys':
      return { path: [...path, issue.keys[0] ?? ''], message: `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}` };
    case 'invalid_value':
      return { path, message: `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, found ${describe(found)}` };
    default: {
      const msg = issue.message.replace(/^Invalid input: /, '');
      return { path, message: `${msg}${found !== undefined && !/found/.test(msg) ? `, found ${describe(found)}` : ''}` };
    }
  }
}

function article(t: string): string {
  if (t === 'array') return 'a list';
  if (t === 'object') return 'a mapping';
  return /^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`;
}

function valueAt(data: unknown, path: (string | number)[]): unknown {
  let cur: unknown = data;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[p];
  }
  return cur;
}

export function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  const s = JSON.stringify(v);
  return `${typeof v} ${s.length > 60 ? `${s.slice(0, 60)}…` : s}`;
}

/** file:line:column of the deepest node that exists along the path. */
function locate(doc: Document, lc: LineCounter, path: (string | number)[], file: string): string {
  let node: unknown = doc.contents;
  let best: Node | null = isNode(node) ? node : null;
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((it) => (isScalar(it.key) ? it.key.value : it.key) === key);
      if (!pair) break;
      // Point at the value when present, else at the key.
      node = pair.value ?? pair.key;
      best = isNode(node) ? node : isNode(pair.key) ? pair.key : best;
    } else if (isSeq(node) && typeof key === 'number') {
      node = node.items[key];
      if (!isNode(node)) break;
      best = node;
    } else break;
  }
  const offset = best?.range?.[0] ?? 0;
  const { line, col } = lc.linePos(offset);
  return `${file}:${line}:${col}`;
}

function isNode(n: unknown): n is Node {
  return typeof n === 'object' && n !== null && 'range' in n;
}

export function formatPath(path: (string | number)[]): string {
  if (path.length === 0) return '(top level)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}
