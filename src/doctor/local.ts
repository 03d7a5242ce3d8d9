import { ok, problem, type Finding } from '../engine/findings.js';
import type { TlsFacts } from '../remote/tls.js';

/**
 * The checks doctor makes from this machine — the registry's and the API
 * server's certificates, the cluster's nodes — judged from plain facts.
 */

/** A certificate that expires within this many days is a warning. */
export const CERT_WARN_DAYS = 30;

const DAY_MS = 86_400_000;

/** Trust and expiry of a TLS server's certificate. `caNote` says which CA it was verified with. */
export function judgeCertificate(check: string, subject: string, where: string, tls: TlsFacts, caNote: string, now: Date): Finding[] {
  const out: Finding[] = [];
  const days = Math.floor((tls.validTo.getTime() - now.getTime()) / DAY_MS);
  const until = tls.validTo.toISOString().slice(0, 10);
  const renew = `Renew the certificate of ${where} (same name, signed by the CA the inventory names) and restart the service that serves it.`;
  if (tls.validTo.getTime() <= now.getTime()) {
    out.push(problem('fail', check, subject, `the certificate of ${where} (${tls.subject}) expired on ${until}`, 'clients refuse it: image pulls, pushes and API calls fail', renew));
  } else if (tls.validFrom.getTime() > now.getTime()) {
    out.push(problem('fail', check, subject, `the certificate of ${where} is valid only from ${tls.validFrom.toISOString().slice(0, 10)}`, 'clients refuse it until then (or a clock is wrong)', `Check the clocks (enssib doctor --only clock), or ${renew.charAt(0).toLowerCase()}${renew.slice(1)}`));
  } else if (days < CERT_WARN_DAYS) {
    out.push(problem('warn', check, subject, `the certificate of ${where} expires on ${until} (in ${days} day${days === 1 ? '' : 's'})`, 'when it expires, clients refuse it: image pulls, pushes and API calls fail', renew));
  }
  const expiryError = tls.verifyError === 'CERT_HAS_EXPIRED' || tls.verifyError === 'CERT_NOT_YET_VALID';
  if (!tls.trusted && !expiryError) {
    out.push(
      problem(
        'fail',
        check,
        subject,
        `the certificate of ${where} (${tls.subject}, issued by ${tls.issuer}) does not verify with ${caNote}: ${tls.verifyError ?? 'untrusted'}`,
        'the Docker engine and the workers refuse a registry (or API server) they cannot verify',
        `Give the inventory the CA that signed it (registry.ca), or reissue the certificate for the name ${where.split(':')[0]} from that CA.`,
      ),
    );
  }
  if (out.length === 0) out.push(ok(check, subject, `${where} trusted with ${caNote}; certificate valid until ${until} (${days} days)`));
  return out;
}

/** A node as the API lists it. */
export interface NodeFact {
  name: string;
  /** The Ready condition's status: "True", "False", "Unknown", or null when absent. */
  ready: string | null;
  /** The Ready condition's message, when not ready. */
  message: string;
}

/** Every inventory worker a Ready node; nodes the inventory does not know. */
export function judgeNodes(workers: string[], inventoryHosts: string[], nodes: NodeFact[]): Finding[] {
  const out: Finding[] = [];
  for (const w of workers) {
    const n = nodes.find((x) => x.name === w);
    if (!n) {
      out.push(
        problem('fail', 'kubernetes', w, `${w} is not a node of the cluster`, 'no pod is scheduled on this worker', `Join it: enssib node bootstrap ${w} (or check its kubelet: journalctl -u kubelet on ${w}).`),
      );
    } else if (n.ready !== 'True') {
      out.push(
        problem(
          'fail',
          'kubernetes',
          w,
          `node ${w} is not Ready (Ready=${n.ready ?? 'absent'}${n.message ? `: ${n.message}` : ''})`,
          'its pods are evicted after a few minutes, and no new pod goes there',
          `Check the kubelet and the container runtime on ${w} (systemctl status kubelet; journalctl -u kubelet).`,
        ),
      );
    } else out.push(ok('kubernetes', w, `node ${w} Ready`));
  }
  for (const n of nodes.filter((x) => !inventoryHosts.includes(x.name))) {
    out.push(
      problem(
        'warn',
        'kubernetes',
        n.name,
        `node ${n.name} is in the cluster but not in the inventory`,
        'enssib neither checks nor routes it: pods scheduled there may be unreachable from the other workers (no pod route)',
        `Add ${n.name} to the inventory's hosts, or remove it from the cluster (kubectl drain ${n.name}; kubectl delete node ${n.name}).`,
      ),
    );
  }
  return out;
}
