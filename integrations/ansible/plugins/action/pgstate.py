# -*- coding: utf-8 -*-
# The controller's half of pgstate.pgstate.pgstate: reads the manifest, the binary and a saved plan on
# the controller, hands them to the module in one call (the binary only when the target's differs),
# and writes the host's saved plan back to the controller.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import tempfile

from ansible import constants as C
from ansible.errors import AnsibleError, AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text
from ansible.plugins.action import ActionBase

try:
    import yaml
except ImportError:  # pragma: no cover - ansible-core requires PyYAML on the controller
    yaml = None

MODULE = "pgstate.pgstate.pgstate"
MAX_MANIFEST_BYTES = 16 * 1024 * 1024


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_sha256(path):
    """SHA-256 of the controller's binary, kept beside Ansible's local temporary directories keyed by
    inode, size and mtime, so a fleet run hashes it once rather than once per host."""
    st = os.stat(path)
    key = [os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns]
    cache = os.path.join(os.path.dirname(C.DEFAULT_LOCAL_TMP), "pgstate-%s.sha256" % hashlib.sha1(to_bytes(json.dumps(key))).hexdigest())
    try:
        with open(cache) as f:
            return f.read().strip()
    except (IOError, OSError):
        pass
    digest = sha256_file(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(cache))
        with os.fdopen(fd, "w") as f:
            f.write(digest)
        os.rename(tmp, cache)
    except (IOError, OSError):
        pass  # a cache only
    return digest


def host_name(text, path):
    """metadata.name of the one PostgresHost document in the manifest."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if isinstance(d, dict) and d.get("kind") == "PostgresHost"]
    except yaml.YAMLError as e:
        raise AnsibleActionFail("%s is not valid YAML: %s (pgstate validate gives the position)" % (path, to_native(e)))
    if len(documents) != 1:
        raise AnsibleActionFail("%s holds %d PostgresHost documents; the pgstate module takes one manifest per host" % (path, len(documents)))
    name = (documents[0].get("metadata") or {}).get("name")
    if not isinstance(name, str) or not name:
        raise AnsibleActionFail("%s: metadata.name is missing" % path)
    return name


class ActionModule(ActionBase):
    # No temporary directory up front (it would cost two SSH round trips per host on every run):
    # one is made only when the binary must be transferred.
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        try:
            manifest = args.get("manifest")
            if not manifest:
                raise AnsibleActionFail("manifest is required: the host's pgstate manifest on the controller")
            try:
                manifest_path = self._find_needle("files", manifest)
            except AnsibleError as e:
                raise AnsibleActionFail(to_native(e))
            with open(manifest_path, "rb") as f:
                raw = f.read(MAX_MANIFEST_BYTES + 1)
            if len(raw) > MAX_MANIFEST_BYTES:
                raise AnsibleActionFail("%s is larger than %d MB" % (manifest_path, MAX_MANIFEST_BYTES // (1024 * 1024)))
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise AnsibleActionFail("%s is not UTF-8 text" % manifest_path)
            module_args = dict(args)
            module_args["_manifest_content"] = text
            module_args["_manifest_name"] = host_name(text, manifest_path)
            module_args["manifest"] = manifest_path

            binary = args.get("binary")
            if binary:
                try:
                    binary = self._find_needle("files", binary)
                except AnsibleError as e:
                    raise AnsibleActionFail(to_native(e))
                module_args["_binary_checksum"] = cached_sha256(binary)

            saved_plan = args.get("saved_plan")
            if saved_plan:
                if self._play_context.check_mode:
                    raise AnsibleActionFail("saved_plan is applied, not checked: run without --check (a check run makes a new plan)")
                try:
                    with open(to_bytes(saved_plan), "rb") as f:
                        module_args["_saved_plan_content"] = to_text(f.read())
                except (IOError, OSError) as e:
                    raise AnsibleActionFail("cannot read the saved plan %s: %s" % (saved_plan, to_native(e)))
            fetch_plan = args.get("fetch_plan")
            module_args["_return_plan"] = bool(fetch_plan)

            # One module run in the usual case; a second, after the transfer, when the binary differs.
            answer = self._execute_module(module_name=MODULE, module_args=module_args, task_vars=task_vars)
            if answer.get("_pgstate_needs_binary"):
                tmpdir = self._connection._shell.tmpdir or self._make_tmp_path()
                remote = self._connection._shell.join_path(tmpdir, "pgstate")
                self._transfer_file(binary, remote)
                self._fixup_perms2((tmpdir, remote))
                module_args["_binary_src"] = remote
                answer = self._execute_module(module_name=MODULE, module_args=module_args, task_vars=task_vars)
            answer.pop("_pgstate_needs_binary", None)

            saved_text = answer.pop("saved_plan", None)
            if fetch_plan and saved_text is not None:
                self._write_local(fetch_plan, saved_text)
                answer["plan_file"] = fetch_plan
            # The manifest and plan travelled as arguments: do not echo them back in the result.
            invocation = (answer.get("invocation") or {}).get("module_args")
            if isinstance(invocation, dict):
                for key in ("_manifest_content", "_saved_plan_content"):
                    if invocation.get(key) is not None:
                        invocation[key] = "(%d characters)" % len(invocation[key])
            result.update(answer)
        except AnsibleActionFail as e:
            result.update(failed=True, msg=to_native(e))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    @staticmethod
    def _write_local(path, text):
        """Writes the saved plan on the controller atomically (forks write their own host's file)."""
        path = os.path.abspath(to_bytes(path))
        directory = os.path.dirname(path)
        os.makedirs(directory, 0o755, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=b".pgstate-plan.", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(to_bytes(text))
            os.chmod(tmp, 0o644)
            os.rename(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        # Fail loudly here rather than at apply time if what was written is not JSON.
        json.loads(text)
