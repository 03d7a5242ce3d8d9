import { readFileSync } from 'node:fs';
import type * as Yaml from 'yaml';
import type { Document, Node } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { crossCheck, type Finding } from './checks.js';
import { rememberInventory } from './cache.js';
import { inventoryOf, type Inventory } from './inventory.js';
import { readInventory, type InventoryLocation } from './locate.js';
import { inventorySchema } from './schema.js';
import { requireCjs } from '../require.js';

const { isMap, isScalar, isSeq, LineCounter, parseDocument } = requireCjs('yaml') as typeof Yaml;
type LineCounter = Yaml.LineCounter;

export { MAX_INVENTORY_BYTES, locateInventory, readInventory, type InventoryLocation } from './locate.js';

/**
 * Reads, parses and validates the inventory. `remember`: keep the validated
 * data in the cache (cache.ts), so that the next command skips this module.
 */
export function loadInventory(loc: InventoryLocation, env: NodeJS.ProcessEnv = process.env, opts: { remember?: boolean } = {}): Inventory {
  const text = readInventory(loc);
  const inv = parseInventory(text, loc.path, env);
  if (opts.remember) rememberInventory(loc.path, text, inv.data, env);
  return inv;
}

/** A loader of the inventory at `path` for createContext (tests; the CLI uses inventoryLoader, which caches). */
export function fileInventory(path: string, env: NodeJS.ProcessEnv = process.env): () => Inventory {
  return () => loadInventory({ path, source: '--inventory' }, env);
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
  return inventoryOf(parsed.data, file, env);
}

/** Findings about an inventory already loaded, each with its file:line:column (the file is read again for positions). */
export function findingLines(file: string, findings: Finding[]): string[] {
  const lc = new LineCounter();
  const doc = parseDocument(readFileSync(file, 'utf8'), { lineCounter: lc, prettyErrors: false });
  return findings.map((f) => `${locate(doc, lc, f.path, file)}: ${formatPath(f.path)}: ${f.message}`);
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
    case 'too_big':
    case 'too_small':
      return { path, message: boundMessage(issue, path, found) };
    default: {
      const msg = issue.message.replace(/^Invalid input: /, '');
      return { path, message: `${msg}${found !== undefined && !/found/.test(msg) ? `, found ${describe(found)}` : ''}` };
    }
  }
}

/** "70000 is not a port (1–65535)", "expected at least one host", "is longer than 63 characters": no library wording. */
function boundMessage(issue: z.core.$ZodIssueTooBig | z.core.$ZodIssueTooSmall, path: (string | number)[], found: unknown): string {
  if (!/^Too (big|small)/.test(issue.message)) return issue.message; // the schema's own words
  const big = issue.code === 'too_big';
  const limit = Number(big ? (issue as z.core.$ZodIssueTooBig).maximum : (issue as z.core.$ZodIssueTooSmall).minimum);
  const field = path[path.length - 1];
  if (issue.origin === 'number') {
    if (field === 'port') return `${String(found)} is not a port (1–65535)`;
    if (field === 'mtu') return `${String(found)} is not an MTU enssib accepts (576–65535; the site runs 9000)`;
    return `${String(found)} is ${big ? 'more' : 'less'} than ${big ? 'the most' : 'the least'} allowed (${limit})`;
  }
  if (issue.origin === 'string') return big ? `is longer than ${limit} characters` : limit <= 1 ? 'is empty' : `is shorter than ${limit} characters`;
  if (issue.origin === 'array') return big ? `has more than ${limit} entries` : limit <= 1 ? 'is empty: expected at least one entry' : `has fewer than ${limit} entries`;
  return issue.message;
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
