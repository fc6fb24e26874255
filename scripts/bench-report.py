#!/usr/bin/env python3
"""The report of scripts/bench.sh (issue 8): reads what bench.sh measured (the
B_* environment variables name the files), prints this scale's section, keeps
it in $B_OUT and puts it into the benchmarks doc in place of the section for
the same scale or shape (the rest of the doc stays). Not meant to be run by
hand."""
import os
import re
import shutil
import statistics
import subprocess

E = os.environ
NPROC = int(E["B_NPROC"])
TCK = int(E["B_CLK_TCK"])
PERF_FREQ = int(E["B_PERF_FREQ"])


def mb(b):
    return f"{int(b) / 1e6:.1f} MB"


def md(text, width=110):
    """A table cell: one line, no pipes, at most `width` characters."""
    text = " ".join(text.split()).replace("|", "\\|").replace("`", "'")
    return text if len(text) <= width else text[: width - 1] + "…"


# --- the timed runs ---------------------------------------------------------
rows, order = {}, []
for line in open(E["B_RAW"]):
    g, n, r, w, m, usr, sys_, busy, iow, tot, srv = line.rstrip("\n").split("\t")
    if n not in rows:
        rows[n] = {"group": g, "wall": [], "rss": [], "usr": [], "sys": [], "busy": [], "iow": [],
                   "tot": [], "srv": []}
        order.append(n)
    d = rows[n]
    d["wall"].append(float(w)); d["rss"].append(int(m)); d["usr"].append(float(usr)); d["sys"].append(float(sys_))
    d["busy"].append(int(busy)); d["iow"].append(int(iow)); d["tot"].append(int(tot)); d["srv"].append(int(srv))
med = {n: statistics.median(rows[n]["wall"]) for n in order}
peak = {n: max(rows[n]["rss"]) for n in order}


def ratio(a, b):
    return med[a] / med[b] if med.get(b) else float("nan")


out = []
flags = " --profile" if E["B_PROFILE"] == "1" else ""
kind = "Shape" if E.get("B_PARTITIONS") else "Scale"
out.append(f"## {kind} `{E['B_SCALE']}`, repeat {E['B_REPEAT']}\n")
out.append(f"Reproduce: `scripts/bench.sh {E.get('B_ARGS') or ('--scale ' + E['B_SCALE'] + ' --repeat ' + E['B_REPEAT'] + flags)}`\n")
out.append(f"- date: {E['B_DATE']}; pgvault commit {E['B_COMMIT']}, a release build with the Swift runtime linked in, "
           "as scripts/install.sh and the Debian package build it")
out.append(f"- machine: {NPROC} CPUs ({E['B_CPU']}), {int(E['B_MEM_KB'])/1048576:.1f} GiB RAM, Linux {E['B_KERNEL']}; "
           f"a shared VM, so timings are noisy; load average {E.get('B_LOAD', '?')} when the report was written")
out.append(f"- PostgreSQL {E['B_PGVER']} (local, Unix socket only, shared_buffers=512MB, max_wal_size=4GB, fsync on, "
           "pg_stat_statements loaded, track_io_timing and track_wal_io_timing on; same settings for every tool)")
out.append(f"- data: {E['B_COUNTS']}, {int(E['B_TABLE_ROWS']):,} rows in all; tables (heap and TOAST) {mb(E['B_TABLE_BYTES'])}, "
           f"database size {mb(E['B_DB_BYTES'])}; `pgvault generate` took {float(E['B_GEN_SECS']):.1f} s")
out.append(f"- each command run {E['B_REPEAT']} time(s), tools alternating within a repetition; wall = GNU time `%e`, "
           "peak RSS = `%M` of the client process only (server backends are not counted)\n")
out.append("| group | command | median s | min s | max s | ratio | peak RSS |")
out.append("|---|---|---:|---:|---:|---|---:|")
SPLIT = " (split cores)"
COLD = " (cold)"
ref = {"backup": "pg_dump -Fd -j 2 zstd", "restore": "pg_restore -j 2 (from -Fd)",
       "restore4": "pg_restore -j 4 (from -Fd)",
       "split": "pg_dump -Fd -j 2 zstd" + SPLIT,
       "cold-backup": "pg_dump -Fd -j 2 zstd" + COLD, "cold-restore": "pg_restore -j 2 (from -Fd)" + COLD}
