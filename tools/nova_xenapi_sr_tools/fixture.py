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

"""Reusable test fixtures, in the manner of ``oslo_versionedobjects.fixture``.

``ObjectRegistryFixture`` lets a test register the extension's objects (or
any other class) in nova's object registry and puts everything back
afterwards: the registry's class lists and the ``nova.objects.<Name>``
attributes that ``NovaObjectRegistry`` maintains. Without it, a test that
registers ``XenapiLiveMigrateData`` 1.5 would leak the 1.5 class into every
later test that expects stock nova.
"""

import fixtures


class ObjectRegistryFixture(fixtures.Fixture):
    """Snapshot nova's object registry and restore it on cleanup.

    :param stock: if true, once the snapshot is taken, remove every class
        of nova-xenapi-sr from the registry and point ``nova.objects`` back
        at nova's own classes, so the test starts from a stock nova process
        whatever earlier imports registered (importing the driver
        registers the 1.5 object process-wide).
    :param register_extension: if true, then call
        ``nova_xenapi_sr.objects.register_all()``, so the test runs with the
        1.5 object registered.

    The registry dict is restored in place (other holders of it see the
    restored contents), and every ``nova.objects`` attribute that names a
    registered object is set back to its old value, or removed if it did
    not exist before.
    """

    def __init__(self, register_extension=False, stock=False):
        super(ObjectRegistryFixture, self).__init__()
        self.register_extension = register_extension
        self.stock = stock

    def _setUp(self):
        from nova import objects
        from nova.objects import base

        registry = base.NovaObjectRegistry.obj_classes()
        saved_classes = {name: list(classes)
                         for name, classes in registry.items()}
        missing = object()
        saved_attrs = {name: getattr(objects, name, missing)
                       for name in saved_classes}

        def restore():
            names = set(registry) | set(saved_classes)
            registry.clear()
            registry.update((name, list(classes))
                            for name, classes in saved_classes.items())
            for name in names:
                old = saved_attrs.get(name, missing)
                if old is missing:
                    if hasattr(objects, name):
                        delattr(objects, name)
                else:
                    setattr(objects, name, old)

        self.addCleanup(restore)

        if self.stock:
            for name in list(registry):
                classes = [cls for cls in registry[name]
                           if not _is_extension_class(cls)]
                if len(classes) == len(registry[name]):
                    continue
                if classes:
                    registry[name] = classes
                    # The registry keeps the highest version first.
                    setattr(objects, name, classes[0])
                else:
                    del registry[name]
                    if hasattr(objects, name):
                        delattr(objects, name)

        if self.register_extension:
            from nova_xenapi_sr import objects as xs_objects
            xs_objects.register_all()


def _is_extension_class(cls):
    return cls.__module__.split('.')[0] == 'nova_xenapi_sr'
