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

"""``nova-xenapi-sr fault-sweep``: the cliff command."""

import sys
import time

from cliff import lister

FLAVOURS = ('extension', 'stock')


class FaultSweep(lister.Lister):
    """Inject a fault at every XAPI call of a live migration; judge each.

    Runs nova 21.2.4's real services in this process (API, conductor,
    scheduler, placement, one nova-compute per pool; Cinder, Neutron,
    Glance and Keystone faked) over two pools of the mock XAPI. The
    migrating instance has a legacy volume and two uuid5 volumes behind
    one target, whose SR a neighbour instance on the destination shares
    (running, then halted). One clean migration per neighbour state gives
    each side's XAPI calls; then, from a fresh scenario each time, each
    fault kind is injected at each call index, and each case is judged
    (migrated, failed_clean, UNSAFE; not_reached when the call was not
    made). Second faults fail a call of the rollback after a first fault.
    The extension runs on both computes; stock nova (both computes) runs
    the same sweep on the uuid5 volumes only.

    Exit status 1 if an extension case is neither migrated nor
    failed_clean (or a stock case is UNSAFE with --strict-stock), 2 if the
    sweep could not run. The mock XAPI listens on port 80 of loopback
    addresses (needs root or CAP_NET_BIND_SERVICE). It takes a while:
    about 5 s per case.
    """

    def get_parser(self, prog_name):
        from nova_xenapi_sr_tools.faultsweep import runner
        parser = super(FaultSweep, self).get_parser(prog_name)
        parser.add_argument(
            '--flavour', choices=FLAVOURS, action='append',
            help='only this flavour (repeatable; default both)')
        parser.add_argument(
            '--neighbour', choices=('running', 'halted'), action='append',
            help='only this state of the neighbour (repeatable; default '
                 'both)')
        parser.add_argument(
            '--kind', choices=tuple(runner.KINDS), action='append',
            help='only this fault kind (repeatable; default all)')
        parser.add_argument(
            '--second-kind', choices=tuple(runner.KINDS) + ('none',),
            action='append',
            help='kinds of the second fault during a rollback (repeatable; '
                 'default failure; none: no second faults)')
        parser.add_argument(
            '--sample', type=int, metavar='N',
            help='only N call indexes per side (and per rollback), drawn '
                 'with --seed (default: every index)')
        parser.add_argument('--seed', type=int, default=0,
                            help='seed of --sample (default 0)')
        parser.add_argument(
            '--match', metavar='PATTERN', action='append',
            help='only the cases whose name matches this shell pattern '
                 '(fnmatch; repeatable). Names are those of the progress '
                 'output, such as extension/running/then/source#36:'
                 'VM.migrate_send:failure/destination#38:network.destroy:'
                 'failure; the clean migrations still run')
        parser.add_argument(
            '--cold-cache', action='store_true',
            help='empty both computes\' volume connector caches before '
                 'each migration, as a freshly started nova-compute has '
                 'them: the host stats calls (the host_data plugin, '
                 'SR.scan) then come after VM.migrate_send on the source')
        parser.add_argument(
            '--rst-page', metavar='FILE',
            help='also write the results as a documentation page '
                 '(reStructuredText, extension and stock side by side, '
                 'with this command and the totals)')
        parser.add_argument(
            '--save', metavar='FILE',
            help='also keep the raw results in FILE (JSON lines), for '
                 '--load')
        parser.add_argument(
            '--load', metavar='FILE', action='append',
            help='do not run: show the results saved with --save in FILE '
                 '(repeatable, e.g. one file per flavour)')
        parser.add_argument(
            '--details', action='store_true',
            help='add each case\'s detail columns')
        return parser

    def take_action(self, parsed_args):
        from nova_xenapi_sr_tools.faultsweep import report
        from nova_xenapi_sr_tools.faultsweep import runner

        options = {
            'flavours': [f for f in FLAVOURS
                         if f in (parsed_args.flavour or FLAVOURS)],
            'neighbour_states': [s.capitalize() for s in (
                parsed_args.neighbour or ('running', 'halted'))],
            'kinds': list(parsed_args.kind or runner.KINDS),
            'second_kinds': [k for k in (parsed_args.second_kind or
                                         ['failure']) if k != 'none'],
            'sample': parsed_args.sample, 'seed': parsed_args.seed,
            'match': parsed_args.match or [],
            'cold_cache': parsed_args.cold_cache}
        stderr = getattr(self.app, 'stderr', None) or sys.stderr
        if parsed_args.load:
            results, runs = [], []
            for path in parsed_args.load:
                loaded, meta = _load(path)
                results.extend(loaded)
                runs.append(meta)
        else:
            started = time.monotonic()
            results, status = _run_worker(options)
            elapsed = time.monotonic() - started
            runs = [{'command': _command_line(), 'seconds': elapsed,
                     'cases': len(results)}]
            if parsed_args.save:
                _save(parsed_args.save, results, runs[0])
            if status != 0:
                raise SweepError(
                    'the sweep stopped (status %d) after %d cases; see the '
                    'messages above' % (status, len(results)))
        for line in report.totals_text(results):
            stderr.write(line + '\n')
        for run in runs:
            stderr.write('run time: %.0f s (%s)\n' % (
                run['seconds'], run['command']))
        self.failed = any(
            r['outcome'] not in ('migrated', 'failed_clean')
            for r in results if r['case'].flavour == 'extension')
        if parsed_args.rst_page:
            with open(parsed_args.rst_page, 'w') as f:
                f.write(report.rst_page(results, runs,
                                        _command_line()))
        columns = report.COLUMNS if parsed_args.details else \
            report.PAGE_COLUMNS
        index = [report.COLUMNS.index(c) for c in columns]
        return columns, [tuple(row[i] for i in index)
                         for row in report.rows(results)]

    def run(self, parsed_args):
        self.failed = False
        try:
            status = super(FaultSweep, self).run(parsed_args)
        except SweepError as exc:
            stderr = getattr(self.app, 'stderr', None) or sys.stderr
            stderr.write('fault-sweep: %s\n' % exc)
            return 2
        return 1 if self.failed else status


