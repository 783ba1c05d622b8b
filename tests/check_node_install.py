#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""Install the node package where nova 21 is; fail if anything else moves.

Run by ``tox -e node-install``, in an environment that holds nova 21.2.4
and the pinned set of its libraries and nothing of this project::

    python tests/check_node_install.py PROJECT_DIR

It records ``pip freeze``, runs ``pip install PROJECT_DIR`` exactly as the
README tells an operator to, records ``pip freeze`` again and exits 1 if
any package other than nova-xenapi-sr was added, removed or changed. It
also checks that the install brought no command of the tools distribution
(``nova-xenapi-sr``, ``mock-xapi``) and that the node's own commands are
there.
"""

import os
import shutil
import subprocess
import sys

OURS = 'nova-xenapi-sr'


def _name(line):
    for sep in ('==', ' @ '):
        if sep in line:
            return line.split(sep, 1)[0].strip().lower().replace('_', '-')
    return line.strip().lower()


def freeze():
    out = subprocess.check_output(
        [sys.executable, '-m', 'pip', 'freeze', '--all'],
        universal_newlines=True)
    return {_name(line): line.strip() for line in out.splitlines()
            if line.strip() and not line.startswith('#')}


def changes(before, after):
    """Lines naming each package, other than ours, that the install moved.

    ``before`` and ``after`` map package names to ``pip freeze`` lines.
    """
    changed = []
    for name in sorted(set(before) | set(after)):
        if name == OURS:
            continue
        if before.get(name) != after.get(name):
            changed.append('%s: %s -> %s' % (name, before.get(name, '-'),
                                             after.get(name, '-')))
    return changed


def main(argv):
    project = argv[1] if len(argv) > 1 else '.'
    before = freeze()
    if OURS in before:
        print('%s is installed already: run this in a fresh environment'
              % OURS)
        return 2
    subprocess.check_call([sys.executable, '-m', 'pip', 'install', '--quiet',
                           project])
    after = freeze()
    changed = changes(before, after)
    bindir = os.path.dirname(sys.executable)
    problems = []
    if OURS not in after:
        problems.append('%s was not installed' % OURS)
    for script in ('nova-xenapi-sr-status', 'nova-conductor-xenapi-sr'):
        if not shutil.which(script, path=bindir):
            problems.append('command %s is missing' % script)
    for script in ('nova-xenapi-sr', 'mock-xapi'):
        if shutil.which(script, path=bindir):
            problems.append('command %s of the tools was installed' % script)
    if changed:
        print('Installing %s changed %d package(s) of nova\'s environment:'
              % (OURS, len(changed)))
        for line in changed:
            print('  ' + line)
    for line in problems:
        print(line)
    if changed or problems:
        return 1
    print('%s installed; none of the %d other packages changed.'
          % (after[OURS], len(before)))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
