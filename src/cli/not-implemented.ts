import { NotImplementedError } from '../errors.js';

/** A command of the mission not built yet: its input was checked by the command table; say so (never a fake success). */
export function notImplemented(name: string) {
  return async (): Promise<number> => {
    throw new NotImplementedError(name);
  };
}
