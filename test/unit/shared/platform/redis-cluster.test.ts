import {
  masterAddresses,
  ownSlots,
  parseClusterNodes,
  topologyHeldStill,
} from '../../../../shared/platform/redis-cluster';

// CLUSTER NODES as Redis 7.0 prints it, mid-failover and mid-migration.
const NODES = [
  'a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460 [5461->-b2]',
  'b2 127.0.0.1:7001@17001 master - 0 1700000000000 2 connected 5461-10922',
  'c3 127.0.0.1:7002@17002,node-c master,fail - 1700000000000 1700000000000 3 disconnected',
  'd4 127.0.0.1:7003@17003 slave a1 0 1700000000000 1 connected',
  'e5 127.0.0.1:7004@17004 master - 0 1700000000000 7 connected 10923-16383',
  'f6 127.0.0.1:7005@17005 master,fail? - 0 1700000000000 8 connected',
  'g7 :0@0 master,noaddr - 0 0 0 disconnected',
  '',
].join('\n');

describe('CLUSTER NODES', () => {
  it('parses address, flags, epoch and slots', () => {
    const [first] = parseClusterNodes(NODES);
    expect(first).toEqual({
      id: 'a1',
      addr: '127.0.0.1:7000',
      flags: ['myself', 'master'],
      epoch: '1',
      slots: ['0-5460', '[5461->-b2]'],
    });
  });

  it('lists live masters, slotless and suspected ones included, failed ones and replicas left out', () => {
    expect(masterAddresses(NODES)).toEqual(['127.0.0.1:7000', '127.0.0.1:7001', '127.0.0.1:7004', '127.0.0.1:7005']);
  });
});

describe('topologyHeldStill', () => {
  it('holds only when nothing changed and no slot is being migrated', () => {
    expect(topologyHeldStill('a 0-100', 'a 0-100')).toBe(true);
    expect(topologyHeldStill('a 0-100', 'a 0-99')).toBe(false);
    expect(topologyHeldStill('a 0-100 [101->-b]', 'a 0-100 [101->-b]')).toBe(false);
    expect(topologyHeldStill('b 101-200 [100-<-a]', 'b 101-200 [100-<-a]')).toBe(false);
  });
});

describe('ownSlots', () => {
  it("reads a node's ranges and single slots, leaving the marks of a migration in progress out", () => {
    const slots = ownSlots(['0-3', '7', '[8->-b2]', '[9-<-c3]']);
    expect([...slots].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 7]);
    expect(ownSlots([]).size).toBe(0);
    expect(ownSlots(parseClusterNodes(NODES).find((n) => n.id === 'e5')!.slots).size).toBe(16384 - 10923);
  });
});
