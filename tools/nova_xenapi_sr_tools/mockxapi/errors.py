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

#: SM errors the mock raises: name -> (number, description), as in SM's
#: ``drivers/XE_SR_ERRORCODES.xml``; ``xs_errors.XenError`` appends
#: `` [opterr=...]`` when given one.
SM_ERRORS = {
    'SRScan': (40, 'The SR scan failed '),
    'VDIUnavailable': (46, 'The VDI is not available'),
    'SRUnavailable': (47, 'The SR is not available'),
    'ISCSILogin': (68, 'ISCSI login failed - check access settings for '
                   'the initiator on the storage, if CHAP is used verify '
                   'CHAP credentials'),
    'ISCSIDiscovery': (83, 'ISCSI discovery failed'),
    'ConfigTargetMissing': (95, 'The request is missing the target '
                            'parameter'),
    'ConfigTargetIQNMissing': (96, 'The request is missing or has an '
                               'incorrect target IQN parameter'),
    'ConfigSCSIid': (107, 'The SCSIid parameter is missing or incorrect'),
    'ISCSITarget': (141, 'Unable to connect to ISCSI service on target'),
    'ISCSIPort': (142, 'Incorrect value for iSCSI port, must be a number '
                  'between 1 and 65535'),
}

TASK_CANCELLED = 'TASK_CANCELLED'
OTHER_OPERATION_IN_PROGRESS = 'OTHER_OPERATION_IN_PROGRESS'
SR_NOT_SHARABLE = 'SR_NOT_SHARABLE'
VM_REQUIRES_SR = 'VM_REQUIRES_SR'
VDI_LOCATION_MISSING = 'VDI_LOCATION_MISSING'


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


def sm_error(name, opterr=None):
    """The error xapi reports for SM's ``XenError(name, opterr)``.

    SM prints an XML-RPC fault ``(number, description[ [opterr=..]])``
    (``xs_errors.py`` ``XenError``); xapi's ``sm_exec.ml`` turns it into
    ``SR_BACKEND_FAILURE_<number> ["", message, stderr]`` (stderr empty).
    """
    number, message = SM_ERRORS[name]
    if opterr is not None:
        message += ' [opterr=%s]' % opterr
    return XapiError('SR_BACKEND_FAILURE_%d' % number, '', message, '')
