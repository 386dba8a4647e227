#!/usr/bin/python
# -*- coding: utf-8 -*-
# The benchmark's baseline: a module that takes pgstate's arguments and does nothing, so that the
# playbook around it measures what Ansible itself costs per host (SSH, Python, the module's transfer).
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pgstate_noop
short_description: Does nothing (benchmark baseline)
description: Accepts the pgstate module's arguments and reports ok.
options: {}
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec=dict(
            manifest=dict(type="path"),
            executable=dict(type="path"),
            env=dict(type="dict", default={}),
            secrets=dict(type="dict", default={}, no_log=True),
            lock_timeout=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    module.exit_json(changed=False)


if __name__ == "__main__":
    main()
