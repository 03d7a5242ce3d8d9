import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Invocation } from '../usecase.js';
import type { Context } from '../context.js';
import { ConfigError, ExitCode, UsageError } from '../errors.js';
import { validateName } from '../validate.js';
import { servicesDir } from './common.js';
import { parseManifests } from './manifests.js';

/** The service skeleton shipped with enssib (templates/service/). */
export function templateDir(): string {
  return fileURLToPath(new URL('../../templates/service/', import.meta.url));
}

export interface RenderedFile {
  name: string;
  content: string;
}

/** The skeleton's files with the service name filled in (checked: the YAML must read as manifests). */
export function renderServiceTemplate(name: string, dir = templateDir()): RenderedFile[] {
  validateName('service', name);
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => !n.startsWith('.') || n === '.dockerignore').sort();
  } catch {
    throw new ConfigError(`the service templates are missing (${dir}): is enssib installed completely?`);
  }
  const files = names.map((n) => ({ name: n, content: readFileSync(join(dir, n), 'utf8').replaceAll('{{name}}', name) }));
  for (const f of files) if (/\.ya?ml$/.test(f.name)) parseManifests(f.content, join(dir, f.name));
  return files;
}

/** `enssib service new <name>`: a folder that deploys as it is. */
export async function newServiceCommand(ctx: Context, inv: Invocation): Promise<number> {
  const name = validateName('service', inv.args[0]);
  const root = servicesDir(ctx);
  const dir = join(root, name);
  if (existsSync(dir)) throw new UsageError(`${dir} already exists`, ['Choose another name, or edit that folder.']);
  const files = renderServiceTemplate(name);
  const shown = relative(ctx.cwd, dir) || dir;
  if (ctx.opts.dryRun !== false) {
    ctx.out.result(
      () => ({ service: name, dir, files: files.map((f) => f.name), dryRun: ctx.opts.dryRun }),
      () => [`Dry run: would create ${shown}/ with ${files.map((f) => f.name).join(', ')}`],
    );
    return ExitCode.ok;
  }
  mkdirSync(root, { recursive: true });
  mkdirSync(dir);
  for (const f of files) writeFileSync(join(dir, f.name), f.content, { flag: 'wx', mode: 0o644 });
  ctx.out.result(
    () => ({ service: name, dir, files: files.map((f) => f.name) }),
    () => [
      `created ${shown}/ with ${files.map((f) => f.name).join(', ')}`,
      `next: edit them, then  enssib service deploy ${name} --dry-run  and  enssib service deploy ${name}`,
    ],
  );
  return ExitCode.ok;
}
