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

"""``nova-xenapi-sr mock-xapi``: serve a mock XAPI until interrupted.

Prints one JSON line on stdout, then serves until SIGINT or SIGTERM::

    {"pools": [{"name": "pool-a", "url": "http://127.181.4.9"}, ...]}

Without options it serves ``Scenario.default()`` (two pools ``pool-a`` and
``pool-b``, user ``root``, password ``mock``; see
``nova_xenapi_sr_tools.mockxapi.scenario``), each pool on its own random
loopback address on port 80, URLs without a port, as nova's own session
needs.
``--scenario FILE`` serves a JSON or YAML scenario file. ``--listen``
(repeatable) picks addresses: ``POOL=ADDRESS[:PORT]`` for one pool, or
``ADDRESS[:PORT]`` for the next pool not yet named; port 0 takes any free
port (fine for the PyPI SDK, not for nova's session).
"""

import json
import signal
import sys
import threading

from cliff import command

from nova_xenapi_sr_tools.mockxapi import scenario as scenario_mod
from nova_xenapi_sr_tools.mockxapi import service


def parse_listen(values, pool_names):
    """Map ``--listen`` values to ``{pool: (address, port)}``."""
    listen = {}
    unnamed = []
    for value in values or []:
        pool, sep, addr = value.partition('=')
        if not sep:
            pool, addr = None, value
        host, _, port = addr.rpartition(':')
        if not host:
            host, port = addr, '80'
        try:
            port = int(port)
        except ValueError:
            raise ValueError('--listen %s: port must be a number' % value)
        if pool is None:
            unnamed.append((host, port))
        elif pool not in pool_names:
            raise ValueError('--listen %s: no pool %s in the scenario' %
                             (value, pool))
        else:
            listen[pool] = (host, port)
    free = [p for p in pool_names if p not in listen]
    if len(unnamed) > len(free):
        raise ValueError('more --listen addresses than pools')
    listen.update(zip(free, unnamed))
    return listen


class MockXapiCommand(command.Command):
    """Serve a mock XAPI (pools, shared iSCSI array) until interrupted."""

    def get_parser(self, prog_name):
        parser = super(MockXapiCommand, self).get_parser(prog_name)
        parser.add_argument('--scenario', metavar='FILE',
                            help='JSON or YAML scenario file (default: the '
                                 'documented default scenario)')
        parser.add_argument('--listen', metavar='[POOL=]ADDRESS[:PORT]',
                            action='append', default=[],
                            help='address (and port) for a pool; repeat '
                                 'per pool (default: a random 127.x.y.z '
                                 'on port 80 per pool)')
        return parser

    def take_action(self, parsed_args):
        sc = (scenario_mod.Scenario.load(parsed_args.scenario)
              if parsed_args.scenario else scenario_mod.Scenario.default())
        names = [p['name'] for p in sc.pools]
        listen = parse_listen(parsed_args.listen, names)
        stop = threading.Event()

        def interrupted(signum, frame):
            stop.set()

        previous = {sig: signal.signal(sig, interrupted)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        out = getattr(self.app, 'stdout', None) or sys.stdout
        try:
            with service.MockXapi(sc, listen=listen) as srv:
                out.write(json.dumps({'pools': [
                    {'name': name, 'url': srv.urls[name],
                     'hosts': {host: url for (pool, host), url in
                               sorted(srv.host_urls.items())
                               if pool == name}}
                    for name in names]}) + '\n')
                out.flush()
                while not stop.wait(0.5):
                    pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0


def main(argv=None):
    """Run the command without the ``nova-xenapi-sr`` app (development)."""
    from cliff import app
    from cliff import commandmanager

    class _App(app.App):
        def __init__(self):
            manager = commandmanager.CommandManager('nova_xenapi_sr.cli')
            manager.add_command('mock-xapi', MockXapiCommand)
            super(_App, self).__init__(
                description='mock XAPI', version='0',
                command_manager=manager, deferred_help=True)

    return _App().run(['mock-xapi'] + list(sys.argv[1:] if argv is None
                                           else argv))


if __name__ == '__main__':
    sys.exit(main())
