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

"""Hostile input, as property tests (hypothesis).

Connection data, maps and primitives an attacker (or a broken node) could
send.
"""

import copy

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from nova import exception as nova_exception
from nova.objects import base as nova_base
from oslo_versionedobjects import exception as ovo_exception

from nova_xenapi_sr import exception
from nova_xenapi_sr import naming
from nova_xenapi_sr.objects import migrate_data
from nova_xenapi_sr.virt import destination
from nova_xenapi_sr.virt import source
from nova_xenapi_sr.virt import volumes
from nova_xenapi_sr.virt import where
from nova_xenapi_sr_tools import fixture as xs_fixture
from tests import base
from tests.unit.virt import fakes
from tests.unit.virt.test_source import bdi
from tests.unit.virt.test_source import connection_info

#: Text an attacker would try in a XAPI where expression.
_HOSTILE = st.sampled_from([
    '"', '\\', '" or field "uuid" = "', ' or ', '\n', 'a\n', '\x00', '',
    ' ', 'FA15E-D15C-', 'OpaqueRef:x', '*', '%s', 'é', '\t'])
_TEXT = st.one_of(_HOSTILE, st.text(max_size=12),
                  st.from_regex(r'[a-z0-9-]{1,8}', fullmatch=True))
_IDS = st.sampled_from(['vol-1', 'vol-2', 'vol-3'])
_PORTALS = st.sampled_from(['192.0.2.10:3260', '192.0.2.20:3260',
                            '198.51.100.9:3260'])
_IQNS = st.sampled_from(['iqn.2010-10.org.openstack:a',
                         'iqn.2010-10.org.openstack:b'])
#: Only reads may happen before a refusal (``PBD.get_all_records``: the
#: destination's check for SRs already holding a volume's target).
_READS = ('get_all_records_where', 'get_all_records', 'get_by_uuid',
          'get_record')


@st.composite
def _attachment(draw):
    data = {'volume_id': draw(st.one_of(_IDS, _TEXT)),
            'target_portal': draw(st.one_of(_PORTALS, _TEXT)),
            'target_iqn': draw(st.one_of(_IQNS, _TEXT)),
            'target_lun': draw(st.one_of(st.integers(0, 3), _TEXT))}
    for key in draw(st.lists(st.sampled_from(sorted(data)), max_size=2)):
        data.pop(key, None)
    if draw(st.booleans()):
        data.update(auth_method='CHAP', auth_username='u',
                    auth_password=draw(st.one_of(st.none(), _TEXT)))
    return {'driver_volume_type': 'iscsi', 'data': data}


def _names_of(info):
    """Both SR names of a well-formed attachment, else ()."""
    try:
        return naming.sr_uuid_candidates(info['data'])
    except Exception:
        return ()


class TrustRuleTestCase(base.TestCase):
    """Any connection data, any map: only trusted names, or a refusal."""

    @settings(max_examples=300, deadline=None)
    @given(st.lists(_attachment(), min_size=1, max_size=3), st.data())
    def test_only_trusted_names_or_refused_before_any_write(self, infos,
                                                            data):
        every_name = [n for info in infos for n in _names_of(info)]
        sr_map = data.draw(st.dictionaries(
            st.one_of(_IDS, _TEXT),
            st.one_of(st.sampled_from(every_name or ['x']), _TEXT),
            max_size=3))
        session = fakes.FakeSession()
        # Some names already exist here, pointing at some target.
        for name in data.draw(st.lists(st.sampled_from(every_name or ['x']),
                                       max_size=2, unique=True)):
            ref = session.add('SR', 'OpaqueRef:%s' % name, uuid=name,
                              type=data.draw(st.sampled_from(['iscsi',
                                                              'lvm'])))
            session.add('PBD', 'OpaqueRef:pbd-%s' % name, SR=ref,
                        device_config={
                            'target': data.draw(st.sampled_from(
                                ['192.0.2.10', '198.51.100.9'])),
                            'targetIQN': data.draw(_IQNS)})
        block_device_info = bdi(*infos)
        snapshot = copy.deepcopy((block_device_info, sr_map))
        try:
            legacy = destination.validate(session, block_device_info, sr_map)
        except destination.UntrustedSRUuid as exc:
            self.assertTrue(str(exc))
            legacy = None
        except exception.InvalidConnectionData as exc:
            # connection data the SR's device_config cannot be built from
            # (an empty CHAP secret, say): refused, naming the volume
            self.assertIn('Connection data of volume', str(exc))
            legacy = None
        self.assertEqual(snapshot, (block_device_info, sr_map))
        for method, _args in session.calls:
            self.assertIn(method.partition('.')[2], _READS, method)
        if legacy is None:
            return
        # Accepted: every name is one of that very volume's two names.
        by_id = {vol.volume_id: vol
                 for vol in volumes.iscsi_volumes(block_device_info)}
        for volume_id, sr_uuid in sr_map.items():
            self.assertIn(sr_uuid, (by_id[volume_id].uuid5,
                                    by_id[volume_id].legacy))
        for volume_id, sr_uuid in legacy.items():
            self.assertEqual(by_id[volume_id].legacy, sr_uuid)
        injected = destination.inject(block_device_info, legacy,
                                      destination.sr_connection_data)
        for bdm in injected['block_device_mapping']:
            named = bdm['connection_info']['data'].get('sr_uuid')
            if named is not None:
                vol_id = str(bdm['connection_info']['data']['volume_id'])
                self.assertEqual(by_id[vol_id].legacy, named)


