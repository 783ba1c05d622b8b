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

"""Stock nova 21 through a whole cross-pool live migration, for real.

nova 21.2.4's own services in this process (``nova_xenapi_sr_tools.
inprocess``), both computes running the stock
``nova.virt.xenapi.driver.XenAPIDriver`` with nova's own object registry
(no extension object), source on pool-a, destination on pool-b of the
mock XAPI. A uuid5-named SR migrates; a legacy-named SR fails with
``UUID_INVALID`` exactly as nova bug 1566622 describes, and the
destination is left clean.
"""

import fixtures

from nova_xenapi_sr import naming
from tests.functional import base

PORTAL = '192.0.2.10:3260'
IQN = 'iqn.2010-10.org.openstack:vol-1'
VOLUME = base.volume_uuid('vol-1')

SUCCESS_EVENTS = [
    ('conductor_live_migrate_instance', 'Success'),
    ('compute_check_can_live_migrate_destination', 'Success'),
    ('compute_check_can_live_migrate_source', 'Success'),
    ('compute_live_migration', 'Success'),
    ('compute_pre_live_migration', 'Success'),
    ('compute_post_live_migration_at_destination', 'Success'),
]
MIGRATE_SEND_FAILURE_EVENTS = SUCCESS_EVENTS[:-1] + [
    ('compute_rollback_live_migration_at_destination', 'Success'),
]


