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

describe('commands started without the ssh layer', () => {
  const byFile = new Map(files.map((f) => [f.file, f]));
  const reach = (start: string): string[] => {
    const seen = new Set<string>();
    const todo = [start];
    while (todo.length > 0) {
      const f = (todo.pop() as string).replace(/\.js$/, '.ts');
      if (seen.has(f) || !byFile.has(f)) continue;
      seen.add(f);
      todo.push(...(byFile.get(f)?.imports ?? []));
    }
    return [...seen];
  };
  const callsHosts = (file: string) => /\.hosts\(\)/.test(readFileSync(join(SRC, file), 'utf8'));
  const table = readFileSync(join(SRC, 'cli/commands.ts'), 'utf8');
  // Handlers are `async () => (await import('../x.js')).fn` or a helper such as volumeHandler('createCommand').
  const helpers = new Map([...table.matchAll(/^const (\w+) = [^\n]*import\('\.\.\/([^']+)'\)/gm)].map((m) => [m[1] as string, m[2] as string]));
  const specs = [...table.matchAll(/path: \[([^\]]+)\]([\s\S]*?)handler: ([^\n]+)/g)].map((m) => ({
    path: m[1] as string,
    noSsh: /noSsh: true/.test(m[2] as string),
    module: /import\('\.\.\/([^']+)'\)/.exec(m[3] as string)?.[1] ?? helpers.get(/^(\w+)\(/.exec(m[3] as string)?.[1] ?? ''),
  }));

  it('finds the command table and the modules that reach the hosts', () => {
    expect(specs.length).toBeGreaterThan(20);
    expect(specs.filter((s) => s.noSsh).map((s) => s.path)).toContain("'image', 'push'");
    expect(specs.every((s) => s.module !== undefined)).toBe(true);
    expect(callsHosts('engine/execute.ts')).toBe(true);
  });

  it('a command marked noSsh loads no module that calls ctx.hosts()', () => {
    const offenders = specs.filter((s) => s.noSsh).flatMap((s) => (s.module ? reach(s.module).filter(callsHosts).map((f) => `${s.path} → ${f}`) : [`${s.path}: handler module not found`]));
    expect(offenders).toEqual([]);
  });
});