class PrimitiveTestCase(base.TestCase):
    """What crosses RPC: the 1.4 backport and hostile primitives."""

    def setUp(self):
        super(PrimitiveTestCase, self).setUp()
        self.useFixture(xs_fixture.ObjectRegistryFixture(
            register_extension=True))

    @settings(max_examples=200, deadline=None)
    @given(st.dictionaries(st.text(max_size=20), st.text(max_size=40),
                           max_size=5),
           st.sampled_from(['1.0', '1.1', '1.2', '1.3', '1.4']))
    def test_backport_never_leaks_the_map(self, sr_map, version):
        obj = migrate_data.XenapiLiveMigrateData(
            volume_sr_uuid_map=sr_map, destination_sr_ref='OpaqueRef:sr')
        primitive = obj.obj_to_primitive(target_version=version)
        self.assertEqual(version, primitive['nova_object.version'])
        self.assertNotIn('volume_sr_uuid_map',
                         primitive['nova_object.data'])
        self.assertNotIn('volume_sr_uuid_map',
                         primitive['nova_object.changes'])
        for leaked in sr_map.values():
            if leaked:
                self.assertNotIn(repr(leaked), repr(
                    primitive['nova_object.data']))

    def _primitive(self, version='1.5', **data):
        obj = migrate_data.XenapiLiveMigrateData(
            volume_sr_uuid_map={'vol-1': 'FA15E-D15C-vol-1'})
        primitive = obj.obj_to_primitive()
        primitive['nova_object.version'] = version
        primitive['nova_object.data'].update(data)
        return primitive

    def _load(self, primitive):
        # What nova's RPC serializer does first with what arrives.
        return nova_base.NovaObject.obj_from_primitive(primitive)

    @settings(max_examples=100, deadline=None)
    @given(st.one_of(
        st.tuples(st.integers(1, 9), st.integers(6, 99)).map(
            lambda v: '%d.%d' % v),
        st.tuples(st.integers(2, 9), st.integers(0, 9)).map(
            lambda v: '%d.%d' % v)))
    def test_unknown_version_rejected(self, version):
        error = self.assertRaises(ovo_exception.IncompatibleObjectVersion,
                                  self._load, self._primitive(version))
        self.assertIn(version, str(error))
        self.assertIn('XenapiLiveMigrateData', str(error))

    @settings(max_examples=100, deadline=None)
    @given(st.one_of(
        st.lists(st.text(max_size=5), max_size=3),
        st.integers(), st.text(max_size=5),
        st.dictionaries(st.text(max_size=5), st.one_of(
            st.none(), st.lists(st.integers(), max_size=2),
            st.dictionaries(st.text(max_size=2), st.text(max_size=2),
                            min_size=1, max_size=1)),
            min_size=1, max_size=2)))
    def test_wrong_field_type_rejected(self, value):
        error = self.assertRaises(ValueError, self._load,
                                  self._primitive(volume_sr_uuid_map=value))
        self.assertIn('volume_sr_uuid_map', str(error))


