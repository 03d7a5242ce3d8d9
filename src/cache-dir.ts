import { homedir } from 'node:os';
import { join } from 'node:path';

/** enssib's cache folder `sub`: under $ENSSIB_CACHE_DIR, else $XDG_CACHE_HOME or ~/.cache, then enssib/. */
export function cacheDir(env: NodeJS.ProcessEnv, sub: string): string {
  if (env.ENSSIB_CACHE_DIR) return join(env.ENSSIB_CACHE_DIR, sub);
  return join(env.XDG_CACHE_HOME || join(env.HOME ?? homedir(), '.cache'), 'enssib', sub);
}
