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
and the pinned set of its libraries (``constraints.txt``)::

    python tests/check_node_install.py PROJECT_DIR [CONSTRAINTS_FILE]

tox reuses that environment from one run to the next, so the check keeps
it as tox built it:

1. The environment must be nova's set: every package in it is nova 21.2.4,
   setuptools, pip or one of their requirements, at the version the
   constraints file pins. A nova-xenapi-sr left by an interrupted run is
   uninstalled first; anything else off the set fails the check with exit
   status 2 (recreate the environment: ``tox -r -e node-install``).
2. pip builds the wheel of PROJECT_DIR (what ``pip install PROJECT_DIR``,
   as the README tells an operator, builds and installs), and
   ``pip install --dry-run --report`` of that wheel lists what pip would
   install with it. Anything but nova-xenapi-sr fails the check (exit
   status 1), and nothing has been installed.
3. The real install of the wheel; ``pip freeze`` before and after must
   differ in nova-xenapi-sr only, the node's commands must be there and
   no command of the tools distribution (``nova-xenapi-sr``,
   ``mock-xapi``).
4. nova-xenapi-sr is uninstalled again, whatever the outcome.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

OURS = 'nova-xenapi-sr'
#: What the environment has besides nova's requirements.
ROOTS = ('nova', 'setuptools', 'pip')
NODE_COMMANDS = ('nova-xenapi-sr-status', 'nova-conductor-xenapi-sr')
TOOLS_COMMANDS = ('nova-xenapi-sr', 'mock-xapi')


def canonical(name):
    """The PEP 503 form of a distribution name."""
    return re.sub(r'[-_.]+', '-', name).lower()


def _name(line):
    for sep in ('==', ' @ '):
        if sep in line:
            return canonical(line.split(sep, 1)[0].strip())
    return canonical(line.strip())


def _version(line):
    if '==' in line:
        return line.split('==', 1)[1].strip()
    return None


def _pip(*args, **kwargs):
    return subprocess.check_call([sys.executable, '-m', 'pip'] + list(args),
                                 **kwargs)


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


def planned_changes(report, before):
    """What a ``pip install --report`` would do to ``before``, but ours.

    ``report`` is pip's installation report (a dict), ``before`` maps
    package names to ``pip freeze`` lines.
    """
    changed = []
    for item in report.get('install', []):
        meta = item.get('metadata', {})
        name = canonical(meta.get('name', ''))
        if name == OURS:
            continue
        changed.append('%s: %s -> %s==%s' % (
            name, before.get(name, '-'), meta.get('name'),
            meta.get('version')))
    return sorted(changed)


def read_pins(path):
    """Map canonical names to the versions ``path`` pins with ``==``."""
    pins = {}
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if '==' in line and not line.startswith('-'):
                name, version = line.split('==', 1)
                pins[canonical(name.split('[', 1)[0])] = (
                    version.split(';', 1)[0].strip())
    return pins


def requirement_closure(roots):
    """What ``roots`` require, as installed here.

    Returns the canonical names of ``roots`` and of all the installed
    distributions they require, directly or not, and a list of
    ``(requirer, requirement)`` pairs whose requirement is not installed.
    """
    from importlib import metadata
    try:
        from packaging import requirements
    except ImportError:  # pragma: no cover - nova's set has packaging
        from pip._vendor.packaging import requirements
    dists = {}
    for dist in metadata.distributions():
        dists.setdefault(canonical(dist.metadata['Name']), dist)
    seen = set()
    missing = []
    todo = []
    for root in roots:
        if canonical(root) in dists:
            todo.append(canonical(root))
        else:
            missing.append(('the environment', root))
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in dists[name].requires or ():
            req = requirements.Requirement(line)
            if req.marker and not req.marker.evaluate({'extra': ''}):
                continue
            if canonical(req.name) in dists:
                todo.append(canonical(req.name))
            else:
                missing.append((name, str(req)))
    return seen, missing


def baseline_problems(before, pins, needed, missing=()):
    """Why ``before`` is not nova's pinned set; empty when it is.

    ``pins`` maps names to the versions the constraints pin, ``needed`` is
    the set of names nova, setuptools and pip require, ``missing`` the
    ``(requirer, requirement)`` pairs that are not installed.
    """
    problems = ['%s requires %s, which is not installed' % pair
                for pair in sorted(missing)]
    for name in sorted(before):
        if name == OURS:
            continue
        if name not in needed:
            problems.append('%s is not one of nova\'s libraries'
                            % before[name])
            continue
        version = _version(before[name])
        if name in pins and version != pins[name]:
            problems.append('%s is not the pinned %s'
                            % (before[name], pins[name]))
    return problems


def build_wheel(project, tmp):
    """Build ``project``'s wheel into ``tmp``; its path."""
    _pip('wheel', '--quiet', '--no-deps', '--wheel-dir', tmp, project)
    wheels = [name for name in os.listdir(tmp) if name.endswith('.whl')]
    if len(wheels) != 1:
        raise RuntimeError('expected one wheel in %s, found %s'
                           % (tmp, wheels))
    return os.path.join(tmp, wheels[0])


def dry_run(wheel, tmp):
    """pip's installation report for installing ``wheel`` here."""
    path = os.path.join(tmp, 'report.json')
    _pip('install', '--quiet', '--dry-run', '--report', path, wheel)
    with open(path) as f:
        return json.load(f)


def check_install(wheel, before):
    """Install ``wheel``; the problems found, each one line."""
    _pip('install', '--quiet', wheel)
    after = freeze()
    problems = ['changed %s' % line for line in changes(before, after)]
    bindir = os.path.dirname(sys.executable)
    if OURS not in after:
        problems.append('%s was not installed' % OURS)
    for script in NODE_COMMANDS:
        if not shutil.which(script, path=bindir):
            problems.append('command %s is missing' % script)
    for script in TOOLS_COMMANDS:
        if shutil.which(script, path=bindir):
            problems.append('command %s of the tools was installed' % script)
    if not problems:
        print('%s installed; none of the %d other packages changed.'
              % (os.path.basename(wheel), len(before)))
    return problems


def main(argv):
    project = argv[1] if len(argv) > 1 else '.'
    constraints = (argv[2] if len(argv) > 2 else
                   os.path.join(project, 'constraints.txt'))
    before = freeze()
    if OURS in before:
        print('Uninstalling %s, left by an earlier run' % before[OURS])
        _pip('uninstall', '--quiet', '--yes', OURS)
        before = freeze()
    needed, missing = requirement_closure(ROOTS)
    problems = baseline_problems(before, read_pins(constraints), needed,
                                 missing)
    if problems:
        print('This environment is not nova 21\'s pinned set (recreate it: '
              'tox -r -e node-install):')
        for line in problems:
            print('  ' + line)
        return 2
    tmp = tempfile.mkdtemp(prefix='node-install-')
    try:
        wheel = build_wheel(project, tmp)
        planned = planned_changes(dry_run(wheel, tmp), before)
        if planned:
            print('Installing %s would change %d package(s) of nova\'s '
                  'environment (nothing was installed):'
                  % (OURS, len(planned)))
            for line in planned:
                print('  ' + line)
            return 1
        try:
            problems = check_install(wheel, before)
        finally:
            _pip('uninstall', '--quiet', '--yes', OURS)
    finally:
        shutil.rmtree(tmp)
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
