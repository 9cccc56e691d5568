import { describe, expect, it } from 'vitest';
import { address, cidr, formatAddress, formatCidr } from '../../../shared/cidr.js';
import {
  ProcNetReader,
  defaultRoutes,
  ipv4FromProcHex,
  ipv6FromProcHex,
  parseIpv6RouteTable,
  parseRouteTable,
  parseSocketTable,
  routeInterface,
} from '../../../agent/network/proc-net.js';
import { useTempDirs } from '../../helpers/temp-dir.js';
import { FakeProc, ROUTE_HEADER, TCP_HEADER, UDP_HEADER, port, tcpLine, udpLine, v4hex, v6hex } from './fake-proc.js';

const tempDir = useTempDirs();

// Lines as a Linux 6.x x86-64 kernel printed them (copied from a real /proc/net, trailing spaces kept).
const REAL_TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode                                                     
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1554 1 0000000098be3352 100 0 0 10 0                      
   1: 0100007F:B5E5 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 65548 1 00000000177595ca 100 0 0 10 0                     
   2: 020200C0:A018 507100CB:0050 06 00000000:00000000 03:00001685 00000000     0        0 0 3 00000000bf2e281f                                      
   3: 0100007F:B541 0100007F:95B4 01 00000000:00000000 00:00000000 00000000  1000        0 77123 1 000000005ff5a6ee 20 4 30 10 -1                    
   4: 020200C0:C350 0A00000A:01BB 02 00000001:00000000 01:00000064 00000002  1000        0 88001 1 0000000011223344 400 0 0 10 -1
`;

const REAL_TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000200007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 2002 1 0000000000000000 20 4 1 10 -1
   2: B80D0120000000000000000001000000:E000 B80D0120000000000000000002000000:01BB 01 00000000:00000000 00:00000000 00000000  1000        0 2003 1 0000000000000000 20 4 1 10 -1
`;

const REAL_UDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops            
  245: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 3001 2 00000000a1b2c3d4 0         
  300: 0F02000A:9C40 08080808:0035 01 00000000:00000000 00:00000000 00000000  1000        0 3002 2 00000000a1b2c3d5 0         
`;

const REAL_ROUTE = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT                                                       
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0                                                                               
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0                                                                               
wlan0\t0000A8C0\t00000000\t0001\t0\t0\t600\t0000FFFF\t0\t0\t0
eth0\t0000000A\t00000000\t0201\t0\t0\t0\t000000FF\t0\t0\t0
`;

const REAL_IPV6_ROUTE = `fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
`;

