import { formatMs } from '../errors.js';
import type { KubeApi } from './api.js';
import { progressMarker, rolloutStatus } from './rollout.js';
import { at, isRecord, num, str, type KObject } from './types.js';

export interface WaitOptions {
  /** --timeout: a limit on the whole wait (ms). Without it, the limit is the workload's progressDeadlineSeconds without progress. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called with kubectl's status line whenever it changes. */
  onStatus?: (message: string) => void;
}

export type WaitOutcome = 'complete' | 'failed' | 'timeout' | 'no-progress' | 'deleted' | 'interrupted' | 'lost';

export interface WaitResult {
  ok: boolean;
  outcome: WaitOutcome;
  /** kubectl's last line, or why the wait stopped. */
  message: string;
  details: string[];
  /** The workload as last seen. */
  object: KObject;
  elapsedMs: number;
  /** How many watch connections the wait opened. */
  watches: number;
}

/** Without progressDeadlineSeconds (StatefulSet, DaemonSet), the no-progress limit kubectl users get from the Deployment default. */
const DEFAULT_DEADLINE_S = 600;
/** Past the object's own progress deadline, a little slack for the controller to write ProgressDeadlineExceeded itself. */
const CONTROLLER_SLACK_MS = 2000;
const MAX_RECONNECTS = 5;

/**
 * Waits for a workload's rollout the way `kubectl rollout status` does, driven
 * by a WATCH on that one object from the resourceVersion the apply returned:
 * every status change is judged the moment it arrives (no polling). The watch
 * is resumed from the last resourceVersion when the server closes it, and
 * started again from a fresh read when that version has expired (410).
 */
