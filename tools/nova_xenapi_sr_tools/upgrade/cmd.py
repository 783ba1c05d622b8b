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

"""``nova-xenapi-sr verify-upgrade``: the cliff command."""

import json
import os
import sys
import time

from cliff import command

from nova_xenapi_sr_tools.upgrade import cases as cases_mod
from nova_xenapi_sr_tools.upgrade import report
from nova_xenapi_sr_tools.upgrade import runner as runner_mod

#: Exit status when the verification itself could not run.
EXIT_ERROR = 2


class VerifyUpgrade(command.Command):
    """Prove that a rolling upgrade never makes a live migration unsafe.

    Runs every combination of conductor, source and destination, each
    either stock nova 21 or nova with the nova-xenapi-sr extension, for
    every volume set (built in: uuid5-only, legacy-only and mixed SR
    names): 24 live migrations. Each nova node is its own Python process
    running nova's real XenAPI driver (or the extension's) against its own
    pool of a mock XAPI; the pools share one iSCSI array, and objects cross
    between nodes only as RPC primitives.

    Each case ends migrated, refused (pre-check failed, nothing changed),
    failed_clean (failed later, nothing copied or left behind, VM still
    on the source) or UNSAFE. Exit status 0 only if no case is UNSAFE and
    every all-extension case migrated; 1 otherwise; 2 if the verification
    could not run.

    --scenario FILE takes the mock XAPI's scenario format (JSON, or YAML
    with PyYAML): pools, volumes and instances. The first two pools are
    the source and the destination (or name them with top-level keys
    source_pool and destination_pool); every instance on the source pool
    is a volume set, named by its optional volume_set key;
    --print-scenario shows the built-in one. The mock XAPI
    listens on port 80 of loopback addresses, so it needs root (or
    CAP_NET_BIND_SERVICE).
    """

    def get_parser(self, prog_name):
        parser = super(VerifyUpgrade, self).get_parser(prog_name)
        parser.add_argument(
            '--format', choices=('table', 'json'), default='table',
            help='table: a matrix for people (default); json: a document '
                 'for machines')
        parser.add_argument(
            '--scenario', metavar='FILE',
            help='pools and volume sets to verify, in the mock XAPI '
                 'scenario format (default: the built-in uuid5, legacy and '
                 'mixed sets)')
        for role in cases_mod.ROLES:
            parser.add_argument(
                '--%s' % role, choices=cases_mod.FLAVOURS, action='append',
                help='only run cases whose %s is this flavour '
                     '(repeatable)' % role)
        parser.add_argument(
            '--volumes', metavar='SET', action='append',
            help='only run cases with this volume set (repeatable)')
        parser.add_argument(
            '--extension-driver', metavar='DOTTED.PATH',
            help='compute driver the extension nodes load instead of the '
                 'installed XenAPISRDriver: a nova.virt-relative name or a '
                 'full dotted path (for testing the verification itself)')
        parser.add_argument(
            '--log-dir', metavar='DIR',
            help='keep every node\'s log in DIR')
        parser.add_argument(
            '--case-timeout', type=float, default=runner_mod.CASE_TIMEOUT,
            metavar='SECONDS', help='time limit of each call to a node '
                                    'within a case, such as the migration '
                                    'itself (default %(default)s)')
        parser.add_argument(
            '--print-scenario', action='store_true',
            help='print the scenario that would be verified (the built-in '
                 'one unless --scenario is given) as JSON, a starting point '
                 'for a file of your own, and exit')
        parser.add_argument(
            '--debug-output', action='store_true',
            help='json: add each case\'s flow trace and raw error')
        return parser

    def _streams(self):
        app = getattr(self, 'app', None)
        stdout = getattr(app, 'stdout', None) or sys.stdout
        stderr = getattr(app, 'stderr', None) or sys.stderr
        return stdout, stderr

    def take_action(self, parsed_args):
        stdout, stderr = self._streams()
        try:
            scenario = (cases_mod.load_scenario(parsed_args.scenario)
                        if parsed_args.scenario else None)
            sets = cases_mod.volume_sets(scenario)
        except (OSError, ValueError) as exc:
            stderr.write('verify-upgrade: cannot use the scenario: %s\n'
                         % exc)
            return EXIT_ERROR
        if parsed_args.print_scenario:
            stdout.write(json.dumps(scenario or cases_mod.default_scenario(),
                                    indent=2, sort_keys=True) + '\n')
            return 0
        names = [vset.name for vset in sets]
        unknown = set(parsed_args.volumes or ()) - set(names)
        if unknown:
            stderr.write('verify-upgrade: no volume set %s (have: %s)\n' % (
                ', '.join(sorted(unknown)), ', '.join(names)))
            return EXIT_ERROR
        all_cases = cases_mod.matrix(sets)
        selected = cases_mod.select(
            all_cases, conductor=parsed_args.conductor,
            source=parsed_args.source, destination=parsed_args.destination,
            volumes=parsed_args.volumes)
        if not selected:
            stderr.write('verify-upgrade: no case matches the filters\n')
            return EXIT_ERROR
        if parsed_args.log_dir:
            os.makedirs(parsed_args.log_dir, exist_ok=True)
        show_progress = hasattr(stderr, 'isatty') and stderr.isatty()

        def progress(index, total, result):
            if show_progress:
                stderr.write(report.progress_line(index, total, result) +
                             '\n')
                stderr.flush()

        started = time.monotonic()
        try:
            with runner_mod.Runner(
                    scenario=scenario,
                    extension_driver=parsed_args.extension_driver,
                    log_dir=parsed_args.log_dir,
                    case_timeout=parsed_args.case_timeout,
                    cases=selected) as runner:
                if show_progress:
                    stderr.write('verify-upgrade: %d node processes ready '
                                 'after %.1fs; running %d cases\n' % (
                                     len(runner.nodes),
                                     time.monotonic() - started,
                                     len(selected)))
                results = runner.run(selected, progress=progress)
                driver = _extension_driver(results)
        except Exception as exc:
            stderr.write('verify-upgrade: the verification could not run: '
                         '%s\n' % exc)
            return EXIT_ERROR
        summary = report.summarize(
            results, time.monotonic() - started,
            complete=len(selected) == len(all_cases),
            extension_driver=driver)
        if parsed_args.format == 'json':
            stdout.write(report.render_json(results, summary,
                                            debug=parsed_args.debug_output))
        else:
            stdout.write(report.render_table(results, summary))
        stdout.flush()
        return summary['exit_status']


def _extension_driver(results):
    """The driver path the extension computes really loaded, if any."""
    for result in results:
        for role in ('source', 'destination'):
            if result[role] == 'extension':
                info = (result.get('drivers') or {}).get(role)
                if info:
                    return info.get('driver_path')
    return None
