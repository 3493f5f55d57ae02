#!/usr/bin/env python3
"""Compares a `docker run` and a `bv run` of the same image digest running the same probe.

usage: runcmp.py CONFIG DOCKER_OUT DOCKER_STATUS BV_OUT BV_STATUS
       runcmp.py CONFIG - - BV_OUT BV_STATUS     (no docker run: images docker cannot pull)

CONFIG is the image config JSON (from `skopeo inspect --config`, not from bv).  The *_OUT
files are the stdout of `docker run --rm IMAGE sh -c PROBE` and `bv run sh -c PROBE`
(PROBE is CONF_PROBE in lib.bash: sections "== env", "== id", "== pwd", "== passwd",
"== mounts", "== devio", "== end").  The caller of bv is this process's uid and gid.

The exit statuses must be equal, and so must everything printed before the first section
(what the image's Entrypoint prints: Docker's rule, Entrypoint + arguments, is what bv must
follow too).  Within the sections, bv differs from Docker by design in the ways below; each
rule is CHECKED against what bv must print, never just skipped:

  E1 HOME: bv sets HOME=/tmp unless the image's Env sets HOME (then that one); Docker takes
     it from the image user's /etc/passwd entry.  Checked: bv's HOME.
  E2 HOSTNAME: Docker sets HOSTNAME to the container id (checked: 12 hex digits); bv sets
     none (checked: absent unless the image's Env has one, then equal to it).
  E3 PWD (set by the shell to the working directory): bv's must be /workspace (rule W1).
  I1 bv runs the tool as the caller (uid and gid of whoever runs bv), whatever the image's
     User says; Docker runs as User.  Checked: bv's `id` starts "uid=<caller>(" and has
     "gid=<caller gid>(", Docker's matches User (name through the image's /etc/passwd,
     uid, or uid:gid).  When the image's User is the caller, the uid and gid parts must be
     equal.
  G1 bv adds a line for the caller's gid to /etc/group when the image has none, so `id`
     names bv's gid where Docker's shows the bare number.  Checked: the name is the
     caller's group name on the host (or, without one, what bv uses for the passwd line).
  I2 supplementary groups: an unprivileged user namespace cannot call setgroups, so bv's
     process keeps the caller's groups, shown as the overflow group, or none.  Checked: bv's
     `id` shows no group other than the caller's gid and 65534.
  W1 bv's working directory is the project, /workspace (or the subdirectory the caller is in);
     Docker's is WorkingDir, or /.  Checked: bv prints /workspace, Docker WorkingDir or /.
  P1 /etc/passwd: bv adds a line for the caller when the image has none for the caller's uid
     ("name:x:uid:gid:name:/tmp:/bin/sh"); otherwise the file is the image's.  Checked: bv's
     file is Docker's, or Docker's plus exactly that line.
  M1 every run has /proc, /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom,
     /dev/shm, /sys and /tmp, whether or not the image has those directories; /dev/tty is a
     character device (the tests run without a terminal, so it is not opened here; a
     separate test opens it under a pseudo-terminal).  Checked on bv's run even where
     Docker's differs, and both must agree, except for M2.
  M2 /tmp: bv always mounts a private, writable /tmp; Docker has /tmp only when the image
     does.  Checked: bv's /tmp is present and writable; where Docker has none, the /tmp
     lines are left out of the comparison.

Without a docker run (DOCKER_OUT "-"), only bv's side of each rule is checked: the status is
0, E1, E2, E3, I1, I2, W1 and M1, and P1 against the image's own /etc/passwd as bv shows it.

Any failed check or difference prints what and where, and the exit status is 1.
"""
import json
import os
import re
import sys


def sections(text):
    pre, secs, cur = [], {}, None
    for line in text.splitlines():
        m = re.fullmatch(r"== (\w+)", line)
        if m:
            cur = m.group(1)
            secs[cur] = []
        elif cur is None:
            pre.append(line)
        else:
            secs[cur].append(line)
    return pre, secs


def env_map(lines):
    env = {}
    for line in lines:
        k, sep, v = line.partition("=")
        if sep:
            env[k] = v
    return env


def parse_id(line):
    out = {}
    for part in line.split():
        k, _, v = part.partition("=")
        out[k] = v
    return out


def num(field):
    return field.split("(")[0] if field else None


