import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { InterruptedError, OperationError, TimeoutError } from '../../../src/errors.js';
import { LocalHost, localPool } from '../../../src/remote/local.js';

/** The machine enssib runs on as a Host: real processes and files here (a temporary folder). */
describe('LocalHost', () => {
  const host = new LocalHost('admin');

  it('runs argv without a shell: exit code, stdout, stderr, input', async () => {
    expect(await host.exec(['sh', '-c', 'cat; echo err >&2; exit 3'], { input: 'a $(id) b' })).toMatchObject({ exitCode: 3, stdout: 'a $(id) b', stderr: 'err\n' });
    expect((await host.exec(['echo', '$HOME;', 'x'])).stdout).toBe('$HOME; x\n');
    await expect(host.run(['false'])).rejects.toThrow(/admin: command failed with exit code 1/);
    await expect(host.exec(['enssib-no-such-command'])).rejects.toThrow(OperationError);
  });

  it('streams stdout with a byte counter, and ends the stream', async () => {
    const sink = new PassThrough();
    let got = '';
    sink.on('data', (b: Buffer) => (got += b.toString()));
    const seen: number[] = [];
    const r = await host.stream(['sh', '-c', 'printf 1234; printf 56'], { stdout: sink, onProgress: (n) => seen.push(n) });
    expect(r).toMatchObject({ exitCode: 0, bytes: 6 });
    expect(got).toBe('123456');
    expect(seen.at(-1)).toBe(6);
    expect(sink.writableEnded).toBe(true);
  });

  it('a command past its time limit is stopped; a cancelled one too', async () => {
    await expect(host.exec(['sleep', '5'], { timeoutMs: 100 })).rejects.toThrow(TimeoutError);
    const ac = new AbortController();
    const running = host.exec(['sleep', '5'], { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await expect(running).rejects.toThrow(InterruptedError);
  });

  it('writes a file atomically with its mode, and only when it differs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'enssib-local-'));
    const path = join(dir, 'unit');
    expect(await host.upload({ path, content: 'x\n', mode: '0640' })).toBe('written');
    expect(statSync(path).mode & 0o777).toBe(0o640);
    expect(await host.upload({ path, content: 'x\n', mode: '0640' })).toBe('unchanged');
    expect(await host.upload({ path, content: 'x\n', mode: '0644' })).toBe('written');
    writeFileSync(path, 'changed by hand\n');
    expect(await host.upload({ path, content: 'x\n', mode: '0644' })).toBe('written');
    expect(readFileSync(path, 'utf8')).toBe('x\n');
    await expect(host.upload({ path: join(dir, 'no', 'such', 'dir', 'f'), content: '' })).rejects.toThrow(/admin: cannot write/);
  });

  it('its pool hands out this machine only', () => {
    const pool = localPool(host);
    expect(pool.get('admin')).toBe(host);
    expect(() => pool.get('data1')).toThrow(/not this machine/);
  });
});
