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
  return value;
}

const UNITS: Record<string, number> = { '': 1, B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4, P: 1024 ** 5 };

/** Largest size accepted anywhere: 1 EiB, far above any volume group, far below 2^63. */
const MAX_BYTES = 1024 ** 6;

/**
 * Parses "200G", "1.5T", "512M", "10GiB" into bytes (binary units). Refuses zero,
 * negatives, garbage and absurd sizes.
 */
export function parseSize(value: unknown): number {
  if (typeof value !== 'string' || value.trim() === '') throw new UsageError('size is empty', ['Give a size such as 200G, 1.5T or 512M (binary units).']);
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(?:i?B)?\s*$/i.exec(value);
  const shown = JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (!m) throw new UsageError(`size ${shown} is not valid`, ['Give a size such as 200G, 1.5T or 512M (binary units K, M, G, T).']);
  const bytes = Number(m[1]) * (UNITS[(m[2] ?? '').toUpperCase()] ?? 1);
  if (!Number.isFinite(bytes) || bytes <= 0) throw new UsageError(`size ${shown} must be greater than zero`);
  if (bytes > MAX_BYTES) throw new UsageError(`size ${shown} is larger than anything enssib manages (1 EiB)`);
  if (bytes < 1024 ** 2) throw new UsageError(`size ${shown} is below 1M, the smallest volume enssib creates`);
  return Math.round(bytes);
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