def main():
    cfg_path, d_out, d_status, b_out, b_status = sys.argv[1:6]
    with open(cfg_path) as fh:
        cfg = json.load(fh).get("config") or {}
    with open(b_out) as fh:
        b_pre, B = sections(fh.read())
    no_docker = d_out == "-"
    if no_docker:
        # docker's side stands in as what bv's must be by the rules; the image-derived
        # checks (I1 against User, W1 against WorkingDir) are then bv's alone
        d_pre, D, d_status = b_pre, {k: list(v) for k, v in B.items()}, "0"
        D.setdefault("env", [])
        D["env"] = [e for e in D["env"] if not e.startswith(("HOME=", "PWD="))] + [
            "HOSTNAME=000000000000"]
        D["pwd"] = [cfg.get("WorkingDir") or "/"]
        D["id"] = None
    else:
        with open(d_out) as fh:
            d_pre, D = sections(fh.read())
    errors = []

    def err(msg):
        errors.append(msg)

    if d_status != b_status:
        err(f"exit status: docker {d_status} != bv {b_status}")
    if d_pre != b_pre:
        err(f"output before the probe (Entrypoint): docker {d_pre!r} != bv {b_pre!r}")
    if "end" not in D or "end" not in B:
        # the image's Entrypoint does not run the probe (shell-form ENTRYPOINT): the whole
        # output was compared above
        if ("end" in D) != ("end" in B):
            err("the probe ran on one side only")
        report(errors)
        return

    image_env = env_map(cfg.get("Env") or [])
    de, be = env_map(D["env"]), env_map(B["env"])
    uid, gid = os.getuid(), os.getgid()
    # E1
    want_home = image_env.get("HOME", "/tmp")
    if be.get("HOME") != want_home:
        err(f"E1: bv HOME={be.get('HOME')!r}, expected {want_home!r}")
    # E2
    if not re.fullmatch(r"[0-9a-f]{12}", de.get("HOSTNAME", "")) and "HOSTNAME" not in image_env:
        err(f"E2: docker HOSTNAME={de.get('HOSTNAME')!r} is not a container id")
    if be.get("HOSTNAME") != image_env.get("HOSTNAME"):
        err(f"E2: bv HOSTNAME={be.get('HOSTNAME')!r}, expected {image_env.get('HOSTNAME')!r}")
    # E3
    if be.get("PWD") != "/workspace":
        err(f"E3: bv PWD={be.get('PWD')!r}, expected '/workspace'")
    for k, v in image_env.items():
        if be.get(k) != v:
            err(f"env {k}: the image's Env says {v!r}, bv has {be.get(k)!r}")
    for k in sorted(set(de) | set(be)):
        if k in ("HOME", "HOSTNAME", "PWD"):
            continue
        if de.get(k) != be.get(k):
            err(f"env {k}: docker {de.get(k)!r} != bv {be.get(k)!r}")

    # I1, I2
    did = parse_id(D["id"][0] if D["id"] else "")
    if no_docker:
        D["id"] = B["id"]
    bid = parse_id(B["id"][0] if B["id"] else "")
    if num(bid.get("uid")) != str(uid) or num(bid.get("gid")) != str(gid):
        err(f"I1: bv id {B['id']!r}: expected uid={uid} gid={gid} (the caller)")
    user = cfg.get("User") or ""
    passwd = {}
    for line in D.get("passwd", []):
        f = line.split(":")
        if len(f) >= 4:
            passwd.setdefault(f[0], (f[2], f[3]))
    u, _, g = user.partition(":")
    if u == "":
        want_uid, want_gid = "0", "0"
    elif u.isdigit():
        want_uid = u
        want_gid = next((pg for pu, pg in passwd.values() if pu == u), "0")
    else:
        want_uid, want_gid = passwd.get(u, (None, None))
    if g:
        want_gid = g
    if not no_docker and (num(did.get("uid")) != want_uid or num(did.get("gid")) != want_gid):
        err(f"I1: docker id {D['id']!r}: expected uid={want_uid} gid={want_gid} (User={user!r})")
    if not no_docker and want_uid == str(uid) and want_gid == str(gid):
        for k in ("uid", "gid"):
            if did.get(k) == bid.get(k):
                continue
            if k == "gid" and "(" not in did.get(k, "") and num(did.get(k)) == num(bid.get(k)):
                name = bid.get(k).partition("(")[2].rstrip(")")
                try:
                    import grp
                    host = grp.getgrgid(gid).gr_name
                except (KeyError, ImportError):
                    host = None
                if name and name == host:
                    continue  # G1
                err(f"G1: bv names gid {gid} {name!r}, the host calls it {host!r}")
                continue
            err(f"I1: id {k}: docker {did.get(k)!r} != bv {bid.get(k)!r}")
    for grp in (bid.get("groups") or "").split(","):
        if grp and num(grp) not in (str(gid), "65534"):
            err(f"I2: bv has supplementary group {grp!r}")

    # W1
    if B["pwd"] != ["/workspace"]:
        err(f"W1: bv pwd {B['pwd']!r}, expected ['/workspace']")
    want_wd = cfg.get("WorkingDir") or "/"
    if D["pwd"] != [want_wd]:
        err(f"W1: docker pwd {D['pwd']!r}, expected [{want_wd!r}]")

    # P1
    dp, bp = D.get("passwd", []), B.get("passwd", [])
    if bp != dp:
        extra = bp[len(dp):]
        uids = {line.split(":")[2] for line in dp if line.count(":") >= 3}
        ok = (bp[:len(dp)] == dp and len(extra) == 1 and str(uid) not in uids and
              re.fullmatch(rf"[^:]+:x:{uid}:{gid}:[^:]*:/tmp:/bin/sh", extra[0]))
        if not ok:
            err(f"P1: /etc/passwd: docker {dp!r} != bv {bp!r}")

    # M1, M2
    for line in B.get("mounts", []):
        if "MISSING" in line:
            err(f"M1: bv run: {line}")
    if "tmp-writable" not in B.get("devio", []):
        err("M2: bv's /tmp is not writable")
    dm, bm = list(D.get("mounts", [])), list(B.get("mounts", []))
    dd, bd = list(D.get("devio", [])), list(B.get("devio", []))
    if "/tmp MISSING" in dm:
        dm = [x for x in dm if x != "/tmp MISSING"]
        bm = [x for x in bm if not x.startswith("/tmp ")]
        bd = [x for x in bd if x != "tmp-writable"]
    if dm != bm:
        err(f"M1: docker {dm!r} != bv {bm!r}")
    if dd != bd:
        err(f"devio: docker {dd!r} != bv {bd!r}")
    report(errors)


def report(errors):
    for e in errors:
        print(e)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