class StockNovaFlowTest(base.NovaTestCase):

    drivers = (base.STOCK, base.STOCK)
    stock_registry = True

    def _run(self, style, faults=()):
        sc = self.dep.new_scenario()
        source_ci = sc.add_volume(VOLUME, PORTAL, IQN, 1)
        sc.add_instance('pool-a', 1, volumes=[(VOLUME, style, '/dev/xvdb')])
        self.dep.reset(sc)
        self.xapi = self.dep.xapi
        server = self.dep.boot(1, [(VOLUME, '/dev/xvdb')])
        self.name = self.dep.vm_name(server)
        self.source_attachment = self.dep.bdms(server)[VOLUME].attachment_id
        self.dep.clear_calls()
        for pool, method, error in faults:
            self.xapi.inject_fault(pool, method, error=error)
        self.primitives = self.watch_migrate_data()
        self.migration = self.dep.live_migrate(server)
        self.instance = self.dep.instance(server)
        self.server = server
        return naming.uuid5_sr_uuid(source_ci['data'])

    def watch_migrate_data(self):
        """Record every XenapiLiveMigrateData nova's RPC serializes."""
        from nova.objects import base as obj_base
        seen = []
        serialize = obj_base.NovaObjectSerializer.serialize_entity

        def watching(serializer, context, entity):
            primitive = serialize(serializer, context, entity)
            if (isinstance(primitive, dict) and primitive.get(
                    'nova_object.name') == 'XenapiLiveMigrateData'):
                seen.append(primitive)
            return primitive
        self.useFixture(fixtures.MonkeyPatch(
            'nova.objects.base.NovaObjectSerializer.serialize_entity',
            watching))
        return seen

    def _iscsi_srs(self, pool):
        return sorted(r['uuid'] for r in
                      self.xapi.pool(pool).inspect()['SR'].values()
                      if r['type'] == 'iscsi')

    def _vm_pools(self):
        return [p for p, _ in self.xapi.find_vm(self.name)]

    def _assert_migrated(self, uuid5):
        self.assertEqual('completed', self.migration.status)
        self.assertEqual(SUCCESS_EVENTS, self.dep.events(self.server))
        self.assertEqual(('host-b', 'active', None),
                         (self.instance.host, self.instance.vm_state,
                          self.instance.task_state))
        self.assertEqual(['pool-b'], self._vm_pools())
        self.assertEqual([], self._iscsi_srs('pool-a'))
        self.assertEqual([uuid5], self._iscsi_srs('pool-b'))
        self.assertEqual([], self.xapi.copies)
        # the VM's volume VBD on pool-b points at the LUN's VDI
        view = self.xapi.pool('pool-b').inspect()
        vm = [r for r in view['VM'].values()
              if r['name_label'] == self.name][0]
        vdis = [view['VDI'][view['VBD'][v]['VDI']]['uuid']
                for v in vm['VBDs']]
        lun = self.xapi.array.target('192.0.2.10', 3260, IQN).luns[1]
        self.assertEqual([lun.vdi_uuid], vdis)
        # the migrate data crossed as stock 1.4 primitives only; the last
        # (the destination's pre_live_migration reply) maps the SR
        self.assertTrue(self.primitives)
        self.assertEqual({'1.4'}, {p['nova_object.version']
                                   for p in self.primitives})
        self.assertEqual({uuid5}, set(
            self.primitives[-1]['nova_object.data']['sr_uuid_map']))
        # nova moved the BDM to the destination's attachment
        bdm = self.dep.bdms(self.server)[VOLUME]
        self.assertNotEqual(self.source_attachment, bdm.attachment_id)
        self.assertEqual([bdm.attachment_id],
                         list(self.dep.cinder.attachments(VOLUME)))

    def test_uuid5_sr_migrates(self):
        uuid5 = self._run(naming.UUID5)
        self._assert_migrated(uuid5)
        calls = [m for m, _ in self.xapi.pool('pool-a').calls()]
        self.assertIn('VM.migrate_send', calls)
        self.assertIn('SR.forget', calls)

    def test_vif_plugged_on_the_destination(self):
        uuid5 = self._run(naming.UUID5)
        self._assert_migrated(uuid5)
        view = self.xapi.pool('pool-b').inspect()
        self.assertEqual(1, len(view['VIF']))
        commands = [c for c, _ in self.xapi.pool('pool-b').network_commands]
        self.assertIn('ovs_create_port', commands)

    def test_legacy_sr_fails_like_bug_1566622(self):
        uuid5 = self._run(naming.LEGACY)
        self.assertEqual('error', self.migration.status)
        self.assertEqual(MIGRATE_SEND_FAILURE_EVENTS,
                         self.dep.events(self.server))
        # the driver's live_migration failed: nova sets ERROR
        self.assertEqual(('host-a', 'error', None),
                         (self.instance.host, self.instance.vm_state,
                          self.instance.task_state))
        self.assertIn('Migrate Send failed', self.logger.output)
        calls = self.xapi.pool('pool-a').calls()
        self.assertIn(('SR.get_by_uuid', (uuid5,)), calls)
        self.assertNotIn('VM.migrate_send', [m for m, _ in calls])
        self.assertIn("['UUID_INVALID', 'SR', '%s']" % uuid5,
                      self.logger.output)
        # the VM is still running on the source only, with its legacy SR
        self.assertEqual(['pool-a'], self._vm_pools())
        self.assertEqual([naming.legacy_sr_uuid(VOLUME)],
                         self._iscsi_srs('pool-a'))
        # the destination forgot the SR it introduced: nothing left behind
        self.assertEqual([], self._iscsi_srs('pool-b'))
        self.assertEqual({}, self.xapi.pool('pool-b').inspect()['secret'])
        self.assertEqual([], self.xapi.copies)
        # nova put the BDM back on the source's attachment
        self.assertEqual(self.source_attachment,
                         self.dep.bdms(self.server)[VOLUME].attachment_id)
        self.assertEqual([self.source_attachment],
                         list(self.dep.cinder.attachments(VOLUME)))

    def test_failed_pre_live_migration_is_rolled_back(self):
        error = ['SR_BACKEND_FAILURE_68', '', 'iSCSI login failed', '']
        uuid5 = self._run(naming.UUID5,
                          faults=[('pool-b', 'PBD.plug', error)])
        self.assertEqual('error', self.migration.status)
        events = self.dep.events(self.server)
        self.assertIn(('compute_pre_live_migration', 'Error'), events)
        self.assertNotIn(('compute_post_live_migration_at_destination',
                          'Success'), events)
        self.assertEqual(
            ('compute_rollback_live_migration_at_destination', 'Success'),
            events[-1])
        # nova records only the class of a non-nova exception in the
        # event; the compute logs the XAPI failure itself
        self.assertIn('compute_pre_live_migration: Failure\n',
                      '\n'.join(self.dep.event_errors(self.server)))
        self.assertIn("SR_BACKEND_FAILURE_68', '', 'iSCSI login failed'",
                      self.logger.output)
        # pre_live_migration failed: nova keeps the instance ACTIVE
        self.assertEqual(('host-a', 'active', None),
                         (self.instance.host, self.instance.vm_state,
                          self.instance.task_state))
        self.assertEqual(['pool-a'], self._vm_pools())
        self.assertEqual([uuid5], self._iscsi_srs('pool-a'))
        # stock nova leaves the half-introduced SR to the rollback, which
        # forgets it: nothing is left behind
        self.assertEqual([], self._iscsi_srs('pool-b'))
        pbds = self.xapi.pool('pool-b').inspect()['PBD'].values()
        self.assertEqual([], [p for p in pbds
                              if 'targetIQN' in p['device_config']])
        self.assertEqual(self.source_attachment,
                         self.dep.bdms(self.server)[VOLUME].attachment_id)
        self.assertEqual([self.source_attachment],
                         list(self.dep.cinder.attachments(VOLUME)))
