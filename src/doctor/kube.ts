import { existsSync, readFileSync } from 'node:fs';
import type { Context } from '../context.js';
import { couldNotRun, ok, problem, type Finding } from '../engine/findings.js';
import { isEnssibError } from '../errors.js';
import { peerCertificate, TlsUnreachable } from '../remote/tls.js';
import { createKubeApi } from '../k8s/api.js';
import { kubeconfigPath } from '../k8s/config.js';
import { at, records, str } from '../k8s/types.js';
import { judgeCertificate, judgeNodes, type NodeFact } from './local.js';

/**
 * The Kubernetes part of doctor: the API server answers, its certificate,
 * every inventory worker a Ready node, nodes the inventory does not know.
 * Loaded only when the kubernetes check runs (it loads @kubernetes/client-node).
 */

const CHECK = 'kubernetes';
const UNREACHABLE = /cannot reach|no answer|unknown host|connection refused/i;

export async function kubernetesFindings(ctx: Context, now: () => Date): Promise<Finding[]> {
  const { path, source } = kubeconfigPath(ctx);
  if (!existsSync(path)) return [couldNotRun(CHECK, CHECK, `no kubeconfig at ${path} (from ${source}); give one with --kubeconfig, KUBECONFIG or kubernetes.kubeconfig`)];
  let nodes: NodeFact[];
  let server: string;
  let ca: Buffer | undefined;
  try {
    const kc = await ctx.kube();
    const cluster = kc.getCurrentCluster();
    server = cluster?.server ?? '';
    ca = cluster?.caData ? Buffer.from(cluster.caData, 'base64') : cluster?.caFile ? readFileSync(cluster.caFile) : undefined;
    const api = await createKubeApi(kc, { signal: ctx.signal, timeoutMs: 10_000, source: `${path} (${source})` });
    const list = await api.list('v1', 'Node', undefined);
    nodes = list.items.map((n) => {
      const ready = records(at(n, 'status', 'conditions')).find((c) => c.type === 'Ready');
      return { name: n.metadata.name, ready: str(ready?.status) ?? null, message: str(ready?.message) ?? '' };
    });
  } catch (e) {
    if (!isEnssibError(e)) throw e;
    if (e.exitCode === 2 || UNREACHABLE.test(e.message)) return [couldNotRun(CHECK, CHECK, e.message)];
    return [problem('fail', CHECK, CHECK, e.message, 'enssib deploys and checks services through the API server', e.details[0] ?? 'Check the kubeconfig (server, credentials, CA) and the API server.')];
  }
  const inv = ctx.inventory();
  const out = judgeNodes(
    inv.workers().map((w) => w.name),
    inv.hosts.map((h) => h.name),
    nodes,
  );
  out.unshift(ok(CHECK, CHECK, `the API server ${server} answers; ${nodes.length} node${nodes.length === 1 ? '' : 's'}`));
  const url = new URL(server);
  if (url.protocol !== 'https:') {
    out.splice(1, 0, couldNotRun(CHECK, CHECK, `the API server ${server} is plain HTTP: no certificate to check`));
    return out;
  }
  try {
    const tls = await peerCertificate(url.hostname, Number(url.port || 443), { ...(ca ? { ca } : {}), timeoutMs: 10_000 });
    out.splice(1, 0, ...judgeCertificate(CHECK, CHECK, url.host, tls, "the kubeconfig's CA", now()));
  } catch (e) {
    if (!(e instanceof TlsUnreachable)) throw e;
    out.splice(1, 0, couldNotRun(CHECK, CHECK, e.message));
  }
  return out;
}
