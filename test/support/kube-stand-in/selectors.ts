/** STAND-IN: label and field selectors as the API server parses them (equality, set and existence terms). */
import { isObj, type Json, type Obj } from './fields.js';

type Term = (labels: Record<string, string>) => boolean;

function splitTerms(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur.trim() !== '') out.push(cur);
  return out.map((t) => t.trim()).filter(Boolean);
}

export class SelectorError extends Error {}

export function parseLabelSelector(s: string | null): (labels: Record<string, string>) => boolean {
  if (!s) return () => true;
  const terms: Term[] = splitTerms(s).map((t) => {
    let m = /^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(t);
    if (m) {
      const [, k, op, vs] = m as unknown as [string, string, string, string];
      const values = vs.split(',').map((v) => v.trim());
      return op === 'in' ? (l) => l[k] !== undefined && values.includes(l[k] as string) : (l) => l[k] === undefined || !values.includes(l[k] as string);
    }
    m = /^([^\s!=]+)\s*(==|=|!=)\s*([^\s]*)$/.exec(t);
    if (m) {
      const [, k, op, v] = m as unknown as [string, string, string, string];
      return op === '!=' ? (l) => l[k] !== v : (l) => l[k] === v;
    }
    m = /^(!?)([^\s!=]+)$/.exec(t);
    if (m) {
      const neg = m[1] === '!';
      const k = m[2] as string;
      return (l) => (l[k] !== undefined) !== neg;
    }
    throw new SelectorError(`unable to parse requirement: ${t}`);
  });
  return (labels) => terms.every((f) => f(labels));
}

function valueAt(obj: Obj, dotted: string): string {
  let cur: Json | undefined = obj;
  for (const p of dotted.split('.')) cur = isObj(cur) ? cur[p] : undefined;
  return cur === undefined || cur === null ? '' : String(cur);
}

export function parseFieldSelector(s: string | null): (obj: Obj) => boolean {
  if (!s) return () => true;
  const terms = splitTerms(s).map((t) => {
    const m = /^([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*)$/.exec(t);
    if (!m) throw new SelectorError(`invalid field selector: ${t}`);
    const [, path, op, v] = m as unknown as [string, string, string, string];
    return (o: Obj) => (op === '!=' ? valueAt(o, path) !== v : valueAt(o, path) === v);
  });
  return (o) => terms.every((f) => f(o));
}
