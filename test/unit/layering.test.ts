import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '../../src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? sources(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : []));
}

/** Every module a source file imports (static, type-only and dynamic), as paths relative to src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*)'(\.[^']+)'/g)].map((m) => m[1] as string);
  return specs.map((s) => relative(SRC, join(file, '..', s)));
}

const files = sources(SRC).map((f) => ({ file: relative(SRC, f), imports: importsOf(f) }));
const layer = (path: string) => path.split('/')[0] as string;

describe('layering of src/', () => {
  it('finds the sources and their imports', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(files.find((f) => f.file === 'services/deploy.ts')?.imports).toContain('k8s/api.js');
  });

  it('no module outside cli/ imports cli/', () => {
    const offenders = files.filter((f) => layer(f.file) !== 'cli').flatMap((f) => f.imports.filter((i) => layer(i) === 'cli').map((i) => `${f.file} → ${i}`));
    expect(offenders).toEqual([]);
  });

  it('images/ and services/ do not import each other', () => {
    const offenders = files.flatMap((f) => {
      const other = layer(f.file) === 'images' ? 'services' : layer(f.file) === 'services' ? 'images' : undefined;
      return other ? f.imports.filter((i) => layer(i) === other).map((i) => `${f.file} → ${i}`) : [];
    });
    expect(offenders).toEqual([]);
  });
});
