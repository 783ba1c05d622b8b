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

"""Calls per second through the real XenAPI SDK against the mock XAPI.

Not a test: run it by hand::

    PYTHONPATH=. OS_NOVA_DISABLE_EVENTLET_PATCHING=1 \\
        python benchmarks/mockxapi_throughput.py [--seconds 5] [--threads 8]

Measures, for 1 client and for N concurrent clients (each its own
``XenAPI.Session``, so its own keep-alive connection), how many calls of
three kinds the mock serves per second: a cheap getter
(``host.get_API_version_major``), a record read (``VM.get_record``) and a
where-query (``VM.get_all_records_where``).
"""

import argparse
import json
import sys
import threading
import time

import XenAPI

from nova_xenapi_sr_tools.mockxapi import MockXapi
from nova_xenapi_sr_tools.mockxapi import Scenario

CALLS = {
    'getter': lambda x, host, vm: x.host.get_API_version_major(host),
    'get_record': lambda x, host, vm: x.VM.get_record(vm),
    'where': lambda x, host, vm: x.VM.get_all_records_where(
        'field "is_control_domain" = "false" and field "resident_on" = '
        '"%s"' % host),
}


def run(url, kind, clients, seconds):
    counts = [0] * clients
    start = threading.Barrier(clients + 1)
    stop = threading.Event()

    def client(index):
        session = XenAPI.Session(url)
        session.login_with_password('root', 'mock', '2.1', 'bench')
        x = session.xenapi
        host = x.host.get_all()[0]
        vm = x.VM.get_by_name_label('instance-00000001')[0]
        call = CALLS[kind]
        start.wait()
        n = 0
        while not stop.is_set():
            call(x, host, vm)
            n += 1
        counts[index] = n
        session.xenapi.session.logout()

    threads = [threading.Thread(target=client, args=(i,))
               for i in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    began = time.monotonic()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    return sum(counts) / elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=5.0)
    parser.add_argument('--threads', type=int, default=8)
    parser.add_argument('--listen', default=None,
                        help='ADDRESS:PORT instead of 127.x.y.z:80')
    args = parser.parse_args(argv)
    sc = Scenario.default()
    listen = None
    if args.listen:
        host, _, port = args.listen.rpartition(':')
        listen = {'pool-a': (host, int(port))}
    results = {}
    with MockXapi(sc, listen=listen) as srv:
        url = srv.urls['pool-a']
        for kind in CALLS:
            for clients in (1, args.threads):
                rate = run(url, kind, clients, args.seconds)
                results['%s x%d' % (kind, clients)] = round(rate, 1)
                print('%-12s %2d client(s): %8.1f calls/s' %
                      (kind, clients, rate))
    print(json.dumps({'python': sys.version.split()[0],
                      'calls_per_second': results}))


if __name__ == '__main__':
    main()
