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

"""Versioned objects of nova-xenapi-sr.

When registration happens: importing
``nova_xenapi_sr.objects.migrate_data`` registers its classes with nova's
``NovaObjectRegistry`` (the class decorator), and :func:`register_all`
imports that module and registers the classes again. Registering a class
that is already registered at the same version replaces it in place, so
calling :func:`register_all` any number of times is safe, and it also
re-registers after a test fixture restored the registry. Importing this
package alone registers nothing.

Afterwards ``nova.objects.XenapiLiveMigrateData`` is the 1.5 class, so the
objects nova's own code builds carry ``volume_sr_uuid_map``.
"""

import importlib

#: Modules whose classes :func:`register_all` registers.
_OBJECT_MODULES = ('nova_xenapi_sr.objects.migrate_data',)


def register_all():
    """Register every versioned object of the extension with nova.

    Call this in every process that must understand the extension's object
    versions: computes (the driver does it on import) and conductors
    (``nova-conductor-xenapi-sr`` does it before nova's main).
    """
    from nova.objects import base

    for name in _OBJECT_MODULES:
        module = importlib.import_module(name)
        for cls in module.REGISTERED_CLASSES:
            base.NovaObjectRegistry.register(cls)
