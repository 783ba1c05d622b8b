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
importable from nova's namespace, and what ``compute_driver`` says. Exit
codes are oslo.upgradecheck's: 0 success, 1 warning, 2 failure, 255 error.
"""

import importlib
import sys

from oslo_upgradecheck import upgradecheck

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

    _upgrade_checks = (
        ('nova XenapiLiveMigrateData version', _check_nova_object),
        ('Compute driver shim', _check_driver_shim),
        ('compute_driver', _check_compute_driver),
    )


def main(argv=None, conf=None):
    """Console script entry point: ``nova-xenapi-sr-status upgrade check``."""
    if conf is None:
        import nova.conf
        conf = nova.conf.CONF
    if argv is None:
        argv = sys.argv[1:]
    return upgradecheck.main(conf, project='nova',
                             upgrade_command=Checks(conf), argv=argv)


if __name__ == '__main__':
    sys.exit(main())
