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

"""Exceptions raised by nova-xenapi-sr itself.

Refusals that nova's compute manager must understand are raised as nova's
own exception types (``MigrationPreCheckError``); the types here describe
bad input that our code detects before it changes anything.
"""


class NovaXenapiSRException(Exception):
    """Base class for errors raised by nova-xenapi-sr."""


class InvalidConnectionData(NovaXenapiSRException, ValueError):
    """Cinder connection data that cannot name an iSCSI SR.

    The message names the volume (when known) and the missing or malformed
    key, and says what to check. Naming raises it before any XAPI call.
    """

    def __init__(self, volume_id, key, problem):
        self.volume_id = volume_id
        self.key = key
        self.problem = problem
        super(InvalidConnectionData, self).__init__(
            'Connection data of volume %s: %s %s. Check the volume '
            'attachment that Cinder returned for this host.'
            % (volume_id or '<unknown>', key, problem))