export async function waitForRollout(api: KubeApi, applied: KObject, opts: WaitOptions = {}): Promise<WaitResult> {
  const started = performance.now();
  const name = applied.metadata.name;
  const namespace = applied.metadata.namespace;
  const deadlineS = num(at(applied, 'spec', 'progressDeadlineSeconds'));
  const noProgressMs = opts.timeoutMs === undefined ? (deadlineS ?? DEFAULT_DEADLINE_S) * 1000 + (deadlineS !== undefined ? CONTROLLER_SLACK_MS : 0) : undefined;
  const path = await api.collectionPath(applied.apiVersion, applied.kind, namespace);

  return new Promise<WaitResult>((resolve) => {
    let last = applied;
    let rv = applied.metadata.resourceVersion ?? '';
    let lastMessage = '';
    let marker = progressMarker(applied);
    let finished = false;
    let watches = 0;
    let reconnects = 0;
    let current: { stop(): void } | undefined;
    let timer: NodeJS.Timeout | undefined;

    const finish = (ok: boolean, outcome: WaitOutcome, message: string, details: string[] = []) => {
      if (finished) return;
      finished = true;
      if (timer) clearTimeout(timer);
      current?.stop();
      opts.signal?.removeEventListener('abort', onAbort);
      resolve({ ok, outcome, message, details, object: last, elapsedMs: performance.now() - started, watches });
    };

    const notObserved = (): string[] => {
      const gen = num(last.metadata.generation) ?? 0;
      const observed = num(at(last, 'status', 'observedGeneration')) ?? 0;
      return gen > observed
        ? [`The controller has not seen this version yet (observedGeneration ${observed} < generation ${gen}): is kube-controller-manager running?`]
        : [];
    };

    const arm = () => {
      if (opts.timeoutMs !== undefined) return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        const s = deadlineS ?? DEFAULT_DEADLINE_S;
        finish(false, 'no-progress', `${kindWord(last)} "${name}" made no progress for ${s} s (${deadlineS !== undefined ? 'its progressDeadlineSeconds' : 'the default deadline; set --timeout to change it'})`, [
          `last status: ${lastMessage}`,
          ...notObserved(),
        ]);
      }, noProgressMs);
    };

    const judge = (obj: KObject) => {
      last = obj;
      const v = rolloutStatus(obj);
      if (v.message !== lastMessage) {
        lastMessage = v.message;
        opts.onStatus?.(v.message);
      }
      const m = progressMarker(obj);
      if (m !== marker) {
        marker = m;
        arm();
      }
      if (v.error) finish(false, 'failed', v.error);
      else if (v.done) finish(true, 'complete', v.message);
    };

    const onAbort = () => finish(false, 'interrupted', `stopped waiting for ${kindWord(last)} "${name}" (interrupted)`);
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener('abort', onAbort);

    if (opts.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        finish(false, 'timeout', `${kindWord(last)} "${name}" did not finish rolling out within ${formatMs(opts.timeoutMs ?? 0)} (--timeout)`, [`last status: ${lastMessage}`, ...notObserved()]);
      }, opts.timeoutMs);
    } else arm();

    judge(applied);
    if (finished) return;

    // after 410 Expired: LIST the one object for a current collection resourceVersion (the object's own may be older than the compaction)
    let rereads = 0;
    const reread = () => {
      if (++rereads > MAX_RECONNECTS) return finish(false, 'lost', `lost the watch on ${kindWord(last)} "${name}": the API server keeps expiring it (410)`, [`last status: ${lastMessage}`]);
      api
        .list(applied.apiVersion, applied.kind, namespace, { fieldSelector: `metadata.name=${name}` })
        .then((l) => {
          if (finished) return;
          const fresh = l.items.find((o) => o.metadata.name === name);
          if (!fresh) return finish(false, 'deleted', `${kindWord(last)} "${name}" was deleted while enssib waited for it`);
          rv = l.resourceVersion || (fresh.metadata.resourceVersion ?? '');
          judge(fresh);
          return start();
        })
        .catch((e: unknown) => finish(false, 'lost', `lost the watch on ${kindWord(last)} "${name}": ${(e as Error).message}`, [`last status: ${lastMessage}`]));
    };

    /** One watch connection; when it ends, exactly one way on: resume, re-read (410), or retry after an error. */
    const start = async (): Promise<void> => {
      if (finished) return;
      watches++;
      let over = false;
      let handle: { stop(): void } | undefined;
      const proceed = (how: 'resume' | 'reread' | 'retry', err?: unknown) => {
        if (over || finished) return;
        over = true;
        handle?.stop();
        if (how === 'reread') return void reread();
        if (how === 'retry' && ++reconnects > MAX_RECONNECTS) {
          return finish(false, 'lost', `lost the watch on ${kindWord(last)} "${name}": ${(err as Error)?.message ?? String(err)}`, [`last status: ${lastMessage}`]);
        }
        // the server closed the stream (its watch timeout) or the connection dropped: resume from the last version
        setTimeout(() => void start(), how === 'retry' ? Math.min(2000, 100 * 2 ** reconnects) : 0);
      };
      const params: Record<string, string> = { fieldSelector: `metadata.name=${name}`, allowWatchBookmarks: 'true' };
      if (rv) params.resourceVersion = rv;
      try {
        const w = await api.watch(
          path,
          params,
          (type, obj) => {
            if (finished || over) return;
            if (type === 'ERROR') {
              if (num(obj.code) === 410) return proceed('reread');
              return finish(false, 'lost', `the API server ended the watch on ${kindWord(last)} "${name}": ${str(obj.message) ?? 'error'}`, [`last status: ${lastMessage}`]);
            }
            const objRv = str(at(obj, 'metadata', 'resourceVersion'));
            if (objRv) rv = objRv;
            if (type === 'BOOKMARK') return;
            if (type === 'DELETED') return finish(false, 'deleted', `${kindWord(last)} "${name}" was deleted while enssib waited for it`);
            if (isRecord(obj.metadata) && obj.metadata.name === name) judge(obj as unknown as KObject);
          },
          (err) => proceed(err ? 'retry' : 'resume', err),
        );
        handle = w;
        current = w;
        if (finished || over) w.stop();
      } catch (e) {
        finish(false, 'lost', `cannot watch ${kindWord(last)} "${name}": ${(e as Error).message}`, [`last status: ${lastMessage}`]);
      }
    };
    void start();
  });
}

export function kindWord(o: { kind: string }): string {
  return o.kind === 'DaemonSet' ? 'daemon set' : o.kind.toLowerCase();
}
