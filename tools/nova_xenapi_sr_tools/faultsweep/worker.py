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

"""The process the ``fault-sweep`` command runs the sweep in.

nova's services need the process patched by eventlet before anything
imports ``socketserver``, ``selectors`` or nova (see
:mod:`~nova_xenapi_sr_tools.inprocess.eventlet_setup`); the command's own
process has imported them already (cliff, logging.config), so it runs
this module as a child: ``python -m nova_xenapi_sr_tools.faultsweep.worker
OPTIONS_JSON RESULTS_FILE``. Each result is a JSON line of RESULTS_FILE;
progress goes to stderr. The child ends with the sweep (its deployment
stops nova and the mock XAPI), also on SIGINT/SIGTERM.
"""

import sys


def main(argv=None):
    from nova_xenapi_sr_tools.inprocess import eventlet_setup
    eventlet_setup.monkey_patch()
    import json
    import signal

    from nova_xenapi_sr_tools.faultsweep import runner

    argv = sys.argv[1:] if argv is None else argv
    options = json.loads(argv[0])
    out = open(argv[1], 'w')

    def stop(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, stop)

    def progress(case, outcome, detail):
        sys.stderr.write('%-7s %-12s %s\n' % ('%.1fs' % (case.seconds or 0),
                                              outcome, case.name))
        sys.stderr.flush()

    def record(result):
        out.write(json.dumps(runner.result_to_dict(result)) + '\n')
        out.flush()

    try:
        for flavour in options['flavours']:
            runner.run_flavour(
                flavour, neighbour_states=options['neighbour_states'],
                kinds=options['kinds'], second_kinds=options['second_kinds'],
                sample=options['sample'], seed=options['seed'],
                match=options.get('match'),
                cold_cache=options.get('cold_cache', False),
                progress=progress, on_result=record)
    except KeyboardInterrupt:
        return 130
    except RuntimeError as exc:
        sys.stderr.write('fault-sweep: %s\n' % exc)
        return 2
    finally:
        out.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
