#!/usr/bin/python
# -*- coding: utf-8 -*-
# Runs pgstate on a PostgreSQL host: plan in check mode, apply otherwise, or apply a reviewed saved plan.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pgstate
short_description: Plan or apply a pgstate manifest on a PostgreSQL host
version_added: "0.1.0"
description:
  - Copies the host's pgstate manifest to the target and runs C(pgstate) there, where it can read
    C(pg_hba.conf), SELinux labels and unit files. With C(--check) it runs C(pgstate plan) and
    reports C(changed) when the plan has work; otherwise it runs C(pgstate plan) then applies exactly
    that plan (C(pgstate apply plan.json)), or applies a reviewed I(saved_plan).
  - pgstate's exit codes map to Ansible's results (0 ok, 2 changed, 1 failed with pgstate's own message).
  - The pgstate binary is copied only when its SHA-256 differs from the one at I(executable); without
    I(binary), the one installed at I(executable) (the pgstate package's C(/usr/bin/pgstate)) is used.
  - The manifest is staged under I(staging_dir) with a name derived from its content, so a saved
    plan names the same path in check mode and at apply time. After a successful apply it is installed
    at I(manifest_dest), where the backup schedules and the on-host drift timer read it.
  - Secrets reach pgstate as environment variables of the remote process only (I(secrets), never
    arguments, never files); the option is C(no_log). Do not pass secrets with the task keyword
    C(environment), which Ansible prints at C(-vvv).
  - This module has an action plugin, so I(manifest), I(binary), I(saved_plan) and I(fetch_plan) are
    paths on the controller.
author:
  - PgState developers
options:
  manifest:
    description:
      - The host's manifest on the controller (one C(PostgresHost) document). Relative paths are looked
        up like C(copy)'s C(src) (role C(files/), playbook directory).
    type: path
    required: true
  manifest_dest:
    description:
      - Where the manifest is installed on the target after a successful apply.
      - Default C($PGSTATE_CONFIG_DIR/NAME.yaml) (C(/etc/pgstate/NAME.yaml)), NAME being the manifest's
        C(metadata.name), the path the backup schedules use by default (C(spec.backupScheduling.manifestPath)).
    type: path
  staging_dir:
    description:
      - Where manifests and plans are staged on the target, content-addressed.
      - Default C($PGSTATE_STATE_DIR/ansible) (C(/var/lib/pgstate/ansible)). Use the same value for the
        check run that saves a plan and for the run that applies it.
    type: path
  executable:
    description:
      - The pgstate binary on the target. With I(binary), the controller's binary is copied here when
        its checksum differs.
    type: path
    default: /usr/bin/pgstate
  binary:
    description:
      - A pgstate binary on the controller (the Native AOT build) to install at I(executable) when the
        checksums differ. In check mode it is transferred and run from Ansible's temporary directory,
        not installed.
    type: path
  saved_plan:
    description:
      - A reviewed saved plan (C(plan.json), as I(fetch_plan) wrote it) on the controller, to apply
        instead of planning anew. pgstate refuses it, naming each resource, when the manifest or the
        host changed since it was made, or when it was made for another server.
      - Not allowed in check mode.
    type: path
  fetch_plan:
    description:
      - Write the host's saved plan to this path on the controller (for C(pgstate show) and a later
        apply with I(saved_plan)). Relative to the directory ansible-playbook runs in.
    type: path
  env:
    description:
      - Environment variables for pgstate that are not secret, e.g. C(PGSTATE_UNIT_DIR),
        C(PGSTATE_LOCK_DIR), C(PGSTATE_CONFIG_DIR), C(PGSTATE_STATE_DIR), C(NO_COLOR).
    type: dict
    default: {}
  secrets:
    description:
      - Environment variables holding the secrets the manifest names with C(fromEnv).
        Passed to the pgstate process only; never logged.
    type: dict
    default: {}
  allow_lockout:
    description:
      - Apply a C(pg_hba.conf) that would no longer admit pgstate's own connection or live sessions
        (C(pgstate apply --allow-lockout)).
    type: bool
    default: false
  lock_timeout:
    description:
      - Wait this long for another apply on the same server (C(pgstate apply --lock-timeout)), e.g. C(5min).
    type: str
  pg_host:
    description: Override C(spec.connection.host) (C(--pg-host)).
    type: str
  pg_port:
    description: Override C(spec.connection.port) (C(--pg-port)).
    type: int
  pg_user:
    description: Override C(spec.connection.user) (C(--pg-user)).
    type: str
  timeout:
    description: Seconds pgstate may run before it is stopped.
    type: int
    default: 1800
notes:
  - Supports C(check_mode) (plans) and C(diff_mode) (the text plan, and the manifest's change).
  - Runs pgstate as the become user; pgstate needs root (or the data directory's owner) on the host.
  - Use C(pipelining = True) so module arguments travel over SSH's stdin and never sit in a remote file.
requirements:
  - pgstate on the target (the package, or I(binary))
  - Python 3 on the target
"""

EXAMPLES = r"""
- name: Plan (with --check) or apply each host's manifest
  pgstate.pgstate.pgstate:
    manifest: "hosts/{{ inventory_hostname }}.yaml"
    secrets:
      PG_BACKUP_PASSWORD: "{{ vault_pg_backup_password }}"

- name: Pull request - plan every host and keep its saved plan for review
  pgstate.pgstate.pgstate:
    manifest: "hosts/{{ inventory_hostname }}.yaml"
    binary: artifacts/pgstate
    fetch_plan: "plans/{{ inventory_hostname }}.json"
  check_mode: true

- name: Merge - apply exactly the plans that were reviewed
  pgstate.pgstate.pgstate:
    manifest: "hosts/{{ inventory_hostname }}.yaml"
    saved_plan: "plans/{{ inventory_hostname }}.json"
    lock_timeout: 5min
    secrets:
      PG_BACKUP_PASSWORD: "{{ vault_pg_backup_password }}"
"""

RETURN = r"""
plan:
  description: The plan as pgstate's JSON (formatVersion 2), with per-host summary (add, change, destroy, needRestart, hasWork).
  returned: when pgstate planned
  type: dict
plan_changed:
  description: The plan had work (pgstate plan exit 2; a saved plan with work that was applied).
  returned: always
  type: bool
manifest_changed:
  description: The manifest installed at manifest_dest differs (or would, in check mode).
  returned: always
  type: bool
binary_changed:
  description: The pgstate binary at executable was replaced (or would be, in check mode).
  returned: always
  type: bool
manifest_path:
  description: Where the manifest is installed on the target.
  returned: always
  type: str
staged_manifest:
  description: The content-addressed path pgstate ran on; a saved plan names this path.
  returned: always
  type: str
plan_file:
  description: The controller path the saved plan was written to (fetch_plan).
  returned: when fetch_plan is set
  type: str
pgstate_rc:
  description: pgstate's exit code (0 done or no changes, 2 changes, 1 error).
  returned: when pgstate ran
  type: int
stdout:
  description: pgstate's standard output (the text plan; the apply report).
  returned: when pgstate ran
  type: str
stderr:
  description: pgstate's progress and errors.
  returned: when pgstate ran
  type: str
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

STAGE_KEEP_SECONDS = 14 * 24 * 3600
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z")


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_sha256(path, cache):
    """The file's SHA-256, from the cache when the file is the same inode, size and mtime as when it
    was hashed (replacing the file, as the module and packages do, makes a new inode)."""
    st = os.stat(path)
    key = [path, st.st_ino, st.st_size, st.st_mtime_ns]
    try:
        with open(cache) as f:
            entry = json.load(f)
        if entry.get("key") == key:
            return entry["sha256"]
    except (IOError, OSError, ValueError, KeyError, AttributeError):
        pass
    digest = sha256_file(path)
    try:
        write_atomic(cache, json.dumps(dict(key=key, sha256=digest)).encode("utf-8"), 0o600)
    except (IOError, OSError):
        pass  # a cache only
    return digest


def write_atomic(path, data, mode):
    """Writes bytes to a temporary file beside path, fsyncs it and renames it into place."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_or_none(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except (IOError, OSError):
        return None


def error_message(stderr, stdout):
    """pgstate's own error lines ("pgstate: error: ..."), else its last words."""
    lines = [l for l in stderr.splitlines() if l.strip()]
    errors = [l for l in lines if "error" in l.lower() or l.startswith("  - ")]
    if errors:
        return "\n".join(errors)
    tail = [l for l in stdout.splitlines() if l.strip()]
    failed = [l for l in tail if l.startswith(("Failed:", "  \u2717", "Apply failed", "Apply interrupted"))]
    return "\n".join(failed or lines[-3:] or tail[-3:] or ["pgstate failed without a message"])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            manifest=dict(type="path"),
            manifest_dest=dict(type="path"),
            staging_dir=dict(type="path"),
            executable=dict(type="path", default="/usr/bin/pgstate"),
            binary=dict(type="path"),
            saved_plan=dict(type="path"),
            fetch_plan=dict(type="path"),
            env=dict(type="dict", default={}),
            secrets=dict(type="dict", default={}, no_log=True),
            allow_lockout=dict(type="bool", default=False),
            lock_timeout=dict(type="str"),
            pg_host=dict(type="str"),
            pg_port=dict(type="int"),
            pg_user=dict(type="str"),
            timeout=dict(type="int", default=1800),
            # Filled in by the action plugin from the controller's files.
            _manifest_content=dict(type="str", required=True),
            _manifest_name=dict(type="str", required=True),
            _binary_checksum=dict(type="str"),
            _binary_src=dict(type="path"),
            _saved_plan_content=dict(type="str"),
            _return_plan=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    try:
        run(module)
    except (IOError, OSError) as e:
        # A path the module cannot write (no become, a read-only directory): say which, without a traceback.
        module.fail_json(msg="%s: %s (pgstate runs as root on the host: use become, or point staging_dir and manifest_dest elsewhere)"
                             % (getattr(e, "filename", None) or "a file", e.strerror or e))


def run(module):
    p = module.params
    name = p["_manifest_name"]
    if not NAME.match(name or ""):
        # The schema's pattern: checked here too, because the name becomes a file name before pgstate runs.
        module.fail_json(msg="metadata.name %r is not a host name pgstate accepts (%s)" % (name, NAME.pattern))
    user_env = dict((str(k), str(v)) for k, v in (p["env"] or {}).items())
    secret_env = dict((str(k), str(v)) for k, v in (p["secrets"] or {}).items())
    config_dir = user_env.get("PGSTATE_CONFIG_DIR") or "/etc/pgstate"
    state_dir = user_env.get("PGSTATE_STATE_DIR") or "/var/lib/pgstate"
    manifest_dest = p["manifest_dest"] or os.path.join(config_dir, name + ".yaml")
    staging_dir = p["staging_dir"] or os.path.join(state_dir, "ansible")
    content = p["_manifest_content"].encode("utf-8")
    content_sha = hashlib.sha256(content).hexdigest()
    staged = os.path.join(staging_dir, "%s.%s.yaml" % (name, content_sha[:16]))
    result = dict(changed=False, plan_changed=False, manifest_changed=False, binary_changed=False,
                  manifest_path=manifest_dest, staged_manifest=staged, executable=p["executable"])

    # The binary: the one installed, or the controller's when its checksum differs.
    executable = p["executable"]
    run_exe = executable
    want = p["_binary_checksum"]
    os.makedirs(staging_dir, 0o700, exist_ok=True)
    if want:
        have = cached_sha256(executable, os.path.join(staging_dir, ".binary-sha256.json")) if os.path.isfile(executable) else None
        if have != want:
            if not p["_binary_src"]:
                module.exit_json(changed=False, _pgstate_needs_binary=True)
            src = p["_binary_src"]
            if sha256_file(src) != want:
                module.fail_json(msg="the transferred pgstate binary %s does not have the checksum sha256:%s" % (src, want), **result)
            result["binary_changed"] = True
            if module.check_mode:
                os.chmod(src, 0o755)
                run_exe = src
            else:
                directory = os.path.dirname(executable)
                os.makedirs(directory, 0o755, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=".pgstate.", dir=directory)
                os.close(fd)
                try:
                    shutil.copyfile(src, tmp)
                    with open(tmp, "rb") as f:
                        os.fsync(f.fileno())
                    os.chmod(tmp, 0o755)
                    os.rename(tmp, executable)
                finally:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
                result["changed"] = True  # even if pgstate fails below, the binary was replaced
    elif not (os.path.isfile(executable) and os.access(executable, os.X_OK)):
        module.fail_json(msg="pgstate is not installed at %s: install the pgstate package there, or give binary (a pgstate on the controller) to copy it" % executable, **result)

    # The manifest, staged under a name its content decides: the path a saved plan names.
    if read_or_none(staged) != content:
        write_atomic(staged, content, 0o600)
    now = time.time()
    for entry in os.listdir(staging_dir):
        path = os.path.join(staging_dir, entry)
        if entry.startswith(name + ".") and path != staged and os.path.isfile(path) and now - os.path.getmtime(path) > STAGE_KEEP_SECONDS:
            os.unlink(path)
    installed = read_or_none(manifest_dest)
    result["manifest_changed"] = installed != content

    env = dict(os.environ)
    env.update(user_env)
    env.update(secret_env)
    env["NO_COLOR"] = "1"
    connection = []
    if p["pg_host"]:
        connection += ["--pg-host", p["pg_host"]]
    if p["pg_port"]:
        connection += ["--pg-port", str(p["pg_port"])]
    if p["pg_user"]:
        connection += ["--pg-user", p["pg_user"]]
    apply_options = (["--allow-lockout"] if p["allow_lockout"] else []) + (["--lock-timeout", p["lock_timeout"]] if p["lock_timeout"] else [])

    def fail(msg):
        # The plan is in the saved plan file; a failure shows the message and pgstate's output.
        result.pop("plan", None)
        module.fail_json(msg=msg, **result)

    def pgstate(args):
        cmd = [run_exe] + args
        try:
            proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=p["timeout"], cwd=staging_dir)
        except subprocess.TimeoutExpired:
            module.fail_json(msg="pgstate %s did not finish within %d s" % (args[0], p["timeout"]), **result)
        out = proc.stdout.decode("utf-8", "replace")
        err = proc.stderr.decode("utf-8", "replace")
        # Not "rc": Ansible fails any result whose rc is not 0, and 2 means "changes" here.
        result.update(pgstate_rc=proc.returncode, stdout=out, stderr=err, cmd=cmd)
        return proc.returncode, out, err

    diffs = []
    plan_file = os.path.join(staging_dir, "%s.%s.plan.%d.json" % (name, content_sha[:16], os.getpid()))
    try:
        if p["_saved_plan_content"] is not None:
            if module.check_mode:
                module.fail_json(msg="saved_plan is applied, not checked: run without --check (a check run makes a new plan)", **result)
            try:
                saved = json.loads(p["_saved_plan_content"])
                manifests = saved.get("manifests") or []
                plans = saved.get("plans") or []
            except (ValueError, AttributeError) as e:
                module.fail_json(msg="saved_plan is not a pgstate plan: %s" % e, **result)
            result["plan"] = saved
            named = [m for m in manifests if isinstance(m, dict)]
            if len(named) != 1 or named[0].get("sha256") != "sha256:" + content_sha:
                module.fail_json(msg="refusing to apply the saved plan: it was made from a manifest with %s, this task's manifest has sha256:%s; "
                                     "the manifest changed since the plan was reviewed: run the check again and review the new plan"
                                     % (", ".join(str(m.get("sha256")) for m in named) or "no manifest", content_sha), **result)
            if named[0].get("path") != staged:
                module.fail_json(msg="refusing to apply the saved plan: it names the manifest %s, this task stages it at %s; "
                                     "use the same staging_dir (and PGSTATE_STATE_DIR) for the check and the apply" % (named[0].get("path"), staged), **result)
            write_atomic(plan_file, p["_saved_plan_content"].encode("utf-8"), 0o600)
            rc, out, err = pgstate(["apply"] + apply_options + [plan_file])
            if rc != 0:
                fail(error_message(err, out))
            result["plan_changed"] = any(isinstance(x, dict) and (x.get("summary") or {}).get("hasWork") for x in plans)
            diffs.append(dict(prepared=out))
        else:
            rc, out, err = pgstate(["plan", "--format", "text", "--out", plan_file] + connection + [staged])
            if rc not in (0, 2):
                fail(error_message(err, out))
            with open(plan_file, "rb") as f:
                saved_text = f.read().decode("utf-8")
            result["plan"] = json.loads(saved_text)
            result["plan_changed"] = rc == 2
            if p["_return_plan"]:
                result["saved_plan"] = saved_text
            diffs.append(dict(prepared=out))
            plan_stdout = out
            if rc == 2 and not module.check_mode:
                rc, out, err = pgstate(["apply"] + apply_options + [plan_file])
                if rc != 0:
                    fail(error_message(err, out))
                result["stdout"] = plan_stdout + "\n" + out
    finally:
        if os.path.exists(plan_file):
            os.unlink(plan_file)

    if result["manifest_changed"]:
        diffs.append(dict(before_header=manifest_dest, after_header=manifest_dest,
                          before=(installed or b"").decode("utf-8", "replace"), after=p["_manifest_content"]))
        if not module.check_mode:
            directory = os.path.dirname(manifest_dest)
            os.makedirs(directory, 0o755, exist_ok=True)
            write_atomic(manifest_dest, content, 0o644)
    result["changed"] = result["plan_changed"] or result["manifest_changed"] or result["binary_changed"]
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
