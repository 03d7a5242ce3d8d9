import { describe, expect, it } from 'vitest';
import { scheduleUnits, validateAt } from '../../../src/backup/schedule.js';
import { UsageError } from '../../../src/errors.js';

describe('backup schedule units', () => {
  it('a oneshot service that backs up every volume then prunes, and a persistent daily timer', () => {
    const [service, timer] = scheduleUnits({ node: '/usr/bin/node', bin: '/opt/enssib/bin/enssib.js', inventory: '/srv/site/inventory.yaml', at: '03:30' });
    expect(service?.path).toBe('/etc/systemd/system/enssib-backup.service');
    expect(service?.content).toContain('Type=oneshot\n');
    expect(service?.content).toContain('ExecStart=/usr/bin/node /opt/enssib/bin/enssib.js -i /srv/site/inventory.yaml backup snapshot --all\n');
    expect(service?.content).toContain('ExecStartPost=/usr/bin/node /opt/enssib/bin/enssib.js -i /srv/site/inventory.yaml backup prune --yes\n');
    expect(timer?.path).toBe('/etc/systemd/system/enssib-backup.timer');
    expect(timer?.content).toContain('OnCalendar=*-*-* 03:30:00\nPersistent=true\n');
    expect(timer?.content).toContain('WantedBy=timers.target');
  });
  it('refuses a time that is not HH:MM and a path systemd would split or expand', () => {
    expect(validateAt(undefined)).toBe('02:00');
    expect(validateAt('23:59')).toBe('23:59');
    for (const bad of ['24:00', '2:00', '02:60', '02:00;reboot', 'daily', '']) expect(() => validateAt(bad), bad).toThrow(UsageError);
    for (const inventory of ['/srv/my site/inventory.yaml', 'inventory.yaml', '/srv/%h/inventory.yaml', '/srv/"x"/inventory.yaml', '/srv/x\ny']) {
      expect(() => scheduleUnits({ node: '/usr/bin/node', bin: '/opt/enssib/bin/enssib.js', inventory, at: '02:00' }), inventory).toThrow(/cannot go into a systemd unit/);
    }
  });
});