for n in order:
    g, w = rows[n]["group"], rows[n]["wall"]
    r = ""
    if g in ref and n != ref[g] and ref[g] in med:
        r = f"{ratio(n, ref[g]):.2f}× {ref[g]}"
    sfx = SPLIT if g == "split" else ""
    if n == "pgvault backup --jobs 2" + sfx and "COPY ceiling (2 conns)" + sfx in med:
        r += f"; {ratio(n, 'COPY ceiling (2 conns)' + sfx):.2f}× COPY ceiling"
    if n == "pgvault backup --jobs 2" + sfx and "COPY ceiling binary (2 conns)" + sfx in med:
        r += f"; {ratio(n, 'COPY ceiling binary (2 conns)' + sfx):.2f}× binary COPY ceiling"
    out.append(f"| {g} | `{n}` | {med[n]:.2f} | {min(w):.2f} | {max(w):.2f} | {r} | {peak[n]/1024:.1f} MiB |")
out.append("")
# --cold: each cold run beside its warm one.
cold = [n for n in order if n.endswith(COLD) and n[: -len(COLD)] in med]
if cold:
    out.append("Cold beside warm (cold: `sync; echo 3 > /proc/sys/vm/drop_caches` and a server restart before each run):\n")
    out.append("| command | warm median s | cold median s | cold / warm |")
    out.append("|---|---:|---:|---:|")
    for n in cold:
        w = n[: -len(COLD)]
        out.append(f"| `{w}` | {med[w]:.2f} | {med[n]:.2f} | {med[n] / med[w]:.2f}× |")
    out.append("")
# Each pgvault restore's scheduled part (the data and post-data) against the
# lower bound its summary prints.
BOUND = re.compile(r"data and post-data ([\d.]+) s against a lower bound of ([\d.]+) s \(critical path ([\d.]+) s; "
                   r"statements ([\d.]+) s over (\d+) connections(?:; steps that cannot overlap for their locks on (.+?) ([\d.]+) s)?\)")
bounds = {}
for n in order:
    if not n.startswith("pgvault restore"):
        continue
    slug = re.sub(r"[^A-Za-z0-9_-]", "_", n)
    for rep in range(1, len(rows[n]["wall"]) + 1):
        try:
            text = open(os.path.join(E["B_LOGS"], f"{slug}-{rep}.log"), encoding="utf-8", errors="replace").read()
        except OSError:
            continue
        m = BOUND.search(text)
        if m:
            bounds.setdefault(n, []).append(m)
if bounds:
    out.append("The restore's scheduled part (its data and post-data, as its summary gives it) against its lower bound: "
               "max(the critical path of dependent steps, the statement time / the connections, the steps that cannot "
               "overlap for their locks on one relation). Medians over the repetitions:\n")
    out.append("| command | scheduled s | lower bound s | scheduled / bound | critical path s | statements s / jobs | lock chain s | set by |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---|")
    for n, found in bounds.items():
        wall = statistics.median(float(m.group(1)) for m in found)
        bound = statistics.median(float(m.group(2)) for m in found)
        ratio_ = statistics.median(float(m.group(1)) / float(m.group(2)) for m in found if float(m.group(2)) > 0) if bound > 0 else float("nan")
        cp = statistics.median(float(m.group(3)) for m in found)
        per_job = statistics.median(float(m.group(4)) / int(m.group(5)) for m in found)
        lock = statistics.median(float(m.group(7) or 0) for m in found)
        relation = next((m.group(6) for m in found if m.group(6)), None)
        setter = max([("critical path", cp), ("statements / jobs", per_job), (f"locks on {relation}", lock)], key=lambda x: x[1])[0]
        out.append(f"| `{n}` | {wall:.2f} | {bound:.2f} | {ratio_:.2f}× | {cp:.2f} | {per_job:.2f} | {lock:.2f} | {setter} |")
    out.append("")
if E.get("B_PARTITIONS"):
    parts = int(E["B_PARTITIONS"])
    out.append(f"Per partition ({parts} daily partitions of messages; wall time / partitions):\n")
    out.append("| command | ms per partition |")
    out.append("|---|---:|")
    for n in order:
        if rows[n]["group"] in ("backup", "restore", "restore4", "cold-backup", "cold-restore"):
            out.append(f"| `{n}` | {med[n] * 1000 / parts:.2f} |")
    out.append("")