describe('parseSocketTable', () => {
  it('reads IPv4 TCP rows: little-endian addresses, host-order ports, states, uid and inode', () => {
    const { entries, skipped } = parseSocketTable(REAL_TCP, 'tcp');
    expect(skipped).toBe(0);
    expect(entries.map((entry) => [formatAddress(entry.local), entry.localPort, formatAddress(entry.remote), entry.remotePort, entry.state, entry.uid, entry.inode])).toEqual([
      ['0.0.0.0', 2024, '0.0.0.0', 0, 'LISTEN', 0, 1554],
      ['127.0.0.1', 46565, '0.0.0.0', 0, 'LISTEN', 0, 65548],
      ['192.0.2.2', 40984, '203.0.113.80', 80, 'TIME_WAIT', 0, 0],
      ['127.0.0.1', 46401, '127.0.0.1', 38324, 'ESTABLISHED', 1000, 77123],
      ['192.0.2.2', 50000, '10.0.0.10', 443, 'SYN_SENT', 1000, 88001],
    ]);
  });

  it('reads IPv6 TCP rows, including IPv4-mapped peers of dual-stack sockets', () => {
    const { entries, skipped } = parseSocketTable(REAL_TCP6, 'tcp6');
    expect(skipped).toBe(0);
    expect(entries.map((entry) => `${formatAddress(entry.local)}:${entry.localPort} ${formatAddress(entry.remote)}:${entry.remotePort} ${entry.state}`)).toEqual([
      ':::22 :::0 LISTEN',
      '::ffff:127.0.0.1:8080 ::ffff:127.0.0.2:54321 ESTABLISHED',
      '2001:db8::1:57344 2001:db8::2:443 ESTABLISHED',
    ]);
  });

  it('reads UDP rows: 07 is an unconnected socket, 01 a connected one', () => {
    const { entries } = parseSocketTable(REAL_UDP, 'udp');
    expect(entries.map((entry) => `${formatAddress(entry.remote)}:${entry.remotePort} ${entry.state}`)).toEqual(['0.0.0.0:0 CLOSE', '8.8.8.8:53 ESTABLISHED']);
  });

  it('skips malformed and hostile lines, counts them, and keeps the good ones', () => {
    const good = tcpLine(9, `${v4hex('10.0.0.1')}:${port(1234)}`, `${v4hex('10.9.9.9')}:${port(22)}`, '01', 42);
    const text = [
      TCP_HEADER,
      good,
      'garbage',
      '   1: 0100007F:B5E5',
      '   2: ZZZZZZZZ:0050 0100007F:0050 01 00000000:00000000 00:00000000 00000000 0 0 1 1',
      '   3: 0100007F:00500 0100007F:0050 01 00000000:00000000 00:00000000 00000000 0 0 1 1',
      '   4: 0100007F:0050 0100007F:0050 FF 00000000:00000000 00:00000000 00000000 0 0 1 1',
      '   5: 0100007F:0050 0100007F:0050 01 00000000:00000000 00:00000000 00000000 -1 0 1 1',
      '   6: 0100007F:0050 0100007F:0050 01 00000000:00000000 00:00000000 00000000 0 0 99999999999 1',
      `   7: ${'0'.repeat(32)}:0050 0100007F:0050 01 00000000:00000000 00:00000000 00000000 0 0 1 1`,
      'x: 0100007F:0050 0100007F:0050 01 00000000:00000000 00:00000000 00000000 0 0 1 1',
      '\u0000\u0001\u00ff'.repeat(100),
      '',
    ].join('\n');
    const { entries, skipped } = parseSocketTable(text, 'tcp');
    expect(entries).toHaveLength(1);
    expect(entries[0]?.inode).toBe(42);
    expect(skipped).toBe(10);
  });

  it('never throws on arbitrary text', () => {
    const samples = ['', '\n\n\n', 'sl\n', '   0: :\n', `${REAL_TCP}\u0000`, 'a'.repeat(100_000), REAL_TCP.replace(/0/g, ':')];
    for (const text of samples) expect(() => parseSocketTable(text, 'tcp6')).not.toThrow();
  });

  it('reads addresses in big-endian order on a big-endian kernel', () => {
    expect(formatAddress(ipv4FromProcHex('7F000001', false)!)).toBe('127.0.0.1');
    expect(formatAddress(ipv6FromProcHex('20010DB8000000000000000000000001', false)!)).toBe('2001:db8::1');
    expect(formatAddress(ipv6FromProcHex(v6hex([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]))!)).toBe('2001:db8::1');
    expect(ipv4FromProcHex('7F00001')).toBeNull();
  });
});

describe('route tables', () => {
  it('reads the IPv4 main table: default route, on-link routes, metrics; drops reject routes', () => {
    const { entries, skipped } = parseRouteTable(REAL_ROUTE);
    expect(skipped).toBe(0);
    expect(entries.map((route) => `${formatCidr(route.destination)} via ${route.gateway ? formatAddress(route.gateway) : '-'} dev ${route.interface} metric ${route.metric}`)).toEqual([
      '0.0.0.0/0 via 192.0.2.1 dev eth0 metric 0',
      '192.0.2.0/24 via - dev eth0 metric 0',
      '192.168.0.0/16 via - dev wlan0 metric 600',
    ]);
    expect(defaultRoutes(entries).map((route) => route.interface)).toEqual(['eth0']);
  });

  it('reads the IPv6 table: the default route via fd00::1, not the kernel\'s unreachable default on lo', () => {
    const { entries, skipped } = parseIpv6RouteTable(REAL_IPV6_ROUTE);
    expect(skipped).toBe(0);
    const defaults = defaultRoutes(entries);
    expect(defaults).toHaveLength(1);
    expect(defaults[0]?.interface).toBe('eth0');
    expect(formatAddress(defaults[0]!.gateway!)).toBe('fd00::1');
  });

  it('skips malformed route lines (non-contiguous mask, bad names, short lines)', () => {
    const text = [
      ROUTE_HEADER,
      'eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FF00FF\t0\t0\t0',
      'bad/name\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0',
      'eth0\t00000000',
      'eth0\t010200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
    ].join('\n');
    expect(parseRouteTable(text)).toEqual({ entries: [], skipped: 4 });
    expect(parseIpv6RouteTable('zz 40\n' + '0'.repeat(32) + ' 81 ' + '0'.repeat(32) + ' 00 ' + '0'.repeat(32) + ' 00000000 00000000 00000000 00000001 eth0').skipped).toBe(2);
  });

  it('finds the interface a remote address leaves by: longest prefix, then lowest metric', () => {
    const routes = parseRouteTable(REAL_ROUTE).entries;
    expect(routeInterface(routes, address('192.168.3.4'))).toBe('wlan0');
    expect(routeInterface(routes, address('192.0.2.77'))).toBe('eth0');
    expect(routeInterface(routes, address('8.8.8.8'))).toBe('eth0');
    expect(routeInterface(routes, address('::ffff:192.168.3.4'))).toBe('wlan0');
    expect(routeInterface([], address('8.8.8.8'))).toBeNull();
    expect(routeInterface(routes.filter((route) => route.destination.prefix > 0), address('8.8.8.8'))).toBeNull();
    expect(cidr('0.0.0.0/0').prefix).toBe(0);
  });

  it('names lo for loopback addresses, which the main table does not route (regression: a 127.0.0.2 connection was put on eth0 by the default route)', () => {
    const routes = parseRouteTable(REAL_ROUTE).entries;
    expect(routeInterface(routes, address('127.0.0.2'))).toBe('lo');
    expect(routeInterface(routes, address('::1'))).toBe('lo');
    expect(routeInterface(routes, address('::ffff:127.0.0.9'))).toBe('lo');
  });
});

