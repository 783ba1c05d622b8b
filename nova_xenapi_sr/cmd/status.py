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

"""``nova-xenapi-sr-status upgrade check``: is this node set up right?

Run it on a node after installing the package (it reads nova's own
configuration files, like ``nova-status``). It checks that the installed
nova is one the extension was built for, that the compute driver shim is
importable from nova's namespace, what ``compute_driver`` says, and, on a
XenAPI compute, how many volumes attached on this host use legacy-named
SRs (it reads the pool with the credentials of ``[xenserver]``, see
:mod:`nova_xenapi_sr.audit`). Where nova cannot be imported, it reports
that as a failure. Exit codes are oslo.upgradecheck's: 0 success, 1
warning, 2 failure, 255 error.
"""

import importlib
import sys

from oslo_config import cfg
from oslo_upgradecheck import upgradecheck

from nova_xenapi_sr import audit
from nova_xenapi_sr import naming

#: ``compute_driver`` value that loads the extension.
EXTENSION_DRIVER = 'xenapi_sr.driver.XenAPISRDriver'

#: The module nova imports for it (``'nova.virt.%s' % compute_driver``).
SHIM_MODULE = 'nova.virt.xenapi_sr.driver'

#: ``compute_driver`` values that load stock nova's XenAPI driver.
STOCK_DRIVERS = ('xenapi.XenAPIDriver', 'xenapi.driver.XenAPIDriver')

#: nova's own ``XenapiLiveMigrateData`` that version 1.5 extends.
BASE_VERSION = '1.4'


