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
on; the volumes are uuid5-named: with V volumes on S SRs,

* source: 70 + 2S (nova's pre-checks, host stats and PV-driver steps, its
  plugin calls, the bulk reads, ``migrate_send``, then ``PBD.unplug`` and
  ``SR.forget`` per SR, the PBDs taken from the bulk SR query);
* destination: 42 + 6S + 2V on the mock (nova's fixed steps: network,
  default SR, ``migrate_receive``, host stats, plugin calls; per SR one
  existence check,
  introduce, PBD create and plug, scan, and one VDI query for all its
  LUNs; per volume ``VDI.introduce`` (the mock's scanned VDIs are
  unmanaged, real XAPI's are managed) and the ``base_mirror`` write).

The issue's lower bound is 2S + 4 (source) and 3S + 4 (destination).
"""

from nova_xenapi_sr import naming
from tests.functional.virt import test_live_migration as lm


def source_calls(srs):
    return 70 + 2 * srs


def dest_calls(srs, volumes):
    return 42 + 6 * srs + 2 * volumes


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
        # the bound; the destination 8 with its volume, the bound 3.
        small, large = self.counts(self.own(2)), self.counts(self.own(6))
        self.assertEqual(2 * 4, large['pool-a'] - small['pool-a'])
        self.assertEqual(bound(6)['pool-a'] - bound(2)['pool-a'],
                         large['pool-a'] - small['pool-a'])
        self.assertEqual(8 * 4, large['pool-b'] - small['pool-b'])

    def test_destination_volumes_on_one_sr_cost_two_calls_each(self):
        small, large = self.counts(self.shared(2)), self.counts(
            self.shared(12))
        self.assertEqual(2 * 10, large['pool-b'] - small['pool-b'])

    def test_source_does_not_grow_with_volumes_on_one_sr(self):
        self.assertEqual(self.counts(self.shared(2))['pool-a'],
                         self.counts(self.shared(12))['pool-a'])

    def test_legacy_volumes(self):
        # Legacy SRs are one per volume; the destination checks first that
        # none of their names exists here (one SR query).
        got = self.counts(self.own(4, naming.LEGACY))
        self.assertEqual({'pool-a': source_calls(4),
                          'pool-b': dest_calls(4, 4) + 1}, got)
