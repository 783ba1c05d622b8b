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

"""Configuration options of nova-xenapi-sr, group ``[xenapi_sr]``.

They live in nova's own configuration file (``nova.conf``) on computes.
``list_opts()`` is the ``oslo.config.opts`` entry point, so
``oslo-config-generator --namespace nova_xenapi_sr`` documents them
(``tox -e genconfig``).
"""

from oslo_config import cfg

GROUP_NAME = 'xenapi_sr'

xenapi_sr_group = cfg.OptGroup(
    GROUP_NAME,
    title='nova-xenapi-sr options',
    help="""
Options of the nova-xenapi-sr extension to nova's XenAPI driver
(``compute_driver = xenapi_sr.driver.XenAPISRDriver``), which keeps live
migration of boot-from-volume instances working when their iSCSI volumes sit
on SRs named in the pre-Mitaka (legacy) style.""")

_opts = [
    cfg.BoolOpt(
        'refuse_unsafe_destination',
        default=True,
        help="""
Refuse, in the live migration pre-check, to migrate an instance that has a
volume on a legacy-named SR (``FA15E-D15C-<volume id>``) to a destination
compute that does not run nova-xenapi-sr.

Such a destination cannot introduce the SR under the source's name, so the
migration would fail late in ``VM.migrate_send`` with ``UUID_INVALID``.
With the default (True) the source refuses up front with
MigrationPreCheckError naming the volumes and the remedy (install
nova-xenapi-sr on the destination). Set to False only to reproduce stock
nova's behaviour: the source then logs a warning and lets the migration
proceed and fail later. Instances whose volumes are all on uuid5 SRs are not
affected by this option."""),
    cfg.IntOpt(
        'xapi_retry_attempts',
        default=4,
        min=1,
        help="""
How many times the driver tries a XAPI read or idempotent call (``*.get_*``,
``SR.scan``, ``PBD.plug``, ``PBD.unplug``, the SR forgets of a migration's
cleanup, dom0 plugin reads such as ``xenhost.py host_data``) that fails
transiently: a dropped connection, a timeout, or a XAPI error that is not a
definitive answer (such as ``HANDLE_INVALID``). 1 disables retrying. Calls
that change state and are not idempotent are never retried. Each retry is
logged at WARNING."""),
    cfg.FloatOpt(
        'xapi_retry_interval',
        default=1.0,
        min=0.0,
        help="""
Seconds to wait before the second attempt of a retried XAPI call; the wait
doubles after each further attempt (at most 10 seconds)."""),
    cfg.IntOpt(
        'migration_locate_timeout',
        default=60,
        min=0,
        help="""
Seconds the source waits, after ``VM.migrate_send`` did not answer (a
dropped connection or a timeout), for XAPI to show where the VM is before it
decides whether the migration happened. While XAPI reports the migration
still running, the source polls; a VM that has left the source pool is never
rolled back."""),
]


def register_opts(conf):
    """Register the ``[xenapi_sr]`` options on ``conf``."""
    conf.register_group(xenapi_sr_group)
    conf.register_opts(_opts, group=xenapi_sr_group)


def list_opts():
    """Return ``[(group, options)]`` for oslo-config-generator."""
    return [(xenapi_sr_group, list(_opts))]
