import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { contentTag, HashCache, hashContext, readBuildContext, type TagInputs } from '../../../src/images/context.js';

const made: string[] = [];
afterEach(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A context folder; files are written in the order given (to show order does not matter). */
function folder(files: Record<string, string | { content: string; mode: number }>): string {
  const dir = mkdtempSync(join(tmpdir(), 'enssib-ctx-'));
  made.push(dir);
  for (const [p, v] of Object.entries(files)) {
    const f = join(dir, p);
    mkdirSync(dirname(f), { recursive: true });
    writeFileSync(f, typeof v === 'string' ? v : v.content);
    if (typeof v !== 'string') chmodSync(f, v.mode);
  }
  return dir;
}

const digest = (dir: string) => hashContext(readBuildContext(dir));

const base = { Dockerfile: 'FROM scratch\nCOPY . /\n', 'app/main.sh': { content: '#!/bin/sh\n', mode: 0o755 }, 'app/data.txt': 'data\n' };

describe('build context and content tag', () => {
  it('lists what .dockerignore keeps, always with the Dockerfile and .dockerignore', () => {
    const dir = folder({ ...base, '.dockerignore': '*\n!app\n', 'notes.md': 'x' });
    const ctx = readBuildContext(dir);
    expect(ctx.entries.map((e) => `${e.type} ${e.path}${e.exec && e.type === 'file' ? ' +x' : ''}`)).toEqual([
      'file .dockerignore',
      'file Dockerfile',
      'dir app',
      'file app/data.txt',
      'file app/main.sh +x',
    ]);
    expect(ctx.excluded).toBe(1);
  });

  it('the same inputs give the same digest, whatever the order files were written in', () => {
    const a = folder(base);
    const b = folder(Object.fromEntries(Object.entries(base).reverse()));
    expect(digest(a)).toBe(digest(b));
    // Frozen: any checkout of these files, on any machine, hashes to this.
    expect(digest(a)).toBe('c0115136ed352a714b0cd37fb84af97434f3227e6ff0c243413429113f32ed26');
  });

  it('one byte of one file changes it', () => {
    const a = folder(base);
    const b = folder({ ...base, 'app/data.txt': 'datA\n' });
    expect(digest(a)).not.toBe(digest(b));
  });

  it('a file moved or renamed changes it, even with the same bytes', () => {
    const a = folder({ Dockerfile: 'x', 'a/b': 'same' });
    const b = folder({ Dockerfile: 'x', 'a/c': 'same' });
    const c = folder({ Dockerfile: 'x', 'ab': 'same' });
    expect(new Set([digest(a), digest(b), digest(c)]).size).toBe(3);
  });

  it('content cannot slide between adjacent files (length-prefixed)', () => {
    const a = folder({ Dockerfile: 'x', a: 'ab', b: 'c' });
    const b = folder({ Dockerfile: 'x', a: 'a', b: 'bc' });
    expect(digest(a)).not.toBe(digest(b));
  });

  it('the executable bit counts, the rest of the mode (umask) does not', () => {
    const a = folder(base);
    const umask = folder({ ...base, 'app/data.txt': { content: 'data\n', mode: 0o664 }, 'app/main.sh': { content: '#!/bin/sh\n', mode: 0o775 } });
    const noExec = folder({ ...base, 'app/main.sh': { content: '#!/bin/sh\n', mode: 0o644 } });
    expect(digest(umask)).toBe(digest(a));
    expect(digest(noExec)).not.toBe(digest(a));
  });

  it('a .dockerignored file does not change it; un-ignoring it does', () => {
    const a = folder({ ...base, '.dockerignore': 'secret\n*.log\n' });
    const b = folder({ ...base, '.dockerignore': 'secret\n*.log\n', secret: 'password', 'x.log': 'log' });
    expect(digest(b)).toBe(digest(a));
    const c = folder({ ...base, '.dockerignore': '*.log\n', secret: 'password', 'x.log': 'log' });
    expect(digest(c)).not.toBe(digest(a));
  });

  it('an empty folder and a symlink are part of the context', () => {
    const a = folder(base);
    const b = folder(base);
    mkdirSync(join(b, 'empty'));
    expect(digest(b)).not.toBe(digest(a));
    const c = folder(base);
    symlinkSync('app/data.txt', join(c, 'link'));
    const d = folder(base);
    symlinkSync('app/main.sh', join(d, 'link'));
    expect(digest(c)).not.toBe(digest(a));
    expect(digest(c)).not.toBe(digest(d));
    expect(readBuildContext(c).entries.find((e) => e.path === 'link')).toMatchObject({ type: 'symlink', target: 'app/data.txt' });
  });

  it('large files are hashed in chunks with the same result as their bytes', () => {
    const big = 'x'.repeat(3 * 1024 * 1024 + 17);
    const a = folder({ Dockerfile: 'x', big });
    const b = folder({ Dockerfile: 'x', big: `${big.slice(0, -1)}y` });
    expect(digest(a)).not.toBe(digest(b));
    expect(digest(a)).toBe(digest(folder({ Dockerfile: 'x', big })));
  });

  describe('the file hash cache', () => {
    const old = (dir: string, p: string) => {
      const t = new Date(Date.now() - 3600_000);
      utimesSync(join(dir, p), t, t);
    };
    /** Hash with the cache as if run `laterMs` after the files were written (ctime cannot be set back). */
    const cached = (cacheDir: string, dir: string, laterMs = 10_000) => {
      const c = HashCache.open(cacheDir, dir, Date.now() + laterMs);
      const d = hashContext(readBuildContext(dir), c);
      c.save(dir);
      return d;
    };

    it('gives the digest of a full read, and is really used for unchanged files', () => {
      const dir = folder(base);
      const cacheDir = mkdtempSync(join(tmpdir(), 'enssib-cache-'));
      made.push(cacheDir);
      for (const p of ['Dockerfile', 'app/main.sh', 'app/data.txt']) old(dir, p);
      const truth = digest(dir);
      expect(cached(cacheDir, dir)).toBe(truth);
      expect(cached(cacheDir, dir)).toBe(truth);

      // Tamper with the recorded hash of data.txt: the next digest follows the cache…
      const [file] = readdirSync(cacheDir);
      const path = join(cacheDir, file as string);
      const saved = JSON.parse(readFileSync(path, 'utf8')) as { files: Record<string, { k: string; h: string }> };
      const key = join(dir, 'app/data.txt');
      expect(saved.files[key]).toBeDefined();
      (saved.files[key] as { h: string }).h = '0'.repeat(64);
      writeFileSync(path, JSON.stringify(saved));
      expect(cached(cacheDir, dir)).not.toBe(truth);

      // …until the file is written again (new mtime and ctime): it is read and hashed anew.
      writeFileSync(join(dir, 'app/data.txt'), 'data\n');
      old(dir, 'app/data.txt');
      expect(cached(cacheDir, dir)).toBe(truth);
    });

    it('a file changed within a clock tick of being hashed is never recorded; the same-size edit is seen', () => {
      const dir = folder(base);
      const cacheDir = mkdtempSync(join(tmpdir(), 'enssib-cache-'));
      made.push(cacheDir);
      const first = cached(cacheDir, dir, -10_000);
      writeFileSync(join(dir, 'app/data.txt'), 'DATA\n');
      expect(cached(cacheDir, dir, -10_000)).not.toBe(first);
      const [file] = readdirSync(cacheDir);
      const saved = JSON.parse(readFileSync(join(cacheDir, file as string), 'utf8')) as { files: Record<string, unknown> };
      expect(saved.files[join(dir, 'app/data.txt')]).toBeUndefined();
    });

    it('a broken cache file is ignored', () => {
      const dir = folder(base);
      const cacheDir = mkdtempSync(join(tmpdir(), 'enssib-cache-'));
      made.push(cacheDir);
      cached(cacheDir, dir);
      const [file] = readdirSync(cacheDir);
      writeFileSync(join(cacheDir, file as string), '{"v":1,"dir":');
      expect(cached(cacheDir, dir)).toBe(digest(dir));
    });
  });

  describe('contentTag', () => {
    const inputs: TagInputs = { contextDigest: 'a'.repeat(64), dockerfile: 'Dockerfile', buildArgs: { A: '1', B: '2' }, bases: { 'debian:12': 'sha256:1' } };

    it('is stable: 20 hex characters, the same for the same inputs in any key order', () => {
      const t = contentTag(inputs);
      expect(t).toMatch(/^[0-9a-f]{20}$/);
      expect(contentTag({ ...inputs, buildArgs: { B: '2', A: '1' } })).toBe(t);
      // Frozen: the same inputs must give the same tag on any machine and in any later version
      // of enssib (changing the scheme would rebuild every image of the site once).
      expect(t).toBe('4f35456be73bc6f5ced6');
    });

    it('changes with the context, a build arg, the target, and the base image ID', () => {
      const t = contentTag(inputs);
      const variants: TagInputs[] = [
        { ...inputs, contextDigest: 'b'.repeat(64) },
        { ...inputs, buildArgs: { A: '1', B: '3' } },
        { ...inputs, buildArgs: { A: '1' } },
        { ...inputs, target: 'prod' },
        { ...inputs, bases: { 'debian:12': 'sha256:2' } },
        { ...inputs, bases: { 'debian:12': null } },
        { ...inputs, bases: {} },
      ];
      const tags = variants.map(contentTag);
      expect(new Set([t, ...tags]).size).toBe(variants.length + 1);
    });

    it('a build arg cannot be confused with another split differently', () => {
      expect(contentTag({ ...inputs, buildArgs: { A: '1=B' } })).not.toBe(contentTag({ ...inputs, buildArgs: { 'A=1': 'B' } }));
    });
  });
});
