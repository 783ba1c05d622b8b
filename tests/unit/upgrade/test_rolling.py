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


"""Reading a stock conductor's backport loop from its log."""

import os

import fixtures

from nova_xenapi_sr_tools.upgrade import rolling
from tests import base

_PREFIX = '2026-12-02 10:13:48.354 23122 ERROR oslo_messaging.rpc.server '


def _failure(frames):
    lines = [_PREFIX + '[None req-1 admin verify - - - -] Exception during '
             'message handling: oslo_messaging.exceptions.MessagingTimeout: '
             'Timed out waiting for a reply to message ID 96',
             _PREFIX + 'Traceback (most recent call last):']
    lines += [_PREFIX + '  File "/x/%s.py", line 1, in %s' % (frame, frame)
              for frame in frames]
    lines.append(_PREFIX + 'oslo_messaging.exceptions.MessagingTimeout: ...')
    return lines


class TestBackportLoop(base.TestCase):

    def setUp(self):
        super(TestBackportLoop, self).setUp()
        self.path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                                 'conductor.log')

    def write(self, lines):
        with open(self.path, 'a') as handle:
            handle.write('\n'.join(lines) + '\n')
        return os.path.getsize(self.path)

    def test_counts_failed_requests_through_the_backport(self):
        self.write(_failure(['_process_object', 'object_backport_versions',
                             'call']) +
                   ['2026-12-02 10:13:48.369 23122 INFO x [-] No calling '
                    'threads waiting for msg_id : 23'] +
                   _failure(['_process_object', 'object_backport_versions']))
        self.assertEqual(2, rolling.backport_loop_errors(self.path))

    def test_other_failures_do_not_count(self):
        self.write(_failure(['build_and_run_instance', 'save']) +
                   ['2026-12-02 10:13:49.000 23122 DEBUG x in '
                    'object_backport_versions (not a failure)'])
        self.assertEqual(0, rolling.backport_loop_errors(self.path))

    def test_counts_only_after_the_mark(self):
        mark = self.write(_failure(['object_backport_versions']))
        self.write(_failure(['object_backport_versions']) * 3)
        self.assertEqual(3, rolling.backport_loop_errors(self.path, mark))
        self.assertEqual(4, rolling.backport_loop_errors(self.path))

    def test_no_log_no_loop(self):
        self.assertEqual(0, rolling.backport_loop_errors(self.path + '.none'))

    def test_note_keeps_the_detail_and_says_what_to_do(self):
        note = rolling._loop_note('refused: upgrade conductors first.')
        self.assertTrue(note.startswith('refused: upgrade conductors first.'
                                        ' Meanwhile the stock conductor'))
        self.assertIn('its RPC requests timed out', note)
        self.assertIn('recovers only when restarted', note)
