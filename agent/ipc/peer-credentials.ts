import fs from 'node:fs/promises';
import type net from 'node:net';
import type { CommandRunner } from '../platform/command-runner.js';

/** Who is on the other end of a local IPC connection (from the kernel, never from the message). */
export interface PeerIdentity {
  readonly uid: number;
  readonly pid: number;
}

/** Resolves a connection's peer; null when it cannot be established (the caller treats the peer as unknown: least privilege). */
export type PeerLookup = (socket: net.Socket) => Promise<PeerIdentity | null>;

/**
 * Linux peer credentials without a native addon. Node exposes neither SO_PEERCRED nor
 * SCM_CREDENTIALS, so the agent asks the kernel the same question through `sock_diag`, via
 * iproute2's `ss -xpn`: it names, for every Unix stream socket, its inode, its peer's inode and the
 * processes holding it. Our accepted socket's inode comes from `/proc/self/fd/<fd>`; its peer row
 * names the client process, whose `/proc/<pid>` owner is its effective uid (the uid SO_PEERCRED
 * reports). One `ss` per connection (≈ 25 ms measured here); the lock screen holds one long-lived
 * connection and the PAM helper makes one per login, so this is not on a hot path.
 *
 * Fails closed: a peer held by processes of different users (a passed descriptor), a process that
 * exited before the lookup, or any parse surprise yields null.
 */
export function linuxPeerLookup(runner: CommandRunner, procRoot = '/proc'): PeerLookup {
  return async (socket) => {
    const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) return null;
    let link: string;
    try {
      link = await fs.readlink(`${procRoot}/self/fd/${fd}`);
    } catch {
      return null;
    }
    const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
    if (inode === undefined) return null;
    const result = await runner.run('ss', ['-xpnH'], { timeoutMs: 5_000 });
    if (result.code !== 0 || result.error) return null;
    // The client's row is the one whose peer is our socket (the last inode before the process list).
    const peers = parseSsUnixRows(result.stdout).filter((row) => row.peerInode === inode);
    if (peers.length !== 1) return null;
    const peer = peers[0]!;
    if (peer.pids.length === 0) return null;
    const uids = new Set<number>();
    for (const pid of peer.pids) {
      try {
        uids.add((await fs.stat(`${procRoot}/${pid}`)).uid);
      } catch {
        return null;
      }
    }
    if (uids.size !== 1) return null;
    return { uid: [...uids][0]!, pid: peer.pids[0]! };
  };
}

export interface SsUnixRow {
  readonly peerInode: string;
  readonly pids: readonly number[];
}

/**
 * Parses `ss -xpnH` lines: `u_str ESTAB 0 0 * 296666 /run/x.sock 296667 users:(("node",pid=9516,fd=20))`.
 * Socket paths may contain spaces, so only the last token before the process list (the peer's
 * inode) is read by position; the process ids come from the `users:` list.
 */
export function parseSsUnixRows(text: string): SsUnixRow[] {
  const rows: SsUnixRow[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('u_str')) continue;
    const usersAt = line.indexOf(' users:(');
    const head = (usersAt === -1 ? line : line.slice(0, usersAt)).trim().split(/\s+/);
    const peerInode = head[head.length - 1] ?? '';
    if (head.length < 7 || !/^[1-9]\d*$/.test(peerInode)) continue;
    const pids = usersAt === -1 ? [] : [...line.slice(usersAt).matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
    rows.push({ peerInode, pids });
  }
  return rows;
}
