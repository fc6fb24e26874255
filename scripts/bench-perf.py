#!/usr/bin/env python3
"""Summarize one system-wide `perf record -a -g` of scripts/bench.sh --profile.

    bench-perf.py PERF_DATA CLIENT_PID POSTMASTER_PID FREQ OUT_JSON

Splits the samples by process tree, using the task list perf recorded (`perf
report --tasks`: every process and thread with its parent), and gives every
sample (`perf script`) to one of: the client (the measured command's process,
its threads and child processes such as pg_dump), the bench cluster (the
postmaster and every process it forked), idle, and everything else on the
machine (other work on a shared VM). For the client and the server it writes
the flat self-time profile by object and symbol (what `perf report
--no-children --sort dso,symbol` shows), with addresses in objects that have no
symbols folded into one row per object. Not meant to be run by hand."""
import json
import re
import subprocess
import sys

data, client_root, pm_root, freq, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]


def perf(*args):
    r = subprocess.run(["perf", "report", "-i", data, *args], capture_output=True, text=True)
    return r.stdout


# The task tree: pid, tid, parent tid, comm.
tid_pid, tid_parent, pid_comm = {}, {}, {}
for line in perf("--tasks").splitlines():
    m = re.match(r"^\s*(-?\d+)\s+(-?\d+)\s+(-?\d+)\s+\|\s*(.*)$", line)
    if not m:
        continue
    pid, tid, ppid, comm = int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4).strip()
    tid_pid[tid] = pid
    tid_parent[tid] = ppid
    if pid == tid:
        pid_comm[pid] = comm


def parent_pid(pid):
    p = tid_parent.get(pid, -1)
    return tid_pid.get(p, p)


def in_tree(pid, root):
    seen = set()
    while pid > 0 and pid not in seen:
        if pid == root:
            return True
        seen.add(pid)
        pid = parent_pid(pid)
    return False


pids = set(tid_pid.values())
client = sorted(p for p in pids if in_tree(p, client_root))
server = sorted(p for p in pids if in_tree(p, pm_root))


# Every sample: pid/tid, address, symbol, object (`perf script`, call chains hidden).
SAMPLE = re.compile(r"^\s*(-?\d+)/(-?\d+)\s+[0-9a-fA-F]+\s+(.*?)\s+\(([^()]*)\)\s*$")
split = {"client": 0, "client children": 0, "server": 0, "idle": 0, "other": 0}
children_comm, other_comm = {}, {}
client_set, server_set = set(client), set(server)
profiles = {"client": ({}, {}), "server": ({}, {})}  # side -> ({(dso, sym): n}, {dso: n})
total = 0
script = subprocess.run(["perf", "script", "-i", data, "-F", "pid,tid,ip,sym,dso", "-G"],
                        capture_output=True, text=True).stdout
for line in script.splitlines():
    m = SAMPLE.match(line)
    if not m:
        continue
    pid, tid, name, obj = int(m.group(1)), int(m.group(2)), m.group(3).strip(), m.group(4).strip()
    total += 1
    if pid == 0:
        split["idle"] += 1
        continue
    if pid in client_set:
        which = "client"
        if pid == client_root:
            split["client"] += 1
        else:
            split["client children"] += 1
            c = pid_comm.get(pid, "?")
            children_comm[c] = children_comm.get(c, 0) + 1
    elif pid in server_set:
        which = "server"
        split["server"] += 1
    else:
        split["other"] += 1
        c = pid_comm.get(pid, "?")
        other_comm[c] = other_comm.get(c, 0) + 1
        continue
    base = obj.rsplit("/", 1)[-1] or "?"
    if not name or name == "[unknown]" or re.fullmatch(r"(0x)?[0-9a-fA-F]+", name):
        name = f"(code without symbols in {base})"
    sym, dso = profiles[which]
    sym[(base, name)] = sym.get((base, name), 0) + 1
    dso[base] = dso.get(base, 0) + 1


def side(which):
    sym, dso = profiles[which]
    top = sorted(((n, o, s) for (o, s), n in sym.items()), key=lambda t: -t[0])
    return {"samples": sum(dso.values()),
            "dso": sorted(([o, n] for o, n in dso.items()), key=lambda t: -t[1]),
            "top": [list(t) for t in top[:40]]}


res = {
    "freq": freq, "total": total, "split": split,
    "children": sorted(([c, n] for c, n in children_comm.items()), key=lambda t: -t[1]),
    "other": sorted(([c, n] for c, n in other_comm.items()), key=lambda t: -t[1])[:5],
    "client_processes": len(client), "server_processes": len(server),
    "client": side("client"), "server": side("server"),
}
json.dump(res, open(out, "w"), indent=1)
