#!/usr/bin/env python3
"""bench_budget.py TRACE RATE [CONNECTIONS] - bench_budget.sh's figures from `perf script --ns`.

Every traced thread's wait for a CPU, and the committer's cycles (commit to commit, with the
checkpoints among them). Then, for one connection at a low rate (one request in flight at a
time), each request's stages, in order:
  c_write    the client writes the request (write(2) of more than 100 bytes)
  s_read     a danejoind thread reads it (first read(2) returning more than 100 bytes)
  s_submit   the loop hands it to the store's committer (its futex wake)
  k_wake     the committer returns from its wait (futex)
  k_pwrite   its first pwrite (the WAL)
  k_sync0/1  its fdatasync enters / returns
  k_notify   it wakes the loop (the 8-byte write to libevent's eventfd)
  s_wake     the loop returns from epoll_wait
  s_write    the loop writes the answer; s_written: the write returns
  c_wake     the client returns from epoll_wait; c_read: it has read the answer
  c_done     it waits again (epoll_wait): its callback and the device's check are done
"""
import collections
import re
import statistics
import sys

LINE = re.compile(r'^\s*(\S.*?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)$')
READ, WRITE, FUTEX, EPOLL_WAIT, FDATASYNC, PWRITE = 0, 1, 202, 232, 75, 18
KEYS = ['c_write', 's_read', 's_submit', 'k_wake', 'k_pwrite', 'k_sync0', 'k_sync1',
        'k_notify', 's_wake', 's_write', 's_written', 'c_wake', 'c_read', 'c_done']


def load(path):
    ev = []
    for ln in open(path, errors='replace'):
        m = LINE.match(ln)
        if m:
            comm, tid, _cpu, ts, name, rest = m.groups()
            ev.append((float(ts), comm.strip(), int(tid), name.split(':')[-1], rest))
    ev.sort(key=lambda e: e[0])
    return ev


def nr(rest):
    return int(rest.split()[1])


def arg(rest, i):
    return int(rest.split('(')[1].split(',')[i], 16)


def ret(rest):
    return int(rest.split('=')[1])


def q(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * len(v)))] if v else 0.0


def timelines(ev):
    sc = [e for e in ev if e[3] in ('sys_enter', 'sys_exit')]
    cli = next(e[2] for e in sc if e[1] == 'danejoin-client')
    com = next(e[2] for e in sc if e[3] == 'sys_enter' and nr(e[4]) == FDATASYNC and e[2] != cli)
    reqs, cur = [], None
    for ts, _comm, tid, kind, rest in sc:
        n = nr(rest)
        enter = kind == 'sys_enter'
        if tid == cli:
            if enter and n == WRITE and arg(rest, 2) > 100:
                if cur is None or 'c_done' in cur:
                    cur = {'c_write': ts}
                    reqs.append(cur)
            elif cur is None:
                continue
            elif not enter and n == EPOLL_WAIT and ret(rest) > 0 and 's_write' in cur:
                cur.setdefault('c_wake', ts)
            elif not enter and n == READ and 'c_wake' in cur and ret(rest) > 100:
                cur.setdefault('c_read', ts)
            elif enter and n == EPOLL_WAIT and 'c_read' in cur:
                cur.setdefault('c_done', ts)
            continue
        if cur is None:
            continue
        if tid == com:
            if not enter and n == FUTEX and 's_read' in cur:
                cur.setdefault('k_wake', ts)
            elif enter and n == PWRITE and 'k_wake' in cur:
                cur.setdefault('k_pwrite', ts)
            elif enter and n == FDATASYNC and 'k_wake' in cur:
                cur.setdefault('k_sync0', ts)
            elif not enter and n == FDATASYNC and 'k_sync0' in cur:
                cur.setdefault('k_sync1', ts)
            elif enter and n == WRITE and 'k_sync1' in cur and arg(rest, 2) == 8:
                cur.setdefault('k_notify', ts)
            continue
        if not enter and n == READ and ret(rest) > 100 and 's_read' not in cur:
            cur['s_read'], cur['loop'] = ts, tid
        elif tid != cur.get('loop'):
            continue
        elif enter and n == FUTEX and 's_read' in cur:
            cur.setdefault('s_submit', ts)
        elif not enter and n == EPOLL_WAIT and 'k_notify' in cur:
            cur.setdefault('s_wake', ts)
        elif enter and n == WRITE and 's_wake' in cur and arg(rest, 2) > 100:
            cur.setdefault('s_write', ts)
        elif not enter and n == WRITE and 's_write' in cur:
            cur.setdefault('s_written', ts)
    return reqs


