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

"""``nova-xenapi-sr``: the project's command line (a cliff application).

Its commands are the ``nova_xenapi_sr.cli`` entry points declared in
setup.cfg (``verify-upgrade``, ``fault-sweep``, ``mock-xapi``), so they
exist once the package is installed. Run without arguments, it prints its help.
"""

import sys

from cliff import app
from cliff import commandmanager

#: Entry point namespace of the subcommands.
COMMAND_NAMESPACE = 'nova_xenapi_sr.cli'

DESCRIPTION = ('Tools of nova-xenapi-sr, the fix for XenAPI live migration '
               'of volumes on legacy-named SRs (nova bug 1566622).')


def version_string():
    """Return the installed version, as pbr computed it at build time."""
    try:
        from pbr import version
        return version.VersionInfo('nova-xenapi-sr-tools').version_string()
    except Exception:  # not installed: running from a source tree
        return 'unknown'


class NovaXenapiSRApp(app.App):
    """The ``nova-xenapi-sr`` application."""

    def __init__(self, command_manager=None, **kwargs):
        super(NovaXenapiSRApp, self).__init__(
            description=DESCRIPTION,
            version=version_string(),
            command_manager=(command_manager or
                             commandmanager.CommandManager(COMMAND_NAMESPACE)),
            deferred_help=True,
            **kwargs)

    def run(self, argv):
        # No interactive shell: without a command, show what there is.
        if not argv:
            argv = ['--help']
        try:
            return super(NovaXenapiSRApp, self).run(argv)
        except SystemExit as exc:
            # --help, --version and argparse errors end through SystemExit.
            if exc.code is None:
                return 0
            return exc.code if isinstance(exc.code, int) else 1


def main(argv=None):
    """Console script entry point."""
    if argv is None:
        argv = sys.argv[1:]
    return NovaXenapiSRApp().run(argv)


if __name__ == '__main__':
    sys.exit(main())