sp, sd, sc = int(E["B_SIZE_PGVAULT"]), int(E["B_SIZE_FD"]), int(E["B_SIZE_FC"])
out.append("| archive | bytes (du -sb) | vs pg_dump -Fd zstd |")
out.append("|---|---:|---:|")
out.append(f"| pgvault backup (directory) | {sp} ({mb(sp)}) | {sp/sd:.3f}× |")
out.append(f"| pg_dump -Fd zstd | {sd} ({mb(sd)}) | 1.000× |")
out.append(f"| pg_dump -Fc zstd | {sc} ({mb(sc)}) | {sc/sd:.3f}× |")
out.append(f"| export-user heaviest (user {E['B_HEAVY']}, {E['B_HEAVY_N']} messages) | {E['B_SIZE_HEAVY']} | |")
out.append(f"| export-user median (user {E['B_MEDIAN']}, {E['B_MEDIAN_N']} messages) | {E['B_SIZE_MEDIAN']} | |")
out.append("")


def mark(ok):
    return "met" if ok else "**not met**"


pv_rss = max(peak[n] for n in order if "pgvault" in n or "export-user" in n) / 1024
bw = ratio("pgvault backup --jobs 2", "pg_dump -Fd -j 2 zstd")
bc = ratio("pgvault backup --jobs 2", "COPY ceiling (2 conns)")
bcb = ratio("pgvault backup --jobs 2", "COPY ceiling binary (2 conns)") if "COPY ceiling binary (2 conns)" in med else None
rw = ratio("pgvault restore --jobs 2", "pg_restore -j 2 (from -Fd)")
rnv = ratio("pgvault restore --jobs 2 --no-verify", "pg_restore -j 2 (from -Fd)")
he = med["export-user heaviest"]
out.append("Targets (issue 8) at this scale:\n")
out.append("| target | measured | |")
out.append("|---|---|---|")
out.append(f"| backup wall ≤ 0.8× pg_dump -Fd -j2 zstd | {bw:.2f}× | {mark(bw <= 0.8)} |")
out.append(f"| backup size ≤ 1.05× pg_dump -Fd zstd | {sp/sd:.3f}× | {mark(sp/sd <= 1.05)} |")
out.append(f"| backup wall ≤ 1.25× COPY ceiling (text, as pg_dump reads) | {bc:.2f}× | {mark(bc <= 1.25)} |")
if bcb is not None:
    out.append(f"| backup wall ≤ 1.25× COPY ceiling (binary, as pgvault reads) | {bcb:.2f}× | {mark(bcb <= 1.25)} |")
if "pgvault backup --jobs 2" + SPLIT in med:
    pv = "pgvault backup --jobs 2" + SPLIT
    sw = ratio(pv, "pg_dump -Fd -j 2 zstd" + SPLIT)
    sc = ratio(pv, "COPY ceiling (2 conns)" + SPLIT)
    scb = ratio(pv, "COPY ceiling binary (2 conns)" + SPLIT)
    out.append(f"| split cores (server on core 0, client on core 1): backup wall ≤ 0.8× pg_dump -Fd -j2 zstd | {sw:.2f}× | {mark(sw <= 0.8)} |")
    out.append(f"| split cores: backup wall ≤ 1.25× COPY ceiling (text) | {sc:.2f}× | {mark(sc <= 1.25)} |")
    out.append(f"| split cores: backup wall ≤ 1.25× COPY ceiling (binary) | {scb:.2f}× | {mark(scb <= 1.25)} |")
out.append(f"| restore wall ≤ 0.7× pg_restore -j2 (with pgvault's final verify) | {rw:.2f}× | {mark(rw <= 0.7)} |")
out.append(f"| restore wall ≤ 0.7× pg_restore -j2 (`--no-verify`) | {rnv:.2f}× | {mark(rnv <= 0.7)} |")
# Issue 22: the verified restore against pg_restore at the same jobs, and its
# scheduled part against its lower bound.
out.append(f"| restore (verified) ≤ 0.8× pg_restore -j 2 (issue 22: at the default and large scales) | {rw:.2f}× | {mark(rw <= 0.8)} |")
if "pgvault restore --jobs 4" in med and "pg_restore -j 4 (from -Fd)" in med:
    r4 = ratio("pgvault restore --jobs 4", "pg_restore -j 4 (from -Fd)")
    out.append(f"| restore (verified) ≤ 0.8× pg_restore -j 4 (issue 22: at the default and large scales) | {r4:.2f}× | {mark(r4 <= 0.8)} |")
