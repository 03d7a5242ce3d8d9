import { NotImplementedError } from '../errors.js';
import type { Context } from '../context.js';
import type { Invocation } from '../usecase.js';

/** A command of the mission not built yet: validate its input, then say so (never a fake success). */
export function notImplemented(name: string, validate?: (inv: Invocation) => Promise<void>) {
  return async (_ctx: Context, inv: Invocation): Promise<number> => {
    if (validate) await validate(inv);
    throw new NotImplementedError(name);
  };
}
