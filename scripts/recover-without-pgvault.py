#!/usr/bin/env python3
"""Restore a backup of a pgvault format-2 repository without pgvault.

For a disaster-recovery host where pgvault itself cannot run (no Swift
toolchain, a broken build): this script needs only the Python standard
library and the commands `age`, `zstd` and `psql`. It follows
docs/repository-format.md and uses no code of pgvault's.

    scripts/recover-without-pgvault.py --repo /backups/chat \
        --identity /secure/chat-backups.key --backup latest \
        --dbname "host=/tmp dbname=chat_restored"

What it does, in order:
  1. reads `config`; gets the repository key from --key-file, or by
     decrypting `keys/secret.age` with the identity (`age -d`);
  2. checks config's MAC line with the key (a repository that is not the
     one the key belongs to is refused);
  3. decrypts the backup's manifest (`age -d`) and checks its MAC line, so a
     manifest planted by someone without the key is refused;
  4. decrypts each pack the backup uses into a private temporary folder
     (`age -d`), and for each member slices its chunks' zstd frames out of the
     packs, decompresses them (`zstd -d`), and checks each chunk against its
     id (HMAC-SHA-256 under the chunk-id key) and each member against its
     SHA-256;
  5. runs the pre-data script with psql, loads every unit with COPY (the
     manifest's session settings first), runs the post-data script, and sets
     the sequences.

The target database must exist and be empty. Nothing is written to it before
every pack the backup uses has been decrypted.
"""

import argparse
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import tempfile

MAC_PREFIX = b"pgvault-mac: "


def fail(message):
    print(f"recover-without-pgvault: error: {message}", file=sys.stderr)
    sys.exit(2)


