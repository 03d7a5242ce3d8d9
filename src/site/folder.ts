import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type * as Yaml from 'yaml';
import type * as Zod from 'zod';
import { ConfigError, UsageError } from '../errors.js';
import { validateName } from '../validate.js';

/** A service folder: services/<name>/ with its Dockerfile, Kubernetes YAML and optional enssib.yaml. */
export interface ServiceFolder {
  name: string;
  dir: string;
  dockerfile: string;
  settings: ServiceSettings;
}

const settingsSchemaOf = (z: typeof Zod.z) =>
  z.strictObject({
    /** Image name in the registry; default: the folder name. */
    image: z
      .string()
      .regex(/^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/, { message: 'expected an image name such as "ldap" or "site/ldap"' })
      .optional(),
    buildArgs: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).optional(),
    target: z.string().min(1).optional(),
    /** Around a backup's snapshot of the service's volumes (its hooks are files: hooks/pre-snapshot.mjs, hooks/post-snapshot.mjs). */
    backup: z
      .strictObject({
        /** Freeze the volume's filesystem on the worker that mounts it while the snapshot is taken. */
        freeze: z.boolean().optional(),
        /** The worker thaws it by itself after this many seconds, whatever happens to enssib (default 30). */
        freezeSeconds: z.number().int().min(5).max(600).optional(),
      })
      .optional(),
  });
export type ServiceSettings = Zod.infer<ReturnType<typeof settingsSchemaOf>> & { image: string };

/**
 * The YAML parser and the settings schema, loaded (synchronously) the first
 * time a folder has an enssib.yaml: most have none, and a command such as an
 * unchanged `image push` then loads neither yaml nor zod.
 */
let settingsParser: { parseDocument: typeof Yaml.parseDocument; schema: ReturnType<typeof settingsSchemaOf> } | undefined;
function settingsTools(): NonNullable<typeof settingsParser> {
  if (!settingsParser) {
    const require = createRequire(import.meta.url);
    const { parseDocument } = require('yaml') as typeof Yaml;
    const { z } = require('zod') as typeof Zod;
    settingsParser = { parseDocument, schema: settingsSchemaOf(z) };
  }
  return settingsParser;
}

export function servicesRoot(inventoryRoot: string): string {
  return join(inventoryRoot, 'services');
}

/** Every folder under services/ that has a Dockerfile or YAML, sorted by name. */
export function listServices(root: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(root, { withFileTypes: true })
      .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
      .map((d) => d.name);
  } catch {
    throw new ConfigError(`${root}: no services folder`, ['Service folders live in services/<name>/ beside the inventory.']);
  }
  return entries.sort();
}

export function loadService(root: string, name: string): ServiceFolder {
  validateName('service', name);
  const dir = join(root, name);
  let st;
  try {
    st = statSync(dir);
  } catch {
    const known = safeList(root);
    throw new UsageError(`no service "${name}": ${dir} does not exist`, known.length ? [`Services: ${known.join(', ')}`] : []);
  }
  if (!st.isDirectory()) throw new ConfigError(`${dir} is not a folder`);
  const settingsFile = join(dir, 'enssib.yaml');
  let text: string;
  try {
    text = readFileSync(settingsFile, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { name, dir, dockerfile: join(dir, 'Dockerfile'), settings: { image: name } };
    throw new ConfigError(`${settingsFile}: cannot read (${(e as Error).message})`);
  }
  const { parseDocument, schema } = settingsTools();
  let raw: unknown;
  try {
    const doc = parseDocument(text, { prettyErrors: false });
    if (doc.errors.length) {
      const e = doc.errors[0];
      throw new ConfigError(`${settingsFile}:${e?.linePos?.[0]?.line ?? 1}:${e?.linePos?.[0]?.col ?? 1}: YAML syntax error: ${e?.message.split('\n')[0]}`);
    }
    raw = doc.toJS() ?? {};
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`${settingsFile}: cannot read (${(e as Error).message})`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new ConfigError(`${settingsFile}: ${i?.path.join('.') || '(top level)'}: ${i?.message}`);
  }
  return { name, dir, dockerfile: join(dir, 'Dockerfile'), settings: { ...parsed.data, image: parsed.data.image ?? name } };
}

function safeList(root: string): string[] {
  try {
    return listServices(root);
  } catch {
    return [];
  }
}
