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

"""``nova-conductor-xenapi-sr``: nova's conductor, knowing the 1.5 object.

The conductor deserializes what computes return and backports objects for
computes that run an older version (``object_backport_versions``), so it
must know ``XenapiLiveMigrateData`` 1.5 once any compute runs the
extension. nova has no hook to load extra objects into the conductor, so,
as nova-powervm did with ``nova-conductor-powervm``, this script registers
the extension's objects and then runs nova's own conductor ``main()``. It
takes the same arguments and configuration files as ``nova-conductor`` and
registers the service under the same binary name, ``nova-conductor``.
"""

# First import: the nova.cmd package applies eventlet monkey patching (as
# nova-conductor does), and that must happen before anything else loads.
from nova.cmd import conductor as nova_conductor

from nova_xenapi_sr import objects


def main():
    """Register the extension's objects, then run nova's conductor."""
    objects.register_all()
    return nova_conductor.main()
