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

"""The troubleshooting page names every message the code produces.

Each entry is a fixed part of a message, the file that produces it, and is
looked up in both: a reworded message or a page that lost its entry fails.
"""

import os
import re

from tests import base

TOP = os.path.join(os.path.dirname(__file__), '..', '..')
PAGE = os.path.join(TOP, 'doc', 'source', 'troubleshooting.rst')

MESSAGES = {
    'nova_xenapi_sr/virt/source.py': [
        'on legacy-named SR(s)',
        'is attached, but neither SR',
        'on the source host, expected',
        'both exist on the source host and',
        'cannot be live-migrated inside its pool',
    ],
    'nova_xenapi_sr/exception.py': ['Connection data of volume'],
    'nova_xenapi_sr/naming.py': [
        'is missing', 'is null', 'is not a string',
        'is empty while auth_method is CHAP',
        'names no target host and [xenserver] target_host is unset',
    ],
    'nova_xenapi_sr/virt/where.py': [
        'refusing to query XAPI for', 'value to query XAPI for',
    ],
    'nova_xenapi_sr/virt/destination.py': [
        'Refusing the SR uuid map sent by the source',
        'Refusing a live migration from this source',
        'share one iSCSI target, and the source runs nova',
        'already has the uuid5 SR',
        'on the source, but this host',
        'already exists on this host and',
        'for volume %s is neither the volume',
        'which are not iSCSI volumes of this',
        'Cannot derive the SR of a volume to clean up',
        'Rollback ignores SR',
        'it points at target %s IQN %s, not at the ',
        'Refusing a live migration inside this pool',
        'are on SRs of this pool that are not plugged on this',
        'already reaches its iSCSI target %s, port %s, IQN %s',
    ],
    'nova_xenapi_sr/virt/driver.py': [
        'The VM has moved, but SR ',
        'the instance that the failed migration left',
        'for a halted copy of the VM',
        'Keeping SR %s on the source: another VM still',
        'Proceeding because [xenapi_sr]',
        'took the iSCSI IQN and',
        'Cannot build the volume connector of ',
    ],
    'nova_xenapi_sr/virt/xapi_retry.py': [
        'the object is gone (destroyed by an earlier',
    ],
    'nova_xenapi_sr/cmd/status.py': [
        'nova cannot be imported',
        'XenapiLiveMigrateData is version',
        'nova cannot load compute_driver',
        'XenAPI driver: live',
        'not a XenAPI compute',
        '[xenserver] connection_url is not set',
        'Cannot count the volumes on legacy SRs with the',
        'cannot be live-migrated anywhere',
    ],
    'nova_xenapi_sr/audit.py': [
        'Cannot reach XAPI at', 'Cannot use XAPI URL',
        'does not answer as XAPI does', 'refused user %s and its password',
        'is a member of a pool whose master is', 'older than %d.%d',
        'newer than %d.%d', 'reports no XAPI API version',
        'XAPI at %s failed', 'does not know %s',
        'Cannot read the password file',
    ],
    'tools/nova_xenapi_sr_tools/audit.py': [
        'No XAPI password', 'Nothing to audit', 'is given twice',
        'has no [xenserver] connection_url', 'has no [xenserver]',
        'Cannot read nova configuration',
    ],
}


def _words(text):
    return ' '.join(text.split())


def _in_page(phrase, page):
    # %s, %d, %r and friends stand for the page's X.
    pattern = r'\s*'.join(
        re.escape(part) if part not in ('%s', '%d', '%r', '%d.%d')
        else r'\S+' for part in re.split(r'(%d\.%d|%[sdr])', phrase)
        if part)
    return re.search(pattern, page) is not None


class TestTroubleshooting(base.TestCase):

    def test_every_message_is_in_the_code_and_on_the_page(self):
        with open(PAGE) as f:
            page = _words(f.read())
        for path, phrases in sorted(MESSAGES.items()):
            with open(os.path.join(TOP, path)) as f:
                source = f.read()
            for phrase in phrases:
                if phrase not in source:
                    self.fail('%s no longer says %r' % (path, phrase))
                self.assertTrue(_in_page(phrase, page),
                                'troubleshooting.rst lacks %r (%s)'
                                % (phrase, path))

    def test_page_check_can_fail(self):
        self.assertFalse(_in_page('no such message anywhere',
                                  'Troubleshooting'))
