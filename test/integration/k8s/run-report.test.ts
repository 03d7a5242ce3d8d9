/**
 * `service deploy`, `service expose` and `secret create` report like plans do:
 * their -o json result is a RunReport (plan, mode, phases, undo, exitCode) with
 * their own fields added, and their journal record has the shape of a plan's.
 * Against the Kubernetes STAND-IN API server.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { standInSite } from '../../support/kube-stand-in/fixture.js';
import { journalLines, siteContext, standInImages, writeService } from '../../support/kube-stand-in/harness.js';
import { deployCommand } from '../../../src/services/deploy.js';
import { exposeCommand } from '../../../src/services/expose.js';
import { secretCreateCommand } from '../../../src/services/secret.js';

const env = standInSite({ rolloutMs: 100 });

const RECORD_KEYS = ['argv', 'durationMs', 'exitCode', 'phases', 'plan', 'time', 'undo', 'user'];

function lastRecord(): { plan: string; exitCode: number; phases: { title: string; hosts: { host: string; status: string; actions: string[] }[] }[]; undo: unknown[] } {
  const r = journalLines(env.site).at(-1);
  expect(Object.keys(r ?? {}).sort()).toEqual(RECORD_KEYS);
  return r as ReturnType<typeof lastRecord>;
}

function runJson(stdout: string): { plan: string; mode: string; dryRun: unknown; exitCode: number; phases: { title: string; hosts: { host: string; status: string; actions: string[] }[] }[]; undo: unknown[] } {
  const doc = JSON.parse(stdout) as ReturnType<typeof runJson>;
  expect(doc).toMatchObject({ plan: expect.any(String), mode: expect.any(String), exitCode: expect.any(Number), undo: expect.any(Array), phases: expect.any(Array) });
  return doc;
}

describe('one report and journal model for the commands that talk to the API server', () => {
  it('service deploy: RunReport JSON with the services beside it; the journal record is a plan record', async () => {
    writeService(env.site, 'kilo');
    const { ctx, stdout, stderr } = siteContext(env.site, { output: 'json' });
    expect(await deployCommand(ctx, { args: [['kilo']], opts: {} }, { images: standInImages(env.site) }), stderr()).toBe(0);
    const doc = runJson(stdout()) as ReturnType<typeof runJson> & { services: { service: string; status: string }[] };
    expect(doc).toMatchObject({ plan: 'service deploy kilo', mode: 'apply', dryRun: false, exitCode: 0 });
    expect(doc.services).toMatchObject([{ service: 'kilo', status: 'deployed' }]);
    expect(doc.phases[0]?.hosts[0]).toMatchObject({ host: 'kilo', status: 'done' });
    const rec = lastRecord();
    expect(rec.plan).toBe('service deploy kilo');
    expect(rec.phases[0]?.hosts[0]?.actions).toContain('apply apps/v1 Deployment default/kilo: created');
  });

  it('service deploy --dry-run=server: the same report in server mode, nothing journaled', async () => {
    writeService(env.site, 'lima');
    const { ctx, stdout } = siteContext(env.site, { output: 'json', dryRun: 'server' });
    expect(await deployCommand(ctx, { args: [['lima']], opts: {} }, { images: standInImages(env.site) })).toBe(0);
    const doc = runJson(stdout());
    expect(doc).toMatchObject({ mode: 'server', dryRun: 'server' });
    expect(doc.phases[0]?.hosts[0]).toMatchObject({ host: 'lima', status: 'would-change' });
    expect(journalLines(env.site)).toEqual([]);
  });

  it('service expose: RunReport JSON; the journal record names the ConfigMap and the entry', async () => {
    writeService(env.site, 'mike');
    const { ctx, stdout } = siteContext(env.site, { output: 'json' });
    expect(await exposeCommand(ctx, { args: ['mike'], opts: { ip: '192.168.66.40' } })).toBe(0);
    const doc = runJson(stdout()) as ReturnType<typeof runJson> & { entries: string[]; changed: boolean };
    expect(doc).toMatchObject({ plan: 'service expose mike --ip 192.168.66.40', mode: 'apply', changed: true, entries: ['default/mike'] });
    expect(doc.phases[0]?.hosts[0]).toMatchObject({ host: 'ConfigMap kube-system/vip-configmap', status: 'done' });
    expect(lastRecord().phases[0]?.hosts[0]?.actions).toEqual(['apply v1 ConfigMap kube-system/vip-configmap: 192.168.66.40 = default/mike']);
  });

  it('secret create: RunReport JSON and journal record with the key names, never the contents', async () => {
    writeFileSync(join(env.site.dir, 'pw'), 'CONTENT-5e1f\n');
    const { ctx, stdout } = siteContext(env.site, { output: 'json' });
    expect(await secretCreateCommand(ctx, { args: ['db-pass'], opts: { fromFile: ['password=pw'] } })).toBe(0);
    const doc = runJson(stdout()) as ReturnType<typeof runJson> & { action: string };
    expect(doc).toMatchObject({ plan: 'secret create db-pass', mode: 'apply', action: 'created' });
    expect(doc.phases[0]?.hosts[0]).toMatchObject({ host: 'Secret default/db-pass', status: 'done' });
    const rec = lastRecord();
    expect(rec.phases[0]?.hosts[0]?.actions[0]).toContain('keys: password; contents not recorded');
    expect(JSON.stringify(rec) + stdout()).not.toContain('CONTENT-5e1f');
  });
});