def waits(ev):
    """per thread: time runnable but off the CPU after a preemption (switch-out in state R
    until its next event), and time blocked in D (disk)"""
    out, st = {}, collections.defaultdict(lambda: [0.0, 0, 0.0, 0.0, ''])
    for ts, comm, tid, kind, rest in ev:
        if tid in out:
            t0, state = out.pop(tid)
            if state == 'R':
                st[tid][0] += ts - t0
                st[tid][1] += 1
                st[tid][2] = max(st[tid][2], ts - t0)
            elif state == 'D':
                st[tid][3] += ts - t0
        if kind == 'sched_switch':
            m = re.search(r'prev_pid=(\d+) .*prev_state=(\S+)', rest)
            if m and int(m.group(1)) == tid:
                out[tid] = (ts, m.group(2)[0])
                st[tid][4] = comm
    return st


def cycles(ev):
    """the committer's cycles, from one WAL fdatasync's return to the next; a checkpoint is a
    pwrite or sync of another file in between"""
    sc = [e for e in ev if e[3] in ('sys_enter', 'sys_exit')]
    syncs = collections.Counter((e[2], arg(e[4], 0)) for e in sc
                                if e[3] == 'sys_enter' and nr(e[4]) in (74, FDATASYNC))
    if not syncs:
        return
    (com, wal), _ = syncs.most_common(1)[0]
    cyc, cur, enter = [], None, {}
    for ts, _comm, tid, kind, rest in sc:
        if tid != com:
            continue
        n = nr(rest)
        if kind == 'sys_enter':
            enter[n] = (ts, arg(rest, 0))
            if cur is not None and n == PWRITE:
                cur['wal' if arg(rest, 0) == wal else 'db'] += 1
            continue
        if n not in (74, FDATASYNC) or n not in enter:
            continue
        if enter[n][1] == wal:
            if cur is not None:
                cur['len'] = ts - cur['start']
                cyc.append(cur)
            cur = {'start': ts, 'sync': ts - enter[n][0], 'wal': 0, 'db': 0, 'dbsync': 0.0}
        elif cur is not None:
            cur['dbsync'] += ts - enter[n][0]
    if len(cyc) < 2:
        return
    L = [1e3 * c['len'] for c in cyc]
    S = [1e3 * c['sync'] for c in cyc]
    print('committer: %d commits, cycle ms p50 %.2f p99 %.2f max %.2f; WAL fdatasync ms p50 %.2f '
          'p99 %.2f max %.2f; WAL pwrites per commit %.1f' % (len(cyc), q(L, .5), q(L, .99),
          max(L), q(S, .5), q(S, .99), max(S), statistics.mean(c['wal'] for c in cyc)))
    ck = [c for c in cyc if c['dbsync'] > 0]
    if ck:
        t = cyc[-1]['start'] - cyc[0]['start']
        print('  checkpoints: %d (%.1f%% of commits, %.1f/s), database pwrites p50 %d, sync ms p50 '
              '%.2f max %.2f; their cycle ms p50 %.2f max %.2f'
              % (len(ck), 100 * len(ck) / len(cyc), len(ck) / t, q([c['db'] for c in ck], .5),
                 q([1e3 * c['dbsync'] for c in ck], .5), max(1e3 * c['dbsync'] for c in ck), q([1e3 * c['len'] for c in ck], .5),
              max(1e3 * c['len'] for c in ck)))
    for c in sorted(cyc, key=lambda c: -c['len'])[:5]:
        print('  a long cycle: %.2f ms, of which WAL fdatasync %.2f ms, checkpoint sync %.2f ms'
              % (1e3 * c['len'], 1e3 * c['sync'], 1e3 * c['dbsync']))


def main():
    ev = load(sys.argv[1])
    rate = float(sys.argv[2])
    conns = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    t = ev[-1][0] - ev[0][0]
    for tid, (r, n, rmax, d, comm) in sorted(waits(ev).items()):
        print('  %-16s %7d: waited for a CPU %7.1f ms (%4.1f%% of %.1f s, %d preemptions, '
              'longest %.1f ms), blocked on the disk %.1f ms' % (comm, tid, 1e3 * r, 100 * r / t,
                                                                t, n, 1e3 * rmax, 1e3 * d))
    cycles(ev)
    if conns != 1:
        return
    reqs = timelines(ev)
    full = [r for r in reqs if all(k in r for k in KEYS)]
    print('requests traced %d, complete timelines %d (microseconds)' % (len(reqs), len(full)))
    if not full:
        return
    print('  %-22s %7s %7s %7s' % ('stage', 'p50', 'mean', 'p99'))

    def row(name, d):
        print('  %-22s %7.0f %7.0f %7.0f' % (name, q(d, .5), statistics.mean(d), q(d, .99)))
    for a, b in zip(KEYS, KEYS[1:]):
        row(a + ' -> ' + b, [1e6 * (r[b] - r[a]) for r in full])
    row('server: read -> written', [1e6 * (r['s_written'] - r['s_read']) for r in full])
    row('client: write -> done', [1e6 * (r['c_done'] - r['c_write']) for r in full])
    # the client's schedule: request k is due at start + k/rate; its write's distance to that,
    # relative to the smallest (the start is not in the trace)
    s = [r['c_write'] - i / rate for i, r in enumerate(reqs)]
    row('send lag (above min)', [1e6 * (x - min(s)) for x in s])


main()