for n in ("pgvault restore --jobs 2", "pgvault restore --jobs 4"):
    if n in bounds:
        b = statistics.median(float(m.group(1)) / float(m.group(2)) for m in bounds[n] if float(m.group(2)) > 0)
        out.append(f"| `{n}`: scheduled part ≤ 1.1× its lower bound (issue 22) | {b:.2f}× | {mark(b <= 1.1)} |")
out.append(f"| pgvault peak RSS ≤ 64 MB (max over all pgvault commands) | {pv_rss:.1f} MiB | {mark(pv_rss * 1048576 <= 64e6)} |")
out.append(f"| heavy-user export < 1 s | {he:.2f} s | {mark(he < 1)} |")
out.append("")

# --- where the time goes: CPU ------------------------------------------------
out.append("### Where the time goes\n")
out.append(f"CPU per command (medians over the repetitions). Client user/sys = GNU time `%U`/`%S` of the client "
           "process and its children; server CPU = CPU time of the bench cluster's processes over the run "
           "(backends, parallel workers, autovacuum, checkpointer, ...; from /proc of the postmaster and its "
           f"children); machine busy/iowait = share of all {NPROC} cores over the run's wall time (/proc/stat); "
           "rest of machine = busy CPU not accounted to the client or the bench cluster (other work on this "
           f"shared VM). A run whose client + server CPU comes near {NPROC} × wall is CPU-bound; one far below it "
           "waits (on I/O, fsync, locks or the other side).\n")
out.append("| command | wall s | client user s | client sys s | client cores | server CPU s | server cores "
           "| machine busy % | iowait % | rest of machine CPU s |")
out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for n in order:
    d = rows[n]
    wall = med[n]
    usr, sys_ = statistics.median(d["usr"]), statistics.median(d["sys"])
    srv = statistics.median(d["srv"]) / TCK
    busy_pct = statistics.median([100 * b / t if t else 0 for b, t in zip(d["busy"], d["tot"])])
    iow_pct = statistics.median([100 * i / t if t else 0 for i, t in zip(d["iow"], d["tot"])])
    rest = statistics.median([b / TCK - u - s - v / TCK for b, u, s, v in zip(d["busy"], d["usr"], d["sys"], d["srv"])])
    cc = (usr + sys_) / wall if wall else 0
    sc_ = srv / wall if wall else 0
    out.append(f"| `{n}` | {wall:.2f} | {usr:.2f} | {sys_:.2f} | {cc:.2f} | {srv:.2f} | {sc_:.2f} | "
               f"{busy_pct:.0f} | {iow_pct:.0f} | {max(rest, 0):.2f} |")
out.append("")

# --- where the server's time goes: pg_stat_statements ------------------------
CLASSES_HEAD = ["COPY TO", "COPY FROM", "CREATE INDEX btree", "CREATE INDEX gin", "CREATE INDEX brin"]
CLASSES_TAIL = ["PRIMARY KEY/UNIQUE", "FOREIGN KEY", "ATTACH", "ANALYZE/VACUUM", "other DDL", "queries", "other"]
MONITOR = re.compile(r"pg_stat_statements_reset|pg_stat_reset_shared")


def classify(q):
    u = re.sub(r"^\s*((/\*.*?\*/|--[^\n]*)\s*)*", "", q).upper()
    if u.startswith("COPY"):
        if re.search(r"\bTO\s+(STDOUT|PROGRAM|'|\$\d)", u):
            return "COPY TO"
        if re.search(r"\bFROM\s+(STDIN|PROGRAM|'|\$\d)", u):
            return "COPY FROM"
        return "COPY TO" if " TO " in u else "COPY FROM"
    if re.match(r"CREATE\s+(UNIQUE\s+)?INDEX\b", u):
        am = re.search(r"\bUSING\s+\"?(\w+)", u)
        return "CREATE INDEX " + (am.group(1).lower() if am else "btree")
    if u.startswith("ALTER TABLE"):
        if "FOREIGN KEY" in u or "VALIDATE CONSTRAINT" in u:
            return "FOREIGN KEY"
        if re.search(r"\bADD\b.*\b(PRIMARY\s+KEY|UNIQUE)\b", u):
            return "PRIMARY KEY/UNIQUE"
    if re.match(r"ALTER\s+INDEX\b.*\bATTACH\s+PARTITION\b", u):
        return "ATTACH"
    if re.match(r"(ANALYZE|ANALYSE|VACUUM)\b", u):
        return "ANALYZE/VACUUM"
    if re.match(r"(CREATE|ALTER|DROP|COMMENT|GRANT|REVOKE|TRUNCATE|SECURITY|REINDEX|CLUSTER|REFRESH)\b", u):
        return "other DDL"
    if re.match(r"(SELECT|WITH|VALUES|TABLE|INSERT|UPDATE|DELETE|MERGE|FETCH|DECLARE)\b|\(", u):
        return "queries"
    return "other"


