import { UsageError } from './errors.js';

/**
 * Names that reach a shell, a file path, an IQN or the Kubernetes API are checked
 * here first: a DNS-1123 label (lowercase letters, digits, '-', starting with a
 * letter, ending with a letter or digit, at most `max` characters).
 */
const LABEL = /^[a-z]([a-z0-9-]*[a-z0-9])?$/;

export function validateName(kind: string, value: unknown, max = 63): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new UsageError(`${kind} name is empty`, [`A ${kind} name is a DNS-1123 label, e.g. "mail".`]);
  }
  const shown = JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  if (value.length > max) {
    throw new UsageError(`${kind} name ${shown} is ${value.length} characters long; at most ${max} are allowed`);
  }
  if (!LABEL.test(value)) {
    throw new UsageError(`${kind} name ${shown} is not valid`, [
      'Use lowercase letters a-z, digits and "-", starting with a letter and ending with a letter or digit (a DNS-1123 label), e.g. "mail".',
    ]);
  }
  if (kind === 'volume') {
    const reserved = LVM_RESERVED_PREFIXES.find((p) => value.startsWith(p));
    if (reserved) {
      throw new UsageError(`volume name ${shown} is reserved by LVM: names starting "${reserved}" are refused by lvcreate`, [
        'LVM reserves LV names starting "snapshot" or "pvmove", names starting "_" and names containing _cdata, _cmeta, _corig, _mimage, _mlog, _rimage, _rmeta, _tdata, _tmeta, _vorigin, …',
        'Choose another name, e.g. "mail-snapshots".',
      ]);
    }
  }
  return value;
}

/**
 * LV names LVM refuses (lvm(8), "VALID NAMES"). A DNS-1123 label has no "_", so
 * the reserved suffixes (_mlog, _rimage, …) and a leading "_" are already out;
 * what is left are the reserved prefixes.
 */
export const LVM_RESERVED_PREFIXES = ['snapshot', 'pvmove'] as const;

const BINARY: Record<string, number> = { K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4, P: 1024 ** 5 };

/** Largest size accepted anywhere: 1 EiB, far above any volume group, far below 2^63. */
const MAX_BYTES = 1024 ** 6;

/** How sizes are written, for --help and error hints. */
export const SIZE_HELP = 'a number and a binary unit: M, G, T (or MiB, GiB, TiB), e.g. 512M, 200G, 1.5T; "GB" and a bare number are refused';

/**
 * Parses "200G", "1.5T", "512M", "10GiB" into bytes. Units are binary and
 * required: "200" (bytes?) and "200GB" (decimal or binary?) are refused with a
 * hint rather than guessed. `what` names the value in messages ("size", "new size").
 */
export function parseSize(value: unknown, what = 'size'): number {
  const example = 'Give a size such as 200G, 1.5T or 512M: enssib speaks binary units (1G = 1 GiB = 1024 MiB).';
  if (typeof value !== 'string' || value.trim() === '') throw new UsageError(`${what} is empty`, [example]);
  const shown = JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) {
    const n = Number(v);
    if (n === 0) throw new UsageError(`${what} ${shown} must be greater than zero`);
    const guess = n >= 1024 ** 2 ? `If ${v} is in bytes, that is about ${formatBytes(n)}; write it with its unit.` : `Did you mean ${v}G?`;
    throw new UsageError(`${what} ${shown} has no unit`, [guess, example]);
  }
  const decimal = /^(\d+(?:\.\d+)?)\s*([KMGTP])B$/i.exec(v);
  if (decimal) {
    const u = (decimal[2] ?? '').toUpperCase();
    throw new UsageError(`${what} ${shown}: "${v.slice((decimal[1] ?? '').length).trim()}" is ambiguous (decimal or binary?)`, [
      `enssib speaks binary units: write ${decimal[1]}${u} or ${decimal[1]}${u}iB (1${u} = 1024${u === 'K' ? ' bytes' : ` ${prevUnit(u)}iB`}).`,
    ]);
  }
  const m = /^(\d+(?:\.\d+)?)\s*([KMGTP])(iB)?$/i.exec(v);
  if (!m) throw new UsageError(`${what} ${shown} is not valid`, [example]);
  const bytes = Number(m[1]) * (BINARY[(m[2] ?? '').toUpperCase()] ?? 1);
  if (!Number.isFinite(bytes) || bytes <= 0) throw new UsageError(`${what} ${shown} must be greater than zero`);
  if (bytes > MAX_BYTES) throw new UsageError(`${what} ${shown} is larger than anything enssib manages (1 EiB)`);
  if (bytes < 1024 ** 2) throw new UsageError(`${what} ${shown} is below 1M: enssib makes no volume smaller than 1M`);
  return Math.round(bytes);
}

function prevUnit(u: string): string {
  return { M: 'K', G: 'M', T: 'G', P: 'T' }[u] ?? '';
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'K', 'M', 'G', 'T', 'P'];
  let i = 0;
  let v = bytes;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number.isInteger(v) ? v : Number(v.toFixed(2))}${units[i]}`;
}
