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

"""Bus and endpoint behaviour that needs no real process."""

import os
import signal
from unittest import mock

import fixtures

from nova_xenapi_sr_tools.upgrade import node
from nova_xenapi_sr_tools.upgrade import rpc
from nova_xenapi_sr_tools.upgrade import runner as runner_mod
from tests import base


class FakeChannel(object):
    def __init__(self, incoming=()):
        self.incoming = list(incoming)
        self.sent = []
        self.closed = False

    def send(self, message):
        self.sent.append(message)

    def recv(self):
        return self.incoming.pop(0)

    def close(self):
        self.closed = True


class TestEndpointStop(base.TestCase):

    def test_stop_while_waiting_for_a_reply_ends_the_node(self):
        stop = rpc.request(node.HARNESS, 'compute-a', 'stop', {})
        channel = FakeChannel([stop])
        endpoint = node.Endpoint('compute-a', channel, handler=object())
        with mock.patch.object(node, '_leave',
                               side_effect=SystemExit(0)) as leave:
            self.assertRaises(SystemExit, endpoint.call, 'compute-b',
                              'ping')
        leave.assert_called_once_with()
        # The request went out, then the reply to stop.
        self.assertEqual('ping', channel.sent[0]['method'])
        self.assertEqual(stop['id'], channel.sent[1]['id'])
        self.assertIsNone(channel.sent[1]['result'])


class TestBusClose(base.TestCase):

    def handle(self, alive):
        process = mock.Mock(pid=4242)
        process.is_alive.side_effect = alive
        return node.NodeHandle('compute-a', {}, process, FakeChannel())

    def test_stuck_node_gets_sigkill(self):
        handle = self.handle(lambda: True)
        bus = node.Bus()
        bus.nodes = {'compute-a': handle}
        with mock.patch.object(node.os, 'kill') as kill:
            bus.close()
        handle.process.terminate.assert_called_once_with()
        kill.assert_called_once_with(4242, signal.SIGKILL)
        self.assertTrue(handle.channel.closed)
        self.assertEqual({}, bus.nodes)

    def test_polite_node_is_not_killed(self):
        states = iter([True, False, False])
        handle = self.handle(lambda: next(states))
        bus = node.Bus()
        bus.nodes = {'compute-a': handle}
        with mock.patch.object(node.os, 'kill') as kill:
            bus.close()
        handle.process.terminate.assert_not_called()
        kill.assert_not_called()
        self.assertEqual('stop', handle.channel.sent[0]['method'])


class TestRunnerStartFailure(base.TestCase):

    def test_failed_start_stops_nodes_and_removes_the_log_dir(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        with mock.patch('tempfile.mkdtemp',
                        return_value=os.path.join(tmp, 'logs')) as mkdtemp:
            os.mkdir(mkdtemp.return_value)
            runner = runner_mod.Runner()
        with mock.patch.object(node.Bus, 'start',
                               side_effect=node.NodeError('boom')), \
                mock.patch.object(node.Bus, 'close') as close:
            self.assertRaises(node.NodeError, runner.__enter__)
        close.assert_called_once_with()
        self.assertFalse(os.path.exists(os.path.join(tmp, 'logs')))
        self.assertIsNone(runner.bus)
