import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { ConfigError } from '../errors.js';
import type { Inventory } from '../inventory/inventory.js';

/**
 * Registry credentials. The password never leaves this object except toward
 * the registry and the engine: it is not enumerable, JSON.stringify and
 * util.inspect show it as hidden, and messages name only the user and the file
 * it came from.
 */
export class Credentials {
  readonly username: string;
  /** Where they came from, for messages: "~/.docker/config.json" or the password file. */
  readonly source: string;
  declare readonly password: string;

  constructor(username: string, password: string, source: string) {
    this.username = username;
    this.source = source;
    Object.defineProperty(this, 'password', { value: password, enumerable: false, writable: false });
  }

  /** `Authorization: Basic …` */
  basic(): string {
    return `Basic ${Buffer.from(`${this.username}:${this.password}`).toString('base64')}`;
  }

  toJSON() {
    return { username: this.username, password: '(hidden)', source: this.source };
  }

  [inspect.custom]() {
    return `Credentials { username: ${JSON.stringify(this.username)}, password: (hidden), source: ${JSON.stringify(this.source)} }`;
  }

  toString() {
    return `${this.username} (from ${this.source})`;
  }
}

export interface CredentialLookup {
  credentials?: Credentials;
  /** Why none were found where some might be expected (a credential helper), for the error message. */
  hint?: string;
}

/** The inventory's `registry.auth` first (a shared, explicit setting), then the user's Docker config. */
export function registryCredentials(inv: Inventory, env: NodeJS.ProcessEnv): CredentialLookup {
  const auth = inv.data.registry.auth;
  if (auth) {
    const file = inv.path(auth.passwordFile);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new ConfigError(`${inv.file}: registry.auth.passwordFile: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
    const password = text.replace(/\r?\n$/, '');
    if (password === '') throw new ConfigError(`${file}: the registry password file is empty`);
    return { credentials: new Credentials(auth.username, password, file) };
  }
  return dockerConfigCredentials(inv.data.registry.host, env);
}

export function dockerConfigFile(env: NodeJS.ProcessEnv): string {
  return join(env.DOCKER_CONFIG ?? join(env.HOME ?? homedir(), '.docker'), 'config.json');
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

/** `~/.docker/config.json` auths for the registry (keys may carry https:// and a path, as `docker login` writes them). */
export function dockerConfigCredentials(host: string, env: NodeJS.ProcessEnv): CredentialLookup {
  const file = dockerConfigFile(env);
  let cfg: DockerConfig;
  try {
    cfg = JSON.parse(readFileSync(file, 'utf8')) as DockerConfig;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ConfigError(`${file}: cannot read the Docker configuration (${e instanceof SyntaxError ? 'not valid JSON' : ((e as NodeJS.ErrnoException).code ?? String(e))})`);
  }
  const shown = file.replace(env.HOME ?? homedir(), '~');
  const entry = Object.entries(cfg.auths ?? {}).find(([k]) => normalizeServer(k) === host)?.[1];
  if (entry) {
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      if (i > 0) return { credentials: new Credentials(decoded.slice(0, i), decoded.slice(i + 1), shown) };
      throw new ConfigError(`${file}: auths["${host}"].auth is not base64 of "user:password"`);
    }
    if (entry.username && entry.password) return { credentials: new Credentials(entry.username, entry.password, shown) };
    if (entry.identitytoken) return { hint: `${shown} holds an identity token for ${host}, which enssib does not use; set registry.auth in the inventory` };
  }
  const helper = cfg.credHelpers?.[host] ?? cfg.credsStore;
  if (helper) return { hint: `${shown} keeps the password in the credential helper "docker-credential-${helper}", which enssib does not call; set registry.auth { username, passwordFile } in the inventory` };
  return {};
}

function normalizeServer(key: string): string {
  return key.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
}
