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
from stevedore import extension

from nova_xenapi_sr_tools.upgrade import cases as cases_mod
from nova_xenapi_sr_tools.upgrade import report
from nova_xenapi_sr_tools.upgrade import rolling
from nova_xenapi_sr_tools.upgrade import services

#: Exit status when the verification itself could not run.
EXIT_ERROR = 2

#: Columns of the case list (``-f``).
LIST_COLUMNS = ('layout', 'conductor', 'source', 'destination', 'volumes',
                'outcome', 'signature', 'wall_time', 'detail')


class VerifyUpgrade(command.Command):
    """Prove that a rolling upgrade never makes a live migration unsafe.

    Runs every combination of conductor, source and destination, each
    either stock nova 21 or nova with the nova-xenapi-sr extension, for
    every volume set (built in: uuid5-only, legacy-only and mixed SR
    names), in two layouts: between two pools (block migration) and
    between two hosts of one pool (VM.pool_migrate): 48 live migrations,
    started through nova's compute API, one deployment per layout. Every
    node is a real nova 21.2.4 service process (nova-api, placement,
    nova-scheduler, the conductor, one nova-compute per XenAPI host) over a
    private RabbitMQ and MariaDB (started with pifpaf; as root on Debian,
    their packages are installed when missing). The deployment moves
    through the eight states restarting one node at a time, as an operator
    upgrades. Faked: Cinder, Neutron, Glance, Keystone (noauth2) and the
    hypervisor (a mock XAPI whose pools share one iSCSI array).

    Each case ends migrated, refused (pre-check failed, nothing changed),
    failed_clean (failed later, nothing copied or left behind, VM still
    on the source) or UNSAFE. Exit status 0 only if the upgrade makes no
    case UNSAFE (stock nova on both computes, UNSAFE as in the all-stock
    case, is how nova 21 behaves on its own: reported, not counted) and
    every all-extension case migrated, or, inside one pool, where XAPI
    cannot move nova's unshared SRs, was refused by the extension with
    what to do; 1 otherwise; 2 if the verification could not run.

    --scenario FILE takes the mock XAPI's scenario format (JSON, or YAML
    with PyYAML): pools, volumes and instances. The first two pools are
    the source and the destination (or name them with top-level keys
    source_pool and destination_pool); every instance on the source pool
    is a volume set, named by its optional volume_set key;
    --print-scenario shows a built-in one (--layout picks which). The mock
    XAPI listens on port 80 of loopback addresses, so it needs root (or
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
                 'scenario format, instead of the built-in layouts')
        parser.add_argument(
            '--layout', choices=list(cases_mod.LAYOUTS), action='append',
            help='only this built-in layout (repeatable; default all: %s)'
                 % ', '.join(cases_mod.LAYOUTS))
        for role in cases_mod.ROLES:
            parser.add_argument(
                '--%s' % role, choices=cases_mod.FLAVOURS, action='append',
                help='only run cases whose %s is this flavour '
                     '(repeatable)' % role)
        parser.add_argument(
            '--volumes', metavar='SET', action='append',
            help='only run cases with this volume set (repeatable)')
        parser.add_argument(
            '--extension-driver', metavar='DOTTED.PATH', action='append',
            help='compute driver the extension nodes load instead of the '
                 'installed XenAPISRDriver: a nova.virt-relative name or a '
                 'full dotted path (for testing the verification itself); '
                 'repeatable: the cases run once per driver, the upgraded '
                 'computes restarted with each in turn')
        parser.add_argument(
            '--keep-logs', action='store_true',
            help='keep the run\'s directory (every service\'s log, '
                 'configuration and data) instead of removing it')
        parser.add_argument(
            '--print-scenario', action='store_true',
            help='print the scenario that would be verified (the first '
                 'chosen layout unless --scenario is given) as JSON, a '
                 'starting point for a file of your own, and exit')
        parser.add_argument(
            '--debug-output', action='store_true',
            help='json: add what nova recorded for each case (its events, '
                 'migration and instance states) and the error chain')
        group = parser.add_argument_group(
            'case list', 'one row per case through a cliff formatter, '
            'instead of the matrix')
        self._list_formatters = extension.ExtensionManager(
            'cliff.formatter.list', invoke_on_load=True)
        group.add_argument(
            '-f', dest='list_formatter', metavar='FORMATTER',
            choices=sorted(self._list_formatters.names()),
            help='print the case list in this format (%s)' % ', '.join(
                sorted(self._list_formatters.names())))
        group.add_argument(
            '-c', '--column', action='append', dest='columns', default=[],
            metavar='COLUMN', choices=LIST_COLUMNS,
            help='show this column of the case list (repeatable; default '
                 'all: %s); without -f the list is a table'
                 % ', '.join(LIST_COLUMNS))
        for formatter in self._list_formatters:
            formatter.obj.add_argument_group(parser)
        return parser

    def _streams(self):
        app = getattr(self, 'app', None)
        stdout = getattr(app, 'stdout', None) or sys.stdout
        stderr = getattr(app, 'stderr', None) or sys.stderr
        return stdout, stderr

    def _scenarios(self, parsed_args):
        """``[(layout, scenario, volume sets)]`` this run verifies."""
        if parsed_args.scenario:
            if parsed_args.layout:
                raise ValueError('--layout chooses among the built-in '
                                 'layouts; --scenario replaces them')
            scenario = cases_mod.load_scenario(parsed_args.scenario)
            return [(cases_mod.layout_of(scenario), scenario,
                     cases_mod.volume_sets(scenario))]
        chosen = []
        for name, build in cases_mod.LAYOUTS.items():
            if name in (parsed_args.layout or cases_mod.LAYOUTS):
                scenario = build()
                chosen.append((name, scenario,
                               cases_mod.volume_sets(scenario)))
        return chosen

    def take_action(self, parsed_args):
        stdout, stderr = self._streams()
        try:
            layouts = self._scenarios(parsed_args)
        except (OSError, ValueError) as exc:
            stderr.write('verify-upgrade: cannot use the scenario: %s\n'
                         % exc)
            return EXIT_ERROR
        if parsed_args.print_scenario:
            stdout.write(json.dumps(layouts[0][1], indent=2,
                                    sort_keys=True) + '\n')
            return 0
        names = [vset.name for _, _, sets in layouts for vset in sets]
        unknown = set(parsed_args.volumes or ()) - set(names)
        if unknown:
            stderr.write('verify-upgrade: no volume set %s (have: %s)\n' % (
                ', '.join(sorted(unknown)), ', '.join(names)))
            return EXIT_ERROR
        runs = []
        total = 0
        for layout, scenario, sets in layouts:
            all_cases = cases_mod.matrix(sets)
            total += len(all_cases)
            selected = cases_mod.select(
                all_cases, conductor=parsed_args.conductor,
                source=parsed_args.source,
                destination=parsed_args.destination,
                volumes=parsed_args.volumes)
            if selected:
                # the verdict reads the layout (verdict.extension_case_ok)
                runs.append((layout, scenario,
                             [dict(case, layout=layout)
                              for case in selected]))
        count = sum(len(selected) for _, _, selected in runs)
        if not count:
            stderr.write('verify-upgrade: no case matches the filters\n')
            return EXIT_ERROR

        started = time.monotonic()

        def say(line):
            stderr.write('verify-upgrade: [%5.1fs] %s\n'
                         % (time.monotonic() - started, line))
            stderr.flush()

        done = []

        def progress(index, total, result):
            done.append(result)
            say(report.progress_line(len(done), count, result))

        described = []
        results = []
        timings = {}
        kept = []
        try:
            with services.exit_on_signals():
                for layout, scenario, selected in runs:
                    say('layout %s: %d cases' % (layout, len(selected)))
                    runner = rolling.RollingRunner(
                        scenario=scenario, cases=selected,
                        extension_drivers=parsed_args.extension_driver,
                        keep_logs=parsed_args.keep_logs, say=say,
                        # a driver named by dotted path may live here
                        extra_python_path=[os.getcwd()]
                        if parsed_args.extension_driver else ())
                    with runner:
                        services_up = runner.deployment.describe()
                        say('%d services up; running %d cases' % (
                            len(services_up), len(selected)))
                        results.extend(runner.run(progress=progress))
                    for row in services_up:
                        row = dict(row, layout=layout)
                        described.append(row)
                    for key, value in runner.deployment.timings.items():
                        timings[key] = timings.get(key, 0.0) + value
                    if parsed_args.keep_logs:
                        kept.append(runner.deployment.workspace.path)
        except services.Interrupted as exc:
            stderr.write('verify-upgrade: interrupted (signal %d); every '
                         'service was stopped\n' % exc.signum)
            return 128 + exc.signum
        except Exception as exc:
            stderr.write('verify-upgrade: the verification could not run: '
                         '%s\n' % exc)
            return EXIT_ERROR
        driver = ', '.join(parsed_args.extension_driver or
                           [rolling.deployment.DRIVERS['extension']])
        summary = report.summarize(
            results, time.monotonic() - started, complete=count == total,
            extension_driver=driver)
        summary['services'] = described
        summary['timings'] = dict((key, round(value, 1))
                                  for key, value in timings.items())
        if kept and described:
            summary['kept'] = ', '.join(kept)
        if parsed_args.list_formatter or parsed_args.columns:
            # -c alone asks for the case list too, as a table (cliff's
            # Lister default); the matrix is the view without -f and -c.
            columns = parsed_args.columns or list(LIST_COLUMNS)
            rows = [[result.get(column) for column in columns]
                    for result in results]
            formatter = parsed_args.list_formatter or 'table'
            self._list_formatters[formatter].obj.emit_list(
                columns, rows, stdout, parsed_args)
        elif parsed_args.format == 'json':
            stdout.write(report.render_json(results, summary,
                                            debug=parsed_args.debug_output))
        else:
            stdout.write(report.render_table(results, summary))
        stdout.flush()
        return summary['exit_status']
