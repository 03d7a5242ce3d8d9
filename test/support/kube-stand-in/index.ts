/**
 * The Kubernetes STAND-IN used by the 'k8s' tests and the benchmarks: a small
 * API server speaking the real wire protocol (see server.ts) with a scripted
 * deployment controller (see controller.ts). Not a Kubernetes implementation.
 */
export { startKubeStandIn, type KubeStandIn, type StandInOptions, type RequestRecord } from './server.js';
export type { Behaviour, Script } from './controller.js';
export type { Obj, Json } from './fields.js';