class MalformedConnectionDataTestCase(base.TestCase):
    """Each kind of malformed data: an error naming volume and problem.

    And no XAPI call, on the source and on the destination.
    """

    def _kinds(self):
        def info(**changes):
            result = connection_info('vol-7')
            result['data'].update((key, value)
                                  for key, value in changes.items()
                                  if value is not KeyError)
            for key, value in changes.items():
                if value is KeyError:
                    result['data'].pop(key, None)
            result['serial'] = 'vol-7'
            return result

        chap = dict(auth_method='CHAP', auth_username='u',
                    auth_password='p')
        not_a_dict = {'driver_volume_type': 'iscsi', 'serial': 'vol-7',
                      'data': ['vol-7']}
        return [
            ('data not a dict', not_a_dict, 'connection_info["data"]'),
            ('volume_id missing', info(volume_id=KeyError), 'volume_id'),
            ('volume_id null', info(volume_id=None), 'volume_id'),
            ('volume_id hostile', info(volume_id='v" or "1'), 'volume_id'),
            ('portal missing', info(target_portal=KeyError),
             'target_portal'),
            ('portal not a string', info(target_portal=['192.0.2.10']),
             'target_portal'),
            ('portal without host', info(target_portal=':3260'),
             'target_portal'),
            ('portal with a bad port', info(target_portal='192.0.2.10:x'),
             'target_portal'),
            ('IQN missing', info(target_iqn=KeyError), 'target_iqn'),
            ('IQN null', info(target_iqn=None), 'target_iqn'),
            ('IQN not a string', info(target_iqn=42), 'target_iqn'),
            ('IQN empty', info(target_iqn=''), 'target_iqn'),
            ('LUN not a number', info(target_lun='one'), 'target_lun'),
            ('LUN a list', info(target_lun=[1]), 'target_lun'),
            ('CHAP without user', info(**dict(
                chap, auth_username=KeyError)), 'auth_username'),
            ('CHAP null password', info(**dict(
                chap, auth_password=None)), 'auth_password'),
        ]

    def test_at_least_ten_kinds(self):
        self.assertGreaterEqual(len(self._kinds()), 10)

    def test_each_kind_names_the_volume_and_the_problem(self):
        for kind, info, key in self._kinds():
            volume_id = 'vol-7'
            block_device_info = bdi(info)
            try:
                parsed = volumes.iscsi_volumes(block_device_info)
                if parsed:
                    naming.device_config(parsed[0].connection_data)
            except exception.InvalidConnectionData as exc:
                error = exc
            else:
                self.fail('%s: accepted' % kind)
            self.assertIn(volume_id if 'hostile' not in kind else 'v" or',
                          str(error), kind)
            self.assertIn(key, str(error), kind)

            # The source refuses in its pre-check, before any XAPI call.
            session = fakes.FakeSession()
            if kind.startswith('CHAP'):
                continue    # CHAP is read when connecting, not naming
            refusal = self.assertRaises(
                nova_exception.MigrationPreCheckError,
                source.decide_sr_uuids, session, 'i-1', block_device_info)
            self.assertIn(key, str(refusal), kind)
            self.assertEqual([], session.calls, kind)
            # The destination refuses before any XAPI call.
            refusal = self.assertRaises(
                destination.UntrustedSRUuid, destination.validate, session,
                block_device_info, {'vol-7': 'FA15E-D15C-vol-7'})
            self.assertIn(key, str(refusal), kind)
            self.assertEqual([], session.calls, kind)


class WhereGuardTestCase(base.TestCase):
    """XAPI query strings built from volume data: escaped or refused."""

    @settings(max_examples=500, deadline=None)
    @given(st.lists(st.one_of(_TEXT, st.text()), min_size=0, max_size=4),
           st.sampled_from(['uuid', 'SR', 'name__label']))
    def test_every_value_is_one_quoted_literal_or_refused(self, values,
                                                          field):
        try:
            expression = where.field_in(field, values)
        except where.UnsafeWhereValue as exc:
            self.assertTrue(str(exc))
            return
        clauses = expression.split(' or ')
        unique = []
        for value in values:
            if str(value) not in unique:
                unique.append(str(value))
        self.assertEqual(len(unique), len(clauses))
        for value, clause in zip(unique, clauses):
            self.assertEqual('field "%s" = "%s"' % (field, value), clause)
            for bad in ('"', '\\', ' ', '\n', '\r', '\t', '\x00'):
                self.assertNotIn(bad, value)

    def test_known_attacks_refused(self):
        for value in ('x" or field "uuid" = "y', 'x\n', 'x\\', '', ' x',
                      'a b', 'x\x00', 'FA15E-D15C-v"'):
            self.assertRaises(where.UnsafeWhereValue, where.field_in,
                              'uuid', [value])
        self.assertRaises(where.UnsafeWhereValue, where.field_in, 'uuid', [])
