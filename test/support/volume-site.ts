import type { VolumeSite } from '../../src/storage/volume.js';

/**
 * The storage part of the test site: data1 and data2 serving every volume
 * (data1 holds the metadata), portals on the cluster network, workers node01
 * and node02, SCST. Tests change what they need: `testVolumeSite({ driver: 'lio' })`.
 */
export function testVolumeSite(over: Partial<VolumeSite> = {}): VolumeSite {
  return {
    vg: 'vg_cluster',
    drbd: 'r0',
    meta: 'data1',
    servers: [
      { name: 'data1', address: '10.66.6.1', portal: '10.66.6.1:3260' },
      { name: 'data2', address: '10.66.6.2', portal: '10.66.6.2:3260' },
    ],
    workers: ['node01', 'node02'],
    iqnPrefix: 'iqn.2016-04.fr.enssib',
    driver: 'scst',
    lockFile: '/run/lock/enssib-storage.lock',
    ...over,
  };
}
