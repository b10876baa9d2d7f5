"""Runs one qvm-* tool of qubesadmin against the simulated qubesd.

usage: tool.py TOOL [ARG...]   (TOOL as installed, e.g. qvm-ls, qubes-prefs)
"""

import importlib
import os
import sys

import qubes_local


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    name = os.path.basename(sys.argv[1])
    qubes_local.apply()
    module = importlib.import_module(
        'qubesadmin.tools.' + name.replace('-', '_'))
    # The tools print their own name (usage, version) from argv[0].
    sys.argv = [name] + sys.argv[2:]
    result = module.main()
    return result if isinstance(result, int) else 0


if __name__ == '__main__':
    sys.exit(main())