class SweepError(RuntimeError):
    """The sweep could not run to its end."""


def _run_worker(options):
    """Run the sweep in a child process; return ``(results, status)``."""
    import json
    import signal
    import subprocess
    import tempfile

    from nova_xenapi_sr_tools.faultsweep import runner

    def terminated(signum, frame):
        raise SweepError('terminated (signal %d)' % signum)

    with tempfile.NamedTemporaryFile('r', suffix='.jsonl') as out:
        child = subprocess.Popen(
            [sys.executable, '-m', 'nova_xenapi_sr_tools.faultsweep.worker',
             json.dumps(options), out.name], stdout=2)
        # the child must not outlive this process (Ctrl-C reaches both)
        previous = signal.signal(signal.SIGTERM, terminated)
        try:
            status = child.wait()
        except BaseException:
            child.terminate()
            child.wait()
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
        results = [runner.result_from_dict(json.loads(line))
                   for line in out if line.strip()]
    return results, status


def _save(path, results, meta):
    import json

    from nova_xenapi_sr_tools.faultsweep import runner
    with open(path, 'w') as f:
        f.write(json.dumps({'meta': meta}) + '\n')
        for result in results:
            f.write(json.dumps(runner.result_to_dict(result)) + '\n')


def _load(path):
    import json

    from nova_xenapi_sr_tools.faultsweep import runner
    results, meta = [], None
    try:
        with open(path) as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                data = json.loads(line)
                if 'meta' in data:
                    meta = data['meta']
                else:
                    results.append(runner.result_from_dict(data))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SweepError('cannot load %s: %s (expected a file written by '
                         '--save)' % (path, exc))
    if meta is None:
        meta = {'command': '(unknown)', 'seconds': 0,
                'cases': len(results)}
    return results, meta


def _command_line():
    args = [a for a in sys.argv[1:]]
    return ' '.join(['nova-xenapi-sr'] + args) if args else \
        'nova-xenapi-sr fault-sweep'
