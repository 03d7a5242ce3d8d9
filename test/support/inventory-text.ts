/** A valid inventory as text, for tests that break one field at a time. */
export const VALID_INVENTORY = `site: test
ssh:
  connectTimeout: 5
networks:
  pods: 10.100.0.0/16
  services: 10.101.0.0/23
  cluster: { cidr: 10.66.6.0/24, mtu: 9000 }
  users: 192.168.66.0/26
hosts:
  - { name: data1, address: 10.66.6.1, roles: [master, storage] }
  - { name: data2, address: 10.66.6.2, roles: [master, storage] }
  - { name: node01, address: 10.66.6.11, roles: [worker], podSubnet: 10.100.1.0/24 }
  - { name: node02, address: 10.66.6.12, roles: [worker], podSubnet: 10.100.2.0/24 }
registry: { host: registry.cluster.enssib.fr:5000, ca: certs/enssib-ca.crt }
kubernetes: { api: https://api.cluster.enssib.fr:6443 }
storage:
  volumeGroup: vg_cluster
  drbdResource: r0
  metadataHost: data1
  iqnPrefix: iqn.2016-04.fr.enssib
  portals: [10.66.6.1:3260, 10.66.6.2:3260]
  targetDriver: scst
nfs: { vip: 10.66.6.10 }
journal: journal.jsonl
`;