class Checks(upgradecheck.UpgradeCommands):
    """Checks of a node that runs (or is about to run) nova-xenapi-sr."""

    def __init__(self, conf=None):
        self._conf = conf

    @property
    def conf(self):
        if self._conf is None:
            import nova.conf
            self._conf = nova.conf.CONF
        return self._conf

    def _check_nova_object(self):
        from nova.objects import migrate_data

        from nova_xenapi_sr.objects import migrate_data as xs_migrate_data

        base = migrate_data.XenapiLiveMigrateData
        ours = xs_migrate_data.XenapiLiveMigrateData
        if base.VERSION != BASE_VERSION:
            return upgradecheck.Result(
                upgradecheck.Code.FAILURE,
                'nova\'s XenapiLiveMigrateData is version %s; '
                'nova-xenapi-sr %s extends version %s (nova 21, Ussuri). '
                'Install it only next to nova 21.' % (
                    base.VERSION, ours.VERSION, BASE_VERSION))
        return upgradecheck.Result(upgradecheck.Code.SUCCESS)

    def _check_driver_shim(self):
        try:
            module = importlib.import_module(SHIM_MODULE)
            getattr(module, 'XenAPISRDriver')
        except (ImportError, AttributeError) as exc:
            return upgradecheck.Result(
                upgradecheck.Code.FAILURE,
                'nova cannot load compute_driver = %s: %s. Install '
                'nova-xenapi-sr into the same Python environment as nova, '
                'with pip and not in development (editable) mode, so that '
                '%s is installed inside nova\'s package.' % (
                    EXTENSION_DRIVER, exc, SHIM_MODULE.replace('.', '/')))
        return upgradecheck.Result(upgradecheck.Code.SUCCESS)

    def _check_compute_driver(self):
        driver = self.conf.compute_driver
        if driver == EXTENSION_DRIVER:
            return upgradecheck.Result(upgradecheck.Code.SUCCESS)
        if driver in STOCK_DRIVERS:
            return upgradecheck.Result(
                upgradecheck.Code.WARNING,
                'compute_driver = %s is stock nova\'s XenAPI driver: live '
                'migration of volumes on legacy-named SRs still fails on '
                'this compute. Set compute_driver = %s and restart '
                'nova-compute.' % (driver, EXTENSION_DRIVER))
        return upgradecheck.Result(
            upgradecheck.Code.SUCCESS,
            'compute_driver is %s: not a XenAPI compute. On conductors, '
            'run nova-conductor-xenapi-sr instead of nova-conductor.' % (
                driver or 'not set'))

    def _xenserver(self):
        """``(url, username, password)`` of ``[xenserver]``, or None."""
        try:
            group = self.conf.xenserver
            return (group.connection_url, group.connection_username,
                    group.connection_password)
        except (cfg.NoSuchOptError, AttributeError):
            return None

    def _check_legacy_volumes(self):
        driver = self.conf.compute_driver
        if driver != EXTENSION_DRIVER and driver not in STOCK_DRIVERS:
            return upgradecheck.Result(
                upgradecheck.Code.SUCCESS,
                'Not a XenAPI compute: no volumes to count.')
        settings = self._xenserver()
        if not settings or not settings[0]:
            return upgradecheck.Result(
                upgradecheck.Code.FAILURE,
                '[xenserver] connection_url is not set: nova-compute '
                'cannot reach XAPI, and the volumes on legacy SRs cannot '
                'be counted. Set connection_url, connection_username and '
                'connection_password.')
        url, username, password = settings
        try:
            session = audit.Session(url, username or 'root', password or '',
                                    timeout=60)
            try:
                this_host = session.call('session.get_this_host',
                                         session.ref)
                state = audit.read_pool(session, url)
            finally:
                session.logout()
        except audit.AuditError as exc:
            return upgradecheck.Result(
                upgradecheck.Code.FAILURE,
                'Cannot count the volumes on legacy SRs with the '
                '[xenserver] credentials: %s' % exc)
        here = [vol for vol in audit.audit([state])
                if vol.host_ref == this_host]
        legacy = [vol for vol in here if vol.style == naming.LEGACY]
        stuck = [vol for vol in here
                 if audit.cannot_migrate_anywhere(vol, 1)]
        summary = ('Legacy SRs hold %d of the %d volumes attached on this '
                   'host' % (len(legacy), len(here)))
        if legacy:
            summary += (' (they live-migrate only between computes that '
                        'both run nova-xenapi-sr)')
        summary += '.'
        if stuck:
            return upgradecheck.Result(
                upgradecheck.Code.WARNING,
                '%s %d cannot be live-migrated anywhere: %s. Run '
                '"nova-xenapi-sr audit" from nova-xenapi-sr-tools for the '
                'reason and what to do.' % (
                    summary, len(stuck), '; '.join(
                        'instance %s volume %s on SR %s' % (
                            vol.instance, vol.device, vol.sr_uuid)
                        for vol in stuck[:5]) +
                    (' and %d more' % (len(stuck) - 5)
                     if len(stuck) > 5 else '')))
        return upgradecheck.Result(upgradecheck.Code.SUCCESS, summary)

    _upgrade_checks = (
        ('nova XenapiLiveMigrateData version', _check_nova_object),
        ('Compute driver shim', _check_driver_shim),
        ('compute_driver', _check_compute_driver),
        ('Volumes on legacy SRs', _check_legacy_volumes),
    )


class NovaMissing(upgradecheck.UpgradeCommands):
    """The one check of a node where nova cannot be imported."""

    def __init__(self, error):
        self.error = error

    def _check_nova(self):
        return upgradecheck.Result(
            upgradecheck.Code.FAILURE,
            'nova cannot be imported (%s): nova-xenapi-sr must be installed '
            'into the Python environment that runs nova 21, and '
            'nova-xenapi-sr-status run from there.'
            % (' '.join(str(self.error).split()) or
               type(self.error).__name__))

    _upgrade_checks = (('nova', _check_nova),)


def main(argv=None, conf=None):
    """Console script entry point: ``nova-xenapi-sr-status upgrade check``."""
    commands = None
    if conf is None:
        try:
            import nova.conf
            conf = nova.conf.CONF
        except ImportError as exc:
            conf = cfg.ConfigOpts()
            commands = NovaMissing(exc)
    if argv is None:
        argv = sys.argv[1:]
    return upgradecheck.main(conf, project='nova',
                             upgrade_command=commands or Checks(conf),
                             argv=argv)


if __name__ == '__main__':
    sys.exit(main())
