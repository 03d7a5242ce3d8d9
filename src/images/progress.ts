import type { Context } from '../context.js';

/**
 * Progress of image work: one line per service with its current step
 * ("ldap: Step 3/7 : RUN make"), the full build output with --verbose.
 * In a terminal the lines are redrawn in place (listr2); otherwise each new
 * step is printed once; with -o json or a client dry run nothing is shown.
 */
export interface ServiceProgress {
  /** The service's one progress line. */
  step(text: string): void;
  /** A line of build or push output (shown with --verbose). */
  output(line: string): void;
}

export type ServiceWork<T> = (service: string, p: ServiceProgress) => Promise<T>;

/** A service's result; services not started (after an interruption) have none. */
export interface ServiceResult<T> {
  service: string;
  result: PromiseSettledResult<T>;
}

export async function withProgress<T>(ctx: Context, services: string[], work: ServiceWork<T>): Promise<ServiceResult<T>[]> {
  const mode = ctx.renderer === 'silent' ? 'silent' : ctx.renderer === 'default' && !ctx.out.verbose ? 'listr' : 'lines';
  if (mode === 'listr') return withListr(ctx, services, work);
  const results: ServiceResult<T>[] = [];
  for (const svc of services) {
    let last = '';
    const p: ServiceProgress = {
      step(text) {
        if (mode === 'silent' || text === last) return;
        last = text;
        ctx.out.note(`${ctx.out.c.cyan(svc)}: ${text}`);
      },
      output(line) {
        if (mode !== 'silent' && ctx.out.verbose) ctx.out.note(ctx.out.c.dim(`${svc} | ${line}`));
      },
    };
    if (ctx.signal.aborted) break;
    try {
      results.push({ service: svc, result: { status: 'fulfilled', value: await work(svc, p) } });
    } catch (e) {
      results.push({ service: svc, result: { status: 'rejected', reason: e } });
    }
  }
  return results;
}

async function withListr<T>(ctx: Context, services: string[], work: ServiceWork<T>): Promise<ServiceResult<T>[]> {
  const { Listr, ListrLogger, ProcessOutput } = await import('listr2');
  const results = new Map<string, PromiseSettledResult<T>>();
  const logger = () => new ListrLogger({ processOutput: new ProcessOutput(process.stderr, process.stderr) });
  const list = new Listr(
    services.map((svc) => ({
      title: `${svc}: waiting`,
      task: async (_c: unknown, t: { title: string | undefined }) => {
        if (ctx.signal.aborted) {
          t.title = `${svc}: not started (interrupted)`;
          return;
        }
        const p: ServiceProgress = {
          step(text) {
            t.title = `${svc}: ${text}`;
          },
          output() {
            /* shown with --verbose, which uses the line renderer */
          },
        };
        try {
          results.set(svc, { status: 'fulfilled', value: await work(svc, p) });
        } catch (e) {
          results.set(svc, { status: 'rejected', reason: e });
          throw e instanceof Error ? new Error(e.message) : new Error(String(e));
        }
      },
    })),
    {
      concurrent: false,
      exitOnError: false,
      collectErrors: false,
      registerSignalListeners: false,
      rendererOptions: { logger: logger(), collapseErrors: true, showErrorMessage: false },
      fallbackRenderer: 'simple',
      fallbackRendererOptions: { logger: logger() },
    },
  );
  await list.run();
  return services.filter((s) => results.has(s)).map((s) => ({ service: s, result: results.get(s) as PromiseSettledResult<T> }));
}