def run(args, data=None, env=None):
    """Runs a command, feeding `data`, returning its standard output."""
    try:
        done = subprocess.run(args, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    except FileNotFoundError:
        fail(f"the command {args[0]!r} is not installed (apt-get install {args[0]})")
    if done.returncode != 0:
        fail(f"{' '.join(args[:2])} failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def hkdf_sha256(ikm, salt, info, length=32):
    """RFC 5869 HKDF with SHA-256."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


class Keys:
    """The repository key and the keys derived from it (docs: "Keys")."""

    def __init__(self, key_file_text, repository_id):
        key = json.loads(key_file_text)
        if key.get("format") != "pgvault-repository-key":
            fail("the key file is not a pgvault repository key")
        if key["repository"] != repository_id:
            fail(f"the key is for repository {key['repository']}, not {repository_id}")
        secret = bytes.fromhex(key["secret"])
        salt = repository_id.encode()

        def derive(purpose):
            return hkdf_sha256(secret, salt, f"pgvault-repository-v2 {purpose}".encode())

        self.chunk_id = derive("chunk id")
        self.mac = derive("object mac")

    def open_mac_trailed(self, data, object_key):
        """The body of a MAC-trailed document, once its MAC line checks out."""
        line_length = len(MAC_PREFIX) + 64 + 1
        tail = data[-line_length:]
        if len(data) < line_length or not tail.startswith(MAC_PREFIX):
            fail(f"{object_key} has no MAC line: refusing it (planted or damaged)")
        body = data[:-line_length]
        expected = hmac.new(self.mac, object_key.encode() + b"\0" + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, tail[len(MAC_PREFIX):-1].decode()):
            fail(f"{object_key} is not authenticated by the repository key: refusing it (planted or changed)")
        return body

    def check_chunk(self, raw, chunk, member):
        if len(raw) != chunk["rawLength"] or hmac.new(self.chunk_id, raw, hashlib.sha256).hexdigest() != chunk["id"]:
            fail(f"chunk {chunk['id'][:16]} of member {member} does not match its id: damaged or swapped")


def age_decrypt(path, identity):
    return run(["age", "--decrypt", "--identity", identity, path])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", required=True, help="the repository folder")
    parser.add_argument("--backup", default="latest", help="the backup's name, or latest")
    parser.add_argument("--identity", help="an age identity file (needed for an encrypted repository)")
    parser.add_argument("--key-file", help="the repository key file (else keys/secret.age is decrypted with the identity)")
    parser.add_argument("--dbname", required=True, help="the (empty) target database, as psql takes it")
    args = parser.parse_args()
    repo = args.repo

    # 1-2. config and key.
    try:
        with open(os.path.join(repo, "config"), "rb") as f:
            config_bytes = f.read()
    except OSError as error:
        fail(f"cannot read {repo}/config ({error.strerror}): is this a pgvault format-2 repository?")
    config = json.loads(config_bytes.split(b"\n" + MAC_PREFIX)[0])
    if config.get("format") != "pgvault-repository" or config.get("version") != 2:
        fail(f"{repo} is not a pgvault format-2 repository")
    encrypted = config["encrypted"]
    if encrypted and not args.identity:
        fail("the repository is encrypted: give --identity FILE")
    if args.key_file:
        with open(args.key_file, "rb") as f:
            key_text = f.read()
    elif encrypted:
        key_text = age_decrypt(os.path.join(repo, "keys", "secret.age"), args.identity)
    else:
        fail("an unencrypted repository keeps its key outside: give --key-file FILE")
    keys = Keys(key_text, config["id"])
    keys.open_mac_trailed(config_bytes, "config")

    # 3. the manifest.
    def read_manifest(name):
        object_key = f"snapshots/{name}/manifest"
        path = os.path.join(repo, object_key)
        data = age_decrypt(path, args.identity) if encrypted else open(path, "rb").read()
        return json.loads(keys.open_mac_trailed(data, object_key))

    names = sorted(n for n in os.listdir(os.path.join(repo, "snapshots"))
                   if os.path.exists(os.path.join(repo, "snapshots", n, "manifest")))
    if not names:
        fail(f"{repo} holds no complete backup")
    if args.backup == "latest":
        manifests = {n: read_manifest(n) for n in names}
        name = max(names, key=lambda n: manifests[n]["startedAt"])
        manifest = manifests[name]
    elif args.backup in names:
        name, manifest = args.backup, read_manifest(args.backup)
    else:
        fail(f"no backup {args.backup!r} in {repo}; there are: {', '.join(names)}")
    print(f"backup {name} of database {manifest['database']['name']} taken {manifest['startedAt']}")

    with tempfile.TemporaryDirectory(prefix="pgvault-recover-") as work:
        os.chmod(work, 0o700)
        # 4. every pack, decrypted, before the database is touched.
        packs = []
        for pack in manifest["packs"]:
            source = os.path.join(repo, "packs", pack["id"][:2], pack["id"])
            if not os.path.exists(source) or os.path.getsize(source) != pack["size"]:
                fail(f"pack {pack['id']} is missing or not {pack['size']} bytes")
            plain = os.path.join(work, pack["id"])
            if encrypted:
                run(["age", "--decrypt", "--identity", args.identity, "--output", plain, source])
            else:
                shutil.copyfile(source, plain)
            packs.append(plain)
        print(f"  {len(packs)} packs decrypted")

        def member_bytes(member, chunks, sha256):
            """A member's raw bytes: its frames in order, decompressed by one
            zstd (concatenated frames are one stream), cut at each chunk's
            raw length and checked."""
            frames = bytearray()
            for chunk in chunks:
                with open(packs[chunk["pack"]], "rb") as f:
                    f.seek(chunk["offset"])
                    frames += f.read(chunk["length"])
            raw = run(["zstd", "--decompress", "--stdout", "--quiet"], data=bytes(frames)) if chunks else b""
            at = 0
            for chunk in chunks:
                keys.check_chunk(raw[at:at + chunk["rawLength"]], chunk, member)
                at += chunk["rawLength"]
            if at != len(raw) or hashlib.sha256(raw).hexdigest() != sha256:
                fail(f"member {member} does not match its SHA-256")
            return raw

        def psql(sql_args, data=None):
            return run(["psql", "--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1", "--dbname", args.dbname] + sql_args, data=data)

        def quote(name):
            return '"' + name.replace('"', '""') + '"'

        # 5. schema, data, schema, sequences.
        schema = manifest.get("schema")
        if schema:
            pre = schema["preData"]
            psql(["--file", "-"], member_bytes(pre["member"], pre["chunks"], pre["sha256"]))
            print("  pre-data schema applied")
        settings = [f"SET {k} = '{v}'" for k, v in sorted(manifest["copySettings"].items())]
        rows = 0
        for unit in manifest["units"]:
            data = member_bytes(unit["member"], unit["chunks"], unit["sha256"])
            columns = ", ".join(quote(c) for c in unit["columns"])
            options = " WITH (FORMAT binary)" if unit.get("copyFormat") == "binary" else ""
            copy = f"COPY {quote(unit['schema'])}.{quote(unit['table'])} ({columns}) FROM STDIN{options}"
            commands = []
            for setting in settings + [f"SET client_encoding = '{manifest['database']['encoding']}'"]:
                commands += ["--command", setting]
            psql(commands + ["--command", copy], data)
            rows += unit["rows"]
        print(f"  {len(manifest['units'])} units loaded, {rows} rows")
        if schema:
            post = schema["postData"]
            psql(["--file", "-"], member_bytes(post["member"], post["chunks"], post["sha256"]))
            print("  post-data schema applied")
            stats = schema.get("statistics")
            if stats:
                # pg_dump 18's optimizer statistics: PostgreSQL 18 or later only.
                psql(["--file", "-"], member_bytes(stats["member"], stats["chunks"], stats["sha256"]))
                print("  optimizer statistics applied")
        for seq in manifest["sequences"]:
            called = "true" if seq["isCalled"] else "false"
            target = quote(seq["schema"]) + "." + quote(seq["name"])
            psql(["--command", f"SELECT pg_catalog.setval('{target.replace(chr(39), chr(39) * 2)}', {int(seq['lastValue'])}, {called})"])
        print(f"  {len(manifest['sequences'])} sequences set; done")


if __name__ == "__main__":
    main()
