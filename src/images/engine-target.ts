import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type Dockerode from 'dockerode';
import { OperationError } from '../errors.js';

/**
 * Which Docker engine the user's environment names (DOCKER_HOST, else the
 * default socket), and how to reach it: apart from engine.ts, so that a command
 * can check where its credentials would go without loading the engine client.
 */
export interface EngineTarget {
  /** For messages: unix:///var/run/docker.sock, tcp://host:2376 */
  describe: string;
  options: Dockerode.DockerOptions;
  /** tcp:// without TLS: whatever is sent to the engine (registry credentials included) crosses the network in clear. */
  plainTcp: boolean;
}

export function engineTarget(env: NodeJS.ProcessEnv): EngineTarget {
  const dh = env.DOCKER_HOST?.trim();
  if (!dh) {
    const home = env.HOME ?? homedir();
    const user = join(home, '.docker', 'run', 'docker.sock');
    const socketPath = !existsSync('/var/run/docker.sock') && existsSync(user) ? user : '/var/run/docker.sock';
    return { describe: `unix://${socketPath}`, options: { socketPath }, plainTcp: false };
  }
  if (dh.startsWith('unix://')) {
    const socketPath = dh.slice('unix://'.length) || '/var/run/docker.sock';
    return { describe: `unix://${socketPath}`, options: { socketPath }, plainTcp: false };
  }
  if (dh.startsWith('/')) return { describe: `unix://${dh}`, options: { socketPath: dh }, plainTcp: false };
  let url: URL;
  try {
    url = new URL(dh.includes('://') ? dh : `tcp://${dh}`);
  } catch {
    throw new OperationError(`DOCKER_HOST=${dh} is not an engine address`, ['Use unix:///path/to/docker.sock or tcp://host:port.']);
  }
  if (url.protocol !== 'tcp:' && url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new OperationError(`DOCKER_HOST=${dh}: enssib talks to engines over unix:// or tcp:// only`);
  }
  const tls = env.DOCKER_TLS_VERIFY === '1' || url.port === '2376' || url.protocol === 'https:';
  const options: Dockerode.DockerOptions = { host: url.hostname, port: Number(url.port || (tls ? 2376 : 2375)), protocol: tls ? 'https' : 'http' };
  if (tls) {
    const certDir = env.DOCKER_CERT_PATH ?? join(env.HOME ?? homedir(), '.docker');
    try {
      options.ca = readFileSync(join(certDir, 'ca.pem'));
      options.cert = readFileSync(join(certDir, 'cert.pem'));
      options.key = readFileSync(join(certDir, 'key.pem'));
    } catch (e) {
      throw new OperationError(`DOCKER_HOST=${dh} needs TLS, but ${certDir}/{ca,cert,key}.pem cannot be read (${(e as NodeJS.ErrnoException).code})`);
    }
  }
  return { describe: `${tls ? 'tcp+tls' : 'tcp'}://${url.hostname}:${options.port}`, options, plainTcp: !tls };
}
