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

"""What the in-process deployment fakes: Cinder's attachments, and spawn.

Everything else nova does runs for real (see the package docstring).
"""

import collections
import copy
import logging
import threading

# stdlib logging: this module is imported before eventlet is patched, when
# oslo.log (and oslo.context) must not be imported yet.
LOG = logging.getLogger(__name__)

#: A Cinder attachment event: what nova asked, in order.
AttachmentEvent = collections.namedtuple(
    'AttachmentEvent', 'op attachment_id volume_id instance_uuid host')


def cinder_fixture_class():
    """``XapiCinderFixture``, built on nova's ``CinderFixture`` lazily.

    (nova's test framework is imported only once eventlet is patched.)
    """
    from nova.tests import fixtures as nova_fixtures
    from nova.volume import cinder

    class XapiCinderFixture(nova_fixtures.CinderFixture):
        """nova's ``CinderFixture``, handing out the mock array's iSCSI data.

        nova's fixture keeps the attachments per volume and enforces
        Cinder's one-connected-attachment rule; this subclass gives each
        attachment that has a connector the ``connection_info`` of its
        volume on the mock array (``connection_info_for``, a fresh dict per
        attachment), returns it from ``attachment_create``, ``_update``
        and ``_get`` as Cinder does, and records every create, update,
        complete and delete in :attr:`events`.

        :param connection_info_for: ``f(volume_id, connector) -> dict``.
        """

        def __init__(self, test, connection_info_for):
            super(XapiCinderFixture, self).__init__(test)
            self.connection_info_for = connection_info_for
            self.events = []
            self._infos = {}
            self._lock = threading.Lock()

        def reset(self):
            """Forget every attachment and event (between tests)."""
            with self._lock:
                self.volume_to_attachment.clear()
                self._infos.clear()
                del self.events[:]

        def attachments(self, volume_id=None):
            """``{attachment id: {id, volume_id, instance_uuid, host}}``."""
            with self._lock:
                result = {}
                for vol, atts in self.volume_to_attachment.items():
                    if volume_id is not None and vol != volume_id:
                        continue
                    for att_id, att in atts.items():
                        connector = att.get('connector') or {}
                        result[att_id] = {
                            'id': att_id, 'volume_id': vol,
                            'instance_uuid': att['instance_uuid'],
                            'host': connector.get('host'),
                            'connection_info': copy.deepcopy(
                                self._infos.get(att_id))}
                return result

        def ops(self, volume_id=None):
            """The operations recorded, ``[(op, volume id)]``."""
            return [(e.op, e.volume_id) for e in list(self.events)
                    if volume_id is None or e.volume_id == volume_id]

        def _volume_of(self, attachment_id):
            for vol, atts in self.volume_to_attachment.items():
                if attachment_id in atts:
                    return vol, atts[attachment_id]
            return None, None

        def _record(self, op, attachment_id):
            vol, att = self._volume_of(attachment_id)
            connector = (att or {}).get('connector') or {}
            self.events.append(AttachmentEvent(
                op, attachment_id, vol, (att or {}).get('instance_uuid'),
                connector.get('host')))

        def _connect(self, attachment_id, volume_id, connector):
            info = self.connection_info_for(volume_id, connector)
            info['serial'] = volume_id
            self._infos[attachment_id] = info
            return copy.deepcopy(info)

        def setUp(self):
            super(XapiCinderFixture, self).setUp()
            parent = {name: getattr(cinder.API, name) for name in (
                'attachment_create', 'attachment_update',
                'attachment_complete', 'attachment_delete',
                'attachment_get')}
            fx = self

            def attachment_create(_self, context, volume_id, instance_uuid,
                                  connector=None, mountpoint=None):
                ref = parent['attachment_create'](
                    _self, context, volume_id, instance_uuid,
                    connector=connector, mountpoint=mountpoint)
                with fx._lock:
                    fx._record('create', ref['id'])
                    ref = {'id': ref['id'], 'connection_info': None}
                    if connector:
                        ref['connection_info'] = fx._connect(
                            ref['id'], volume_id, connector)
                return ref

            def attachment_update(_self, context, attachment_id, connector,
                                  mountpoint=None):
                parent['attachment_update'](_self, context, attachment_id,
                                            connector, mountpoint)
                with fx._lock:
                    volume_id, _ = fx._volume_of(attachment_id)
                    fx._record('update', attachment_id)
                    return {'id': attachment_id,
                            'connection_info': fx._connect(
                                attachment_id, volume_id, connector)}

            def attachment_get(_self, context, attachment_id):
                parent['attachment_get'](_self, context, attachment_id)
                with fx._lock:
                    return {'id': attachment_id,
                            'connection_info': copy.deepcopy(
                                fx._infos.get(attachment_id))}

            def attachment_complete(_self, context, attachment_id):
                parent['attachment_complete'](_self, context, attachment_id)
                with fx._lock:
                    fx._record('complete', attachment_id)

            def attachment_delete(_self, context, attachment_id):
                with fx._lock:
                    fx._record('delete', attachment_id)
                parent['attachment_delete'](_self, context, attachment_id)
                with fx._lock:
                    fx._infos.pop(attachment_id, None)

            for name, func in (('attachment_create', attachment_create),
                               ('attachment_update', attachment_update),
                               ('attachment_get', attachment_get),
                               ('attachment_complete', attachment_complete),
                               ('attachment_delete', attachment_delete)):
                self.test.stub_out('nova.volume.cinder.API.' + name, func)

    return XapiCinderFixture


def adopt_spawn(deployment):
    """A ``XenAPIDriver.spawn`` that adopts a VM the mock scenario runs.

    The VM waiting under the server's display name (see
    ``Deployment.boot``) gets nova's instance name as its name label and
    the instance uuid as ``other_config['nova_uuid']`` (set in the mock's
    records: the hypervisor's side of the fake); then nova's own
    ``VMOps._create_vifs`` and ``_post_start_actions`` plug the instance's
    VIFs over XAPI, as the end of a real spawn does. Disks are not
    touched: the scenario already attached the volumes.
    """

    def spawn(self, context, instance, image_meta, injected_files,
              admin_password, allocations, network_info=None,
              block_device_info=None, power_on=True, accel_info=None):
        pool_name = deployment.pool_of_driver(self)
        label = deployment.take_adoption(instance.display_name)
        pool = deployment.xapi.pool(pool_name)
        with pool.world.lock:
            refs = pool.db.find('VM', name_label=label)
            if len(refs) != 1:
                raise RuntimeError(
                    'adopt-spawn: pool %s runs %d VMs named %s, not one; '
                    'add the instance to the scenario first'
                    % (pool_name, len(refs), label))
            rec = pool.db.get('VM', refs[0])
            rec['name_label'] = instance.name
            rec['other_config']['nova_uuid'] = instance.uuid
        LOG.debug('adopted VM %s of pool %s as %s', label, pool_name,
                  instance.name)
        self._vmops._create_vifs(instance, refs[0], network_info or [])
        self._vmops._post_start_actions(instance)

    return spawn
