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

"""Exact XAPI call counts of one migration with the extension on both ends.

The counts come from the mock's call log and are the same in every run.
As in ``benchmarks/migration_calls.py``, the server is booted through
nova's API and live-migrated by nova's real services in this process
(``nova_xenapi_sr_tools.inprocess``), counted from the migration request
on; the volumes are uuid5-named. With V volumes on S SRs (``tox -e bench
-- --breakdown`` prints them by method and by the nova step that issued
them):

* source: 50 + 2S. nova's fixed steps (the pre-check: VM lookup, host
  software versions, ``host_in_this_pool``, ``VM.assert_can_migrate``;
  before the move: the PV-driver check in xenstore, the kernel/ramdisk
  record; after it: the VIF and bridge cleanup through the ``xenhost``
  plugin, and one refresh of the host statistics), the bulk reads
  (the VM's VBDs, VIFs, iSCSI SRs and the pool's default SR once per
  step), ``migrate_send``, then ``PBD.unplug`` and ``SR.forget`` per SR,
  the PBDs taken from the bulk SR query;
* destination, from nova: 43 + 4S + V (nova's fixed steps: network,
  default SR, ``migrate_receive``, the interim network, the VIF plugging
  through the ``xenhost`` plugin, the power state; one existence query for
  all SRs, introduce, PBD create, plug and scan per missing SR, one VDI
  query for the LUNs of all SRs; per volume the ``base_mirror`` write);
* destination, from the source's xapi during ``VM.migrate_send`` (the
  mock follows ``xapi_vm_migrate.ml``): 36 + 11V, the same for stock nova.
  ``assert_can_migrate`` 15 + V (the host's platform version, the SM
  records, per disk its SR's uuid, the virtual hardware platform
  versions, the host enabled, its CPU info twice, the dry-run metadata
  import: 8 with its task, the pGPUs); ``migrate_send'`` 4 (the pool, its
  default and suspend-image SRs, the host's) and per disk 10 (the SR's
  uuid, its PBDs on the master and on the host: pool, master, PBDs, host,
  enabled, attached; the VDI by uuid, its SR, the VDI by uuid again),
  then 14 + 3 per VIF (the import: 8, the resources, the networks, the
  VIFs and per VIF its network, device and bridge, the vGPUs,
  ``VM.pool_migrate_complete``, ``/messages``); nova's server has one VIF.

The issue's lower bound is 2S + 4 (source) and 3S + 4 (destination, from
nova).
"""

from nova_xenapi_sr import naming
from tests.functional.virt import test_live_migration as lm


def source_calls(srs):
    return 50 + 2 * srs


def dest_nova_calls(srs, volumes):
    return 43 + 4 * srs + volumes


def dest_xapi_calls(volumes, vifs=1):
    """What the source's xapi asks the destination in VM.migrate_send."""
    return 33 + 3 * vifs + 11 * volumes


def dest_calls(srs, volumes):
    return dest_nova_calls(srs, volumes) + dest_xapi_calls(volumes)


def bound(srs):
    return {'pool-a': 2 * srs + 4, 'pool-b': 3 * srs + 4}


class CallCountTestCase(lm.LiveMigrationTestCase):

    #: The first migration of a deployment also fills nova's caches (the
    #: computes' volume connectors): one warm-up migration per class.
    warmed = False

    def counts(self, volumes):
        if not type(self).warmed:
            self.build(self.own(1))
            self.migrate()
            type(self).warmed = True
        self.build(volumes)
        self.migrate()
        self.assertIsNone(self.error)
        self.assert_nova_migrated()
        return {pool: len(self.xapi.pool(pool).calls())
                for pool in ('pool-a', 'pool-b')}

    def own(self, count, style=naming.UUID5):
        return [lm.Volume('vol-%d' % i, style, target='t-%d' % i)
                for i in range(count)]

    def shared(self, count):
        return [lm.Volume('vol-%d' % i, naming.UUID5, target='shared',
                          lun=i + 1) for i in range(count)]

    def test_own_srs(self):
        for volumes in (1, 4):
            got = self.counts(self.own(volumes))
            self.assertEqual({'pool-a': source_calls(volumes),
                              'pool-b': dest_calls(volumes, volumes)},
                             got, volumes)

    def test_one_shared_sr(self):
        for volumes in (2, 8):
            got = self.counts(self.shared(volumes))
            self.assertEqual({'pool-a': source_calls(1),
                              'pool-b': dest_calls(1, volumes)},
                             got, volumes)

    def test_twelve_srs(self):
        # nova's device names end at xvdp; 64 volumes: the benchmark.
        got = self.counts(self.own(12))
        self.assertEqual({'pool-a': source_calls(12),
                          'pool-b': dest_calls(12, 12)}, got)

    def test_each_sr_costs_the_source_what_it_costs_the_bound(self):
        # Each SR more costs the source 2 calls (unplug, forget), as in
        # the bound; the destination 16 with its volume: from nova 4 per
        # SR (the bound: 3, and a scan on real XAPI) and 1 per volume, 11
        # from the source's xapi.
        small, large = self.counts(self.own(2)), self.counts(self.own(6))
        self.assertEqual(2 * 4, large['pool-a'] - small['pool-a'])
        self.assertEqual(bound(6)['pool-a'] - bound(2)['pool-a'],
                         large['pool-a'] - small['pool-a'])
        self.assertEqual(16 * 4, large['pool-b'] - small['pool-b'])

    def test_destination_volumes_on_one_sr_cost_one_call_each(self):
        # nova's base_mirror write; the source's xapi adds 11 per disk.
        small, large = self.counts(self.shared(2)), self.counts(
            self.shared(12))
        self.assertEqual((1 + 11) * 10, large['pool-b'] - small['pool-b'])

    def test_source_does_not_grow_with_volumes_on_one_sr(self):
        self.assertEqual(self.counts(self.shared(2))['pool-a'],
                         self.counts(self.shared(12))['pool-a'])

    def test_legacy_volumes(self):
        # Legacy SRs are one per volume; the destination checks first that
        # none of their names exists here (one SR query).
        got = self.counts(self.own(4, naming.LEGACY))
        self.assertEqual({'pool-a': source_calls(4),
                          'pool-b': dest_calls(4, 4) + 1}, got)