describe('ProcNetReader', () => {
  it('reads a whole fake /proc and /sys tree', async () => {
    const fake = await FakeProc.create(await tempDir());
    await fake.writeRaw('net/tcp', REAL_TCP);
    await fake.writeRaw('net/tcp6', REAL_TCP6);
    await fake.writeRaw('net/udp', REAL_UDP);
    await fake.setTable('udp6', UDP_HEADER, [udpLine(1, `${v6hex([0, 0, 0, 0, 0, 0, 0, 1])}:${port(5000)}`, `${v6hex([0, 0, 0, 0, 0, 0, 0, 1])}:${port(5001)}`, '01', 4001)]);
    await fake.writeRaw('net/route', REAL_ROUTE);
    await fake.writeRaw('net/ipv6_route', REAL_IPV6_ROUTE);
    await fake.addInterface({ name: 'eth0', mac: '52:54:00:aa:bb:cc' });
    const snapshot = await new ProcNetReader({ procRoot: fake.procRoot, sysRoot: fake.sysRoot, littleEndian: true }).read();
    expect(snapshot.sockets.map((socket) => socket.protocol)).toEqual(['tcp', 'tcp', 'tcp', 'tcp', 'tcp', 'tcp6', 'tcp6', 'tcp6', 'udp', 'udp', 'udp6']);
    expect(snapshot.interfaces).toEqual([
      { name: 'eth0', operstate: 'up', mac: '52:54:00:aa:bb:cc', virtual: null },
      { name: 'lo', operstate: 'unknown', mac: '00:00:00:00:00:00', virtual: null },
    ]);
    expect(defaultRoutes(snapshot.routes)).toHaveLength(2);
    expect(snapshot.unreadable).toEqual([]);
    expect(snapshot.skipped).toBe(0);
  });

  it('reports a missing table as unreadable instead of failing (a kernel without IPv6)', async () => {
    const fake = await FakeProc.create(await tempDir());
    const { rm } = await import('node:fs/promises');
    await rm(`${fake.procRoot}/net/tcp6`);
    await rm(`${fake.procRoot}/net/ipv6_route`);
    const snapshot = await new ProcNetReader({ procRoot: fake.procRoot, sysRoot: fake.sysRoot }).read();
    expect(snapshot.unreadable.map((line) => line.replace(fake.procRoot, '/proc'))).toEqual(['/proc/net/tcp6: ENOENT', '/proc/net/ipv6_route: ENOENT']);
    expect(snapshot.interfaces.map((entry) => entry.name)).toEqual(['lo']);
  });

  it('finds the process holding a socket inode through /proc/PID/fd', async () => {
    const fake = await FakeProc.create(await tempDir());
    await fake.addProcess(4242, 'curl', [88001, 5]);
    await fake.addProcess(77, 'sshd', [1554]);
    const owners = await new ProcNetReader({ procRoot: fake.procRoot, sysRoot: fake.sysRoot }).socketOwners([88001, 1554, 999]);
    expect(Object.fromEntries(owners)).toEqual({ 88001: { pid: 4242, command: 'curl' }, 1554: { pid: 77, command: 'sshd' } });
  });

  it('reads the real /proc/net of this machine without skipping a line', async () => {
    const snapshot = await new ProcNetReader().read();
    expect(snapshot.skipped).toBe(0);
    expect(snapshot.interfaces.some((entry) => entry.name === 'lo')).toBe(true);
    expect(snapshot.sockets.length).toBeGreaterThan(0);
  });
});

