/**
 * What a use case receives from the command line, below every domain module:
 * the CLI builds it, use cases read it, and neither depends on the other.
 */

/** Positional arguments and command-specific options as commander parsed them. */
export interface Invocation {
  args: (string | string[] | undefined)[];
  opts: Record<string, unknown>;
}