snaps = []  # (slug, group, name, db)
idx = os.path.join(E["B_STATS"], "index.tsv")
if os.path.exists(idx):
    snaps = [line.rstrip("\n").split("\t") for line in open(idx) if line.strip()]
server = {}  # name -> {"cls": {class: [secs, calls]}, "elsewhere": secs, "top": [(secs, calls, cls, q)]}
for slug, group, name, db in snaps:
    cls, elsewhere, top = {}, 0.0, []
    for line in open(os.path.join(E["B_STATS"], slug + ".pgss.tsv")):
        f = line.rstrip("\n").split("\t")
        if len(f) < 10:
            continue
        datname, calls, ms, q = f[0], int(f[1]), float(f[2]), f[9]
        if datname != db:
            if not MONITOR.search(q):
                elsewhere += ms / 1000
            continue
        c = classify(q)
        acc = cls.setdefault(c, [0.0, 0])
        acc[0] += ms / 1000
        acc[1] += calls
        top.append((ms / 1000, calls, c, q))
    top.sort(key=lambda t: -t[0])
    server[name] = {"db": db, "cls": cls, "elsewhere": elsewhere, "top": top}

if server:
    seen = {c for s in server.values() for c in s["cls"]}
    idx_other = sorted(c for c in seen if c.startswith("CREATE INDEX ") and c not in CLASSES_HEAD)
    cols = [c for c in CLASSES_HEAD + idx_other + CLASSES_TAIL
            if c in seen or c in ("COPY TO", "COPY FROM", "CREATE INDEX btree", "CREATE INDEX gin",
                                 "PRIMARY KEY/UNIQUE", "FOREIGN KEY", "ATTACH", "other DDL")]
    any_else = any(s["elsewhere"] >= 0.005 for s in server.values())
    out.append("#### Where the server's time goes\n")
    out.append("Server execution time (pg_stat_statements `total_exec_time`, top-level statements) in the first "
               "repetition of each command, by statement class, counting only the statements run in the database "
               "that tool worked on (`chat` for backups and exports, the fresh target database for each restore, "
               "the pgvault-restored database for verify). Seconds are summed over the tool's connections, so "
               "with 2 jobs the sum can exceed the wall time; they include the time a statement waited (for I/O, "
               "locks, WAL flush), not just CPU. Index classes are by access method (`USING gin` etc.; no USING = "
               "btree); PRIMARY KEY/UNIQUE and FOREIGN KEY are `ALTER TABLE ... ADD` (and `VALIDATE CONSTRAINT`); "
               "ATTACH is `ALTER INDEX ... ATTACH PARTITION`; queries are SELECT/WITH/DML; other is SET, BEGIN, "
               "COMMIT, LOCK and the like.\n")
    head = ["tool"] + cols + ["sum s"] + (["other dbs s"] if any_else else []) + ["wall s (rep 1)"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|---|" + "---:|" * (len(head) - 1))
    wall1 = {n: rows[n]["wall"][0] for n in order}
    for name, s in server.items():
        cells = []
        for c in cols:
            v = s["cls"].get(c)
            cells.append(f"{v[0]:.2f}" if v else "–")
        total = sum(v[0] for v in s["cls"].values())
        line = f"| `{name}` | " + " | ".join(cells) + f" | **{total:.2f}** |"
        if any_else:
            line += f" {s['elsewhere']:.2f} |"
        line += f" {wall1.get(name, float('nan')):.2f} |"
        out.append(line)
    out.append("")
    out.append("Slowest statements (first repetition; the three with the most server time per backup and "
               "restore tool):\n")
    out.append("| tool | s | calls | class | statement |")
    out.append("|---|---:|---:|---|---|")
    for name, s in server.items():
        if rows.get(name, {}).get("group") not in ("backup", "restore"):
            continue
        for secs, calls, c, q in s["top"][:3]:
            out.append(f"| `{name}` | {secs:.2f} | {calls} | {c} | `{md(q, 100)}` |")
    out.append("")

    # Server I/O: pg_stat_io and pg_stat_wal over the same run.
    BACKENDS = {"client backend", "background worker", "autovacuum worker", "standalone backend"}
    out.append("Server I/O in the same run (pg_stat_io, pg_stat_wal; 8 KiB blocks): WAL written, and the "
               "backends' (client backends, parallel workers, autovacuum) reads, relation extensions and writes "
               "of shared buffers with the time they waited on them, and what the checkpointer and background "
               "writer wrote.\n")
    out.append("| tool | WAL MB | WAL full-page images | WAL write+sync s | backend read MB | backend extend MB "
               "| backend write MB | backend I/O wait s | checkpointer+bgwriter write MB | fsyncs |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for slug, group, name, db in snaps:
        io_path = os.path.join(E["B_STATS"], slug + ".io.tsv")
        wal_path = os.path.join(E["B_STATS"], slug + ".wal.tsv")
        if not (os.path.exists(io_path) and os.path.exists(wal_path)):
            continue
        rd = ext = wr = wait = ckw = fsyncs = 0.0
        for line in open(io_path):
            f = line.rstrip("\n").split("\t")
            if len(f) < 13:
                continue
            bt = f[0]
            v = [float(x or 0) for x in f[1:]]
            reads, read_t, writes, write_t, wbs, wb_t, extends, ext_t, fs, fs_t = v[:10]
            fsyncs += fs
            if bt in BACKENDS:
                rd += reads; ext += extends; wr += writes
                wait += (read_t + write_t + wb_t + ext_t + fs_t) / 1000
            elif bt in ("checkpointer", "background writer"):
                ckw += writes
        wal = open(wal_path).read().strip().split("\t")
        wal_bytes, wal_fpi = float(wal[2] or 0), int(float(wal[1] or 0))
        wal_t = (float(wal[6] or 0) + float(wal[7] or 0)) / 1000
        blk = 8192 / 1e6
        out.append(f"| `{name}` | {wal_bytes/1e6:.1f} | {wal_fpi} | {wal_t:.2f} | {rd*blk:.1f} | {ext*blk:.1f} | "
                   f"{wr*blk:.1f} | {wait:.2f} | {ckw*blk:.1f} | {int(fsyncs)} |")
    out.append("")

# --- --profile: perf and callgrind -------------------------------------------
DEMANGLER = shutil.which("swift-demangle")
DEMANGLE_CMD = [DEMANGLER] if DEMANGLER else ([shutil.which("swift"), "demangle"] if shutil.which("swift") else None)


def demangle(names):
    names = list(names)
    if not DEMANGLE_CMD or not names:
        return names
    try:
        r = subprocess.run(DEMANGLE_CMD + ["--simplified"], input="\n".join(names) + "\n",
                           capture_output=True, text=True, timeout=60)
        got = r.stdout.split("\n")
        if r.returncode == 0 and len(got) >= len(names):
            return got[: len(names)]
    except (OSError, subprocess.SubprocessError):
        pass
    return names


def perf_tables(label, title):
    p = os.path.join(E["B_PROF"], label)
    if not os.path.exists(p + ".json"):
        return [f"##### {title}\n", "No perf profile (perf record failed; see the run's output).\n"]
    import json
    d = json.load(open(p + ".json"))
    wall = open(p + ".wall").read().strip() if os.path.exists(p + ".wall") else "?"
    f, total, sp = d["freq"], d["total"] or 1, d["split"]

    def cpu(n):
        return f"{n / f:.2f}"

    res = [f"##### {title}\n"]
    kids = ", ".join(f"{c} {cpu(n)} s" for c, n in d["children"]) or "none"
    others = ", ".join(f"{md(c, 30)} {cpu(n)} s" for c, n in d["other"]) or "none"
    res.append(f"Wall {wall} s under perf; {d['total']} samples over all {NPROC} cores "
               f"(≈ {cpu(d['total'])} CPU s at {f} Hz, idle included). Whole machine, CPU s (% of samples): "
               f"pgvault process {cpu(sp['client'])} ({100 * sp['client'] / total:.0f}%), its child processes "
               f"{cpu(sp['client children'])} ({kids}), bench cluster {cpu(sp['server'])} "
               f"({100 * sp['server'] / total:.0f}%, {d['server_processes']} processes), idle {cpu(sp['idle'])} "
               f"({100 * sp['idle'] / total:.0f}%), other work on the machine {cpu(sp['other'])} "
               f"({100 * sp['other'] / total:.0f}%: {others}).\n")
    for key, side in (("client", "client (pgvault and its child processes)"),
                      ("server", "server (bench cluster processes)")):
        s = d[key]
        tot = s["samples"]
        if not tot:
            res.append(f"No samples for the {side}.\n")
            continue
        res.append(f"Per shared object, {side}: " + ", ".join(
            f"{md(o, 40)} {100 * n / tot:.1f}%" for o, n in s["dso"][:8]) + "\n")
        top = s["top"][:15]
        names = demangle(t[2] for t in top)
        res.append(f"| {side}: top 15 by self time | % of side | CPU s | shared object |")
        res.append("|---|---:|---:|---|")
        for (n, obj, _), nm in zip(top, names):
            res.append(f"| `{md(nm, 100)}` | {100 * n / tot:.1f} | {cpu(n)} | {md(obj, 30)} |")
        res.append("")
    return res


def callgrind_rows(path, n):
    """Top n (Ir, pct, function, object) from callgrind_annotate output."""
    res = []
    if not os.path.exists(path):
        return res
    started = False
    for line in open(path, errors="replace"):
        if "file:function" in line:
            started = True
            continue
        if not started:
            continue
        m = re.match(r"^\s*([\d,]+)\s+(?:\(\s*([\d.]+)%\)\s+)?(?:[<>*]\s+)?(.+?)\s*$", line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        fn = m.group(3)
        obj = ""
        om = re.search(r"\s\[([^\]]+)\]$", fn)
        if om:
            obj, fn = os.path.basename(om.group(1)), fn[: om.start()]
        fn = re.sub(r"^[^:]*:", "", fn, count=1) if ":" in fn else fn
        res.append((int(m.group(1).replace(",", "")), m.group(2) or "", fn, obj))
        if len(res) >= n:
            break
    return res


if E["B_PROFILE"] == "1":
    out.append("#### Profiles (`--profile`)\n")
    out.append(f"Taken after the timed runs, so they do not disturb them. `perf record -a -g -F {PERF_FREQ}` "
               "samples the whole machine while one command runs; every sample is then given to the pgvault "
               "process tree (its threads and the pg_dump it runs for the schema), the bench cluster (the "
               "postmaster and every process it forked), idle, or other work, using the task tree perf recorded "
               "(scripts/bench-perf.py), and each side's flat profile (self time by shared object and symbol, as "
               "`perf report --no-children --sort dso,symbol`) is listed. CPU s = samples / frequency. Swift "
               "symbols are demangled with `swift demangle --simplified`; code in objects without a symbol table "
               "(Debian's libzstd, libpq) is one row per object.\n")
    out += perf_tables("backup", "perf: `pgvault backup --jobs 2`")
    out += perf_tables("restore", "perf: `pgvault restore --jobs 2` (into a fresh database)")
    cg = os.path.join(E["B_PROF"], "callgrind")
    if os.path.exists(cg + ".wall"):
        table = E.get("B_CALLGRIND_TABLE", "?")
        rows_path = cg + ".rows"
        nrows = open(rows_path).read().strip() if os.path.exists(rows_path) else "?"
        total = None
        for line in open(cg + ".inclusive.txt", errors="replace"):
            m = re.match(r"^\s*([\d,]+)\s.*PROGRAM TOTALS", line)
            if m:
                total = int(m.group(1).replace(",", ""))
        out.append(f"##### callgrind: `pgvault backup --jobs 1 --table {table}`\n")
        out.append(f"{nrows} rows (all of messages if it has at most 150000 rows, else one monthly partition), so "
                   f"that the run stays short: {open(cg + '.wall').read().strip()} s under callgrind, "
                   f"{total:,} instructions (Ir) in the pgvault process (the pg_dump it runs is not traced). "
                   "Self = the function's own instructions. Inclusive = the function and all it calls; that list "
                   "leaves out thread, dispatch and Swift concurrency runtime frames and compiler thunks (`partial "
                   "apply`, `Result.init(catching:)`), which only wrap the work, repeats of one name, and functions "
                   "without a symbol (Debian's libzstd and libcrypto keep only their exported names: there, "
                   "`ZSTD_compressStream2` and `SHA256_Update` stand for them).\n"
                   if total is not None else "callgrind_annotate gave no totals.\n")
        WRAPPER_OBJECTS = ("libc.so", "libFoundation.so", "libdispatch.so", "libswift_Concurrency.so")
        WRAPPER_NAMES = re.compile(r"^(partial apply for |reabstraction thunk|@objc |merged |Result<.*>\.init\(catching:\))")
        for kind, title in (("self", "self Ir"), ("inclusive", "inclusive Ir, wrappers left out")):
            rows_ = callgrind_rows(f"{cg}.{kind}.txt", 400)
            suffix = [re.search(r"'\d+$", t[2]) for t in rows_]
            names = [nm + (sf.group(0) if sf else "") for nm, sf in
                     zip(demangle(re.sub(r"'\d+$", "", t[2]) for t in rows_), suffix)]
            top, seen = [], set()
            for (ir, pct, _, obj), nm in zip(rows_, names):
                address = re.fullmatch(r"0x[0-9a-fA-F]+", nm)
                if kind == "inclusive":
                    base = re.sub(r"'\d+$", "", nm)
                    if (not obj or address or obj.startswith(WRAPPER_OBJECTS) or WRAPPER_NAMES.match(base)
                            or base in seen or base in ("start_thread", "(below main)", "main")):
                        continue
                    seen.add(base)
                elif address:
                    nm = f"(function without a symbol at {nm})"
                top.append((ir, pct, nm, obj))
                if len(top) == 10:
                    break
            out.append(f"| top 10 by {title} | Ir | % | object |")
            out.append("|---|---:|---:|---|")
            for ir, pct, nm, obj in top:
                out.append(f"| `{md(nm, 100)}` | {ir:,} | {pct} | {md(obj, 30)} |")
            out.append("")
    else:
        out.append("No callgrind profile (the run failed; see the run's output).\n")

mins = (int(__import__("time").time()) - int(E["B_BENCH_START"])) / 60
out.append(f"_This section's run of scripts/bench.sh took {mins:.1f} min from start to report._\n")

section = "\n".join(out) + "\n"
open(E["B_OUT"], "w").write(section)
print("\n" + section)

# The doc's header, for a doc that does not exist yet.
head = """# Benchmarks

Produced by `scripts/bench.sh` (issue 8). Every number below was measured by that
script on the machine described in its section; nothing is estimated or copied
from elsewhere. Each scale section comes from its own run of the script (see its
date and repeat count). The machine is a shared 2-CPU VM, so expect run-to-run
noise of several percent or more; with a repeat count of 1 there is no spread
at all to judge it by.

What is compared: `pgvault backup --jobs 2 --output DIR` against
`pg_dump -Fd -j 2 --compress=zstd` and `pg_dump -Fc --compress=zstd`, plus a
ceiling of plain `COPY ... TO STDOUT` of every leaf table to /dev/null over two
psql connections (tables split into two halves by size); the same backups
and ceilings again with the server pinned to one core and the client to the
other (`taskset`; group "split", a stand-in for a backup host with a core of
its own); `pgvault restore
--jobs 2` (which verifies at the end; also timed with `--no-verify`) against
`pg_restore -j 2` from the `-Fd` dump, each into a fresh empty database and each
ending with all indexes and constraints built; `pgvault verify ARCHIVE -d
restored`; and `pgvault export-user` for the heaviest author and a median author.

Where the time goes: each section splits every command's CPU into client and
server with the machine's load, the server's execution time into statement
classes (pg_stat_statements) with its I/O and WAL (pg_stat_io, pg_stat_wal), and,
for sections run with `--profile`, perf profiles of a pgvault backup and restore
(client and server side) and a callgrind profile of the backup path.

Runs with `--cold` add backups and restores with the OS page cache dropped
and the server restarted before each; the other runs have a warm page cache.
Sections named `many-partitions-N` come from `--shape many-partitions
--partitions N` (the small scale's rows, messages in N daily partitions).
Not done yet: a client on a separate host with cores of its own (the "split"
group pins one core each on this 2-core machine).
"""
# This run's section replaces the doc's section for the same scale or shape
# (whatever its repeat count), or is appended; the rest of the doc, written by
# hand or by other scripts, is kept as it is. (This used to rebuild the doc
# from B_RESULTS, dropping every section that was not there.)
title = section.splitlines()[0]
prefix = title[: title.index("`", title.index("`") + 1) + 1] if title.count("`") >= 2 else title
text = open(E["B_DOC"]).read() if os.path.exists(E["B_DOC"]) else head
pattern = re.compile(r"^" + re.escape(prefix) + r"[^\n]*\n.*?(?=\n## |\Z)", re.S | re.M)
if pattern.search(text):
    text = pattern.sub(lambda _: section.rstrip("\n"), text, count=1)
else:
    text = text.rstrip("\n") + "\n\n" + section
open(E["B_DOC"], "w").write(text.rstrip("\n") + "\n")
print(f"wrote {E['B_DOC']}")
