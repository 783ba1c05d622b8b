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

"""XAPI API errors as the mock raises them.

Every API error travels as ``{"Status": "Failure", "ErrorDescription":
[code, param, ...]}`` (all strings), never as an XML-RPC fault. Handlers
raise :class:`XapiError`; the envelope layer turns it into that reply.
"""

SESSION_INVALID = 'SESSION_INVALID'
SESSION_AUTHENTICATION_FAILED = 'SESSION_AUTHENTICATION_FAILED'
HOST_IS_SLAVE = 'HOST_IS_SLAVE'
MESSAGE_METHOD_UNKNOWN = 'MESSAGE_METHOD_UNKNOWN'
MESSAGE_PARAMETER_COUNT_MISMATCH = 'MESSAGE_PARAMETER_COUNT_MISMATCH'
HANDLE_INVALID = 'HANDLE_INVALID'
UUID_INVALID = 'UUID_INVALID'
INVALID_VALUE = 'INVALID_VALUE'
INTERNAL_ERROR = 'INTERNAL_ERROR'
FIELD_TYPE_ERROR = 'FIELD_TYPE_ERROR'
SR_UUID_EXISTS = 'SR_UUID_EXISTS'
PBD_EXISTS = 'PBD_EXISTS'
SR_NO_PBDS = 'SR_NO_PBDS'
SR_HAS_PBD = 'SR_HAS_PBD'
VDI_IN_USE = 'VDI_IN_USE'
VDI_NOT_IN_MAP = 'VDI_NOT_IN_MAP'
VIF_NOT_IN_MAP = 'VIF_NOT_IN_MAP'
SR_DOES_NOT_SUPPORT_MIGRATION = 'SR_DOES_NOT_SUPPORT_MIGRATION'
TOO_MANY_STORAGE_MIGRATES = 'TOO_MANY_STORAGE_MIGRATES'
VM_BAD_POWER_STATE = 'VM_BAD_POWER_STATE'
XENAPI_MISSING_PLUGIN = 'XENAPI_MISSING_PLUGIN'
XENAPI_PLUGIN_FAILURE = 'XENAPI_PLUGIN_FAILURE'
LOCATION_NOT_UNIQUE = 'LOCATION_NOT_UNIQUE'
OPERATION_NOT_ALLOWED = 'OPERATION_NOT_ALLOWED'

#: SM backend failure numbers used by the iSCSI checks (XE_SR_ERRORCODES).
ISCSI_LOGIN_FAILED = 68         # CHAP/login refused, IQN not at the portal
ISCSI_TARGET_MISSING = 95       # device_config has no 'target'
ISCSI_IQN_MISSING = 96          # device_config has no 'targetIQN'
ISCSI_SERVICE_ERROR = 141       # nothing listens at target:port
ISCSI_PORT_INVALID = 142        # port not an integer in 1-65535
SR_NOT_ATTACHED_OK = 40         # scan of an SR whose LUN vanished
VDI_UNAVAILABLE = 46            # no LUN for the VDI (sm_config LUNid)


class XapiError(Exception):
    """An API error: ``code`` and string ``params``."""

    def __init__(self, code, *params):
        self.code = code
        self.params = [str(p) for p in params]
        super(XapiError, self).__init__(self.description)

    @property
    def description(self):
        """The ``ErrorDescription`` list sent on the wire."""
        return [self.code] + self.params


def backend_failure(number, message=''):
    """Return the ``SR_BACKEND_FAILURE_<n>`` error xapi reports for SM."""
    return XapiError('SR_BACKEND_FAILURE_%d' % number, '', message, '')
