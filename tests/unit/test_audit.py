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

"""The audit's verdicts, on records the mock XAPI's builder makes (no
server: the records are exported as ``get_all_records`` answers them),
its read of a pool, and its XML-RPC decoder."""

import io
import os
from xml.parsers import expat
import xmlrpc.client

import fixtures

from nova_xenapi_sr import audit
from nova_xenapi_sr import naming
from nova_xenapi_sr_tools import audit as audit_cmd
from nova_xenapi_sr_tools.mockxapi import faults
from nova_xenapi_sr_tools.mockxapi import pool as pool_mod
from nova_xenapi_sr_tools.mockxapi import reply
from nova_xenapi_sr_tools.mockxapi import scenario as scenario_mod
from tests import base

PORTAL = '192.0.2.10:3260'
IQN = 'iqn.2010-10.org.openstack:target-1'
OTHER_PORTAL = '192.0.2.30:3260'
OTHER_IQN = 'iqn.2010-10.org.openstack:target-2'


def states(sc, names=None):
    """PoolStates of every pool of ``sc``, as the audit would read them."""
    world = pool_mod.World()
    scenario_mod.build(world, sc)
    result = []
    for name in names or [p['name'] for p in sc.pools]:
        db = world.pools[name].db
        records = {cls: db.export_all(cls) for cls in audit.CLASSES}
        result.append(audit.PoolState(name, 'http://%s' % name, records))
    return result


def scenario():
    sc = scenario_mod.Scenario()
    sc.add_pool('pool-a', hosts=['host-a'])
    sc.add_pool('pool-b', hosts=['host-b'])
    for lun in (1, 2, 3, 4):
        sc.add_volume('vol-%d' % lun, PORTAL, IQN, lun)
    sc.add_volume('vol-o', OTHER_PORTAL, OTHER_IQN, 1)
    return sc


def by_device(volumes, instance_id):
    name = 'instance-%08x' % instance_id
    return {v.device: v for v in volumes if v.vm == name}


class TestVerdicts(base.TestCase):

    def test_uuid5_alone_migrates_with_stock_nova(self):
        sc = scenario()
        sc.add_instance('pool-a', 1, volumes=[('vol-1', 'uuid5',
                                               '/dev/xvdb')])
        [vol] = audit.audit(states(sc))
        self.assertEqual(audit.STOCK, vol.verdict)
        self.assertEqual(naming.UUID5, vol.style)
        self.assertEqual('%s %s' % (PORTAL, IQN), vol.target)
        self.assertEqual(sc.instances[0]['nova_uuid'], vol.instance)
        self.assertEqual(('pool-a', 'host-a', 'xvdb', ''),
                         (vol.pool, vol.host, vol.device, vol.volume_id))
        self.assertEqual((), vol.blocked)
        self.assertEqual((), vol.reasons)

    def test_legacy_needs_both_ends(self):
        sc = scenario()
        sc.add_instance('pool-a', 1, volumes=[('vol-1', 'legacy',
                                               '/dev/xvdb')])
        [vol] = audit.audit(states(sc))
        self.assertEqual(audit.BOTH_ENDS, vol.verdict)
        self.assertEqual(('legacy', 'vol-1', 'FA15E-D15C-vol-1'),
                         (vol.style, vol.volume_id, vol.sr_uuid))
        self.assertIn('UUID_INVALID', vol.reasons[0])
        self.assertIn('conductors', vol.actions[0])

    def test_name_label_without_nova_uuid(self):
        sc = scenario()
        sc.add_instance('pool-a', 1, volumes=[('vol-1', 'uuid5',
                                               '/dev/xvdb')])
        [state] = states(sc, ['pool-a'])
        for rec in state.vms.values():
            rec['other_config'].pop('nova_uuid', None)
        [vol] = audit.audit([state])
        self.assertEqual('instance-00000001', vol.instance)

    def test_two_volumes_behind_one_target_need_the_source(self):
        sc = scenario()
        sc.add_instance('pool-a', 1, volumes=[
            ('vol-1', 'uuid5', '/dev/xvdb'), ('vol-2', 'uuid5', '/dev/xvdc'),
            ('vol-o', 'uuid5', '/dev/xvdd')])
        vols = by_device(audit.audit(states(sc)), 1)
        self.assertEqual(audit.SOURCE, vols['xvdb'].verdict)
        self.assertIn('xvdc', vols['xvdb'].reasons[0])
        self.assertEqual(audit.SOURCE, vols['xvdc'].verdict)
        self.assertEqual(audit.STOCK, vols['xvdd'].verdict)

    def test_neighbour_on_the_source_needs_the_source(self):
        sc = scenario()
        sc.add_instance('pool-a', 1, volumes=[('vol-1', 'uuid5',
                                               '/dev/xvdb')])
        sc.add_instance('pool-a', 2, volumes=[('vol-2', 'uuid5',
                                               '/dev/xvdb')])
        volumes = audit.audit(states(sc))
        one = by_device(volumes, 1)['xvdb']
        self.assertEqual(audit.SOURCE, one.verdict)
        self.assertIn(sc.instances[1]['nova_uuid'], one.reasons[0])

    def test_halted_vms_are_not_neighbours(self):
        sc = scenario()
        sc.add_instance('pool-a', 1, volumes=[('vol-1', 'uuid5',
                                               '/dev/xvdb')])
        sc.add_instance('pool-a', 2, volumes=[('vol-2', 'uuid5',
                                               '/dev/xvdb')])
        [state] = states(sc, ['pool-a'])
        for rec in state.vms.values():
            if not rec['is_control_domain']:
                rec['resident_on'] = audit.NULL_REF
                rec['power_state'] = 'Halted'
        volumes = audit.audit([state])
        self.assertEqual([audit.STOCK] * 2, [v.verdict for v in volumes])
        self.assertEqual(['', ''], [v.host for v in volumes])

    def test_uuid5_of_another_target_cannot_migrate(self):
        sc = scenario()
        sc.add_instance('pool-a', 1, volumes=[('vol-1', 'uuid5',
                                               '/dev/xvdb')])
        [state] = states(sc, ['pool-a'])
        # Rename the instance's SR to the uuid5 name of another target
        # than the one its PBD points at (a pool one cannot build through
        # nova, only by hand: the scenario builder refuses it).
        wrong = naming.target_sr_uuid('192.0.2.99', '3260', 'iqn.x')
        [ref] = [ref for ref, rec in state.srs.items()
                 if rec['type'] == 'iscsi']
        state.srs[ref]['uuid'] = wrong
        state = audit.PoolState('pool-a', state.url, {
            'host': state.hosts, 'VM': state.vms, 'VBD': state.vbds,
            'SR': state.srs, 'PBD': state.pbds})
        [vol] = audit.audit([state])
        self.assertEqual((naming.UNKNOWN, audit.NOWHERE),
                         (vol.style, vol.verdict))
        self.assertIn('not nova\'s name for its target', vol.reasons[0])
        self.assertTrue(audit.cannot_migrate_anywhere(vol, 1))

    def test_destination_with_other_style_on_the_target_blocks(self):
        sc = scenario()
        sc.add_instance('pool-a', 1, volumes=[('vol-1', 'legacy',
                                               '/dev/xvdb')])
        sc.add_instance('pool-a', 3, volumes=[('vol-o', 'uuid5',
                                               '/dev/xvdb')])
        sc.add_instance('pool-b', 2, volumes=[('vol-2', 'uuid5',
                                               '/dev/xvdb')])
        volumes = audit.audit(states(sc))
        one = by_device(volumes, 1)['xvdb']
        self.assertEqual(('pool-b',), one.blocked)
        self.assertEqual(audit.BOTH_ENDS, one.verdict)
        uuid5 = naming.target_sr_uuid('192.0.2.10', '3260', IQN)
        self.assertIn('Pool pool-b already reaches target %s %s through '
                      'uuid5 SR %s' % (PORTAL, IQN, uuid5), one.reasons[1])
        self.assertIn(sc.instances[2]['nova_uuid'], one.actions[1])
        self.assertTrue(audit.cannot_migrate_anywhere(one, 2))
        # The other way round: pool-b's uuid5 volume cannot come to
        # pool-a, which reaches the target through a legacy SR.
        two = by_device(volumes, 2)['xvdb']
        self.assertEqual(('pool-a',), two.blocked)
        self.assertIn('legacy SR FA15E-D15C-vol-1', two.reasons[0])
        # An instance on another target is not blocked.
        self.assertEqual((), by_device(volumes, 3)['xvdb'].blocked)

    def test_unused_sr_in_the_way_says_forget_it(self):
        sc = scenario()
        sc.add_instance('pool-a', 1, volumes=[('vol-1', 'uuid5',
                                               '/dev/xvdb')])
        sc.add_sr('pool-b', 'vol-3', style='legacy')
        [vol] = audit.audit(states(sc))
        self.assertEqual(('pool-b',), vol.blocked)
        self.assertIn('xe sr-forget uuid=FA15E-D15C-vol-3', vol.actions[0])

    def test_same_sr_on_the_destination_does_not_block(self):
        sc = scenario()
        sc.add_instance('pool-a', 1, volumes=[('vol-1', 'uuid5',
                                               '/dev/xvdb')])
        sc.add_instance('pool-b', 2, volumes=[('vol-2', 'uuid5',
                                               '/dev/xvdb')])
        volumes = audit.audit(states(sc))
        self.assertEqual([(), ()], [v.blocked for v in volumes])

    def test_stale_sr_of_the_same_name_blocks(self):
        sc = scenario()
        sc.add_instance('pool-a', 1, volumes=[('vol-1', 'legacy',
                                               '/dev/xvdb')])
        sc.add_sr('pool-b', 'vol-o', sr_uuid='FA15E-D15C-vol-1')
        [vol] = audit.audit(states(sc))
        self.assertEqual(('pool-b',), vol.blocked)
        self.assertIn('points at %s %s' % (OTHER_PORTAL, OTHER_IQN),
                      vol.reasons[1])

    def test_order_and_control_domains(self):
        sc = scenario()
        sc.add_instance('pool-b', 2, volumes=[('vol-2', 'uuid5',
                                               '/dev/xvdc')])
        sc.add_instance('pool-a', 1, volumes=[('vol-1', 'uuid5',
                                               '/dev/xvdb')])
        volumes = audit.audit(states(sc, ['pool-b', 'pool-a']))
        self.assertEqual(['pool-b', 'pool-a'], [v.pool for v in volumes])


class FakeSession(object):
    """``audit.Session``'s ``call`` over a mock pool, without HTTP.

    The reply goes through the mock's reply writer and the audit's
    decoder in blocks, as over the wire.
    """

    BLOCK = 4096

    def __init__(self, pool):
        self.pool = pool
        self.url = 'http://%s' % pool.name
        self.ref = pool.new_session('root')
        self.calls = []
        self.sizes = []

    def call(self, method, *args, received=None):
        self.calls.append((method, args))
        outcome = self.pool.handle(method, [self.ref] + list(args))
        data = reply.response(outcome.payload())
        decoder = audit._Decoder()
        for start in range(0, len(data), self.BLOCK):
            decoder.feed(data[start:start + self.BLOCK])
            if received is not None:
                received(min(start + self.BLOCK, len(data)))
        self.sizes.append(len(data))
        [envelope] = decoder.close()
        if envelope['Status'] != 'Success':
            session = audit.Session.__new__(audit.Session)
            session.url, session.username = self.url, 'root'
            raise session._failure(method, envelope['ErrorDescription'])
        return envelope['Value']


class TestReadPool(base.TestCase):

    def setUp(self):
        super(TestReadPool, self).setUp()
        sc = scenario()
        sc.add_instance('pool-a', 1, volumes=[('vol-1', 'legacy',
                                               '/dev/xvdb')])
        sc.add_instance('pool-a', 2, volumes=[('vol-o', 'uuid5',
                                               '/dev/xvdb')])
        self.world = pool_mod.World()
        scenario_mod.build(self.world, sc)
        self.pool = self.world.pools['pool-a']
        self.session = FakeSession(self.pool)

    def test_one_event_from_reads_every_class(self):
        state = audit.read_pool(self.session, 'pool-a')
        self.assertEqual([('event.from', (['host', 'VM', 'VBD', 'SR',
                                           'PBD'], '', 0.0))],
                         self.session.calls)
        db = self.pool.db
        for cls, records in (('host', state.hosts), ('VM', state.vms),
                             ('VBD', state.vbds), ('SR', state.srs),
                             ('PBD', state.pbds)):
            self.assertEqual(pool_mod.wire(dict(db.export_all(cls))),
                             records, cls)
        self.assertEqual(2, len(audit.audit([state])))

    def test_progress(self):
        seen = []
        audit.read_pool(self.session, 'pool-a',
                        lambda *args: seen.append(args))
        size = self.session.sizes[0]
        self.assertEqual(('pool-a', 0, False), seen[0])
        self.assertEqual(('pool-a', size, True), seen[-1])
        middle = [received for _, received, done in seen[1:-1]]
        self.assertEqual(list(range(4096, size, 4096)) + [size], middle)

    def test_api_version_is_checked(self):
        with self.world.lock:
            self.pool.db.get('host', self.pool.master)[
                'API_version_minor'] = '4'
        exc = self.assertRaises(audit.UnsupportedVersion, audit.read_pool,
                                self.session, 'pool-a')
        self.assertIn('runs XAPI API 2.4, older than 2.5', str(exc))

    def test_xapi_without_event_from_is_too_old(self):
        self.pool.injector.add_fault(faults.FaultRule(
            'event.from', error=['MESSAGE_METHOD_UNKNOWN', 'event.from']))
        exc = self.assertRaises(audit.UnsupportedVersion, audit.read_pool,
                                self.session, 'pool-a')
        self.assertEqual('XAPI at http://pool-a does not know event.from '
                         '(XenServer 6.0 and later have it): it is older '
                         'than XenServer 7.0, the oldest that nova 21 and '
                         'the audit support: upgrade XenServer first.',
                         str(exc))

    def test_events_without_snapshots(self):
        # event.from before XenServer 6.1 sent no snapshots
        session = FakeSession(self.pool)
        real = session.call

        def call(method, *args, **kwargs):
            value = real(method, *args, **kwargs)
            for event in value['events']:
                del event['snapshot']
            return value

        session.call = call
        exc = self.assertRaises(audit.UnsupportedVersion, audit.read_pool,
                                session, 'pool-a')
        self.assertIn('reports no XAPI API version', str(exc))

    def test_other_unknown_methods_are_plain_failures(self):
        session = audit.Session.__new__(audit.Session)
        session.url, session.username = 'http://x', 'root'
        exc = session._failure('VM.nope', ['MESSAGE_METHOD_UNKNOWN',
                                           'VM.nope'])
        self.assertNotIsInstance(exc, audit.UnsupportedVersion)
        self.assertEqual('XAPI at http://x failed VM.nope: '
                         'MESSAGE_METHOD_UNKNOWN VM.nope', str(exc))


class TestRecordsOfEvents(base.TestCase):

    def event(self, cls, ref, op='add', snapshot=True):
        ev = {'id': '1', 'timestamp': '0.0', 'class': cls,
              'operation': op, 'ref': ref}
        if snapshot:
            ev['snapshot'] = {'uuid': ref}
        return ev

    def test_classes_and_operations(self):
        reply_value = {'token': '', 'valid_ref_counts': {}, 'events': [
            self.event('vm', 'v1'), self.event('VM', 'v2'),
            self.event('host', 'h1'), self.event('vdi', 'x1'),
            self.event('sr', 's1'), self.event('sr', 's1', 'mod'),
            self.event('pbd', 'p1'), self.event('pbd', 'p1', 'del', False),
            self.event('vbd', 'b1', snapshot=False), 'not an event']}
        records = audit.records_of_events('http://x', reply_value)
        self.assertEqual({'host': {'h1': {'uuid': 'h1'}},
                          'VM': {'v1': {'uuid': 'v1'},
                                 'v2': {'uuid': 'v2'}},
                          'VBD': {}, 'SR': {'s1': {'uuid': 's1'}},
                          'PBD': {}}, records)

    def test_not_an_event_batch(self):
        for value in ('', {}, {'events': 'x'}, ['x']):
            exc = self.assertRaises(audit.Unreachable,
                                    audit.records_of_events, 'http://x',
                                    value)
            self.assertIn('http://x does not answer as XAPI does',
                          str(exc))


class TestProgress(base.TestCase):

    def setUp(self):
        super(TestProgress, self).setUp()
        self.stream = io.StringIO()
        self.now = [0.0]
        self.progress = audit_cmd.Progress(self.stream,
                                           clock=lambda: self.now[0])

    def shown(self):
        return self.stream.getvalue().split('\r\033[K')[1:]

    def test_one_pool(self):
        self.progress('pool-a', 0, False)
        self.progress('pool-a', 65536, False)
        self.now[0] = 0.05
        self.progress('pool-a', 131072, False)     # too soon
        self.now[0] = 0.2
        self.progress('pool-a', 3 * 1024 * 1024, False)
        self.progress('pool-a', 5 * 1024 * 1024 + 99, True)
        self.progress.done()
        reading = 'auditing pool-a: reading host, VM, VBD, SR, PBD ' \
                  '(event.from)'
        self.assertEqual([reading, reading + ', 64 KiB received',
                          reading + ', 3.0 MiB received',
                          'auditing pool-a: read 5.0 MiB', ''],
                         self.shown())

    def test_next_pool_shows_its_first_bytes(self):
        for label in ('pool-a', 'pool-b'):
            self.progress(label, 0, False)
            self.progress(label, 500, False)
            self.progress(label, 500, True)
        self.assertEqual(
            'auditing pool-b: reading host, VM, VBD, SR, PBD (event.from), '
            '500 bytes received', self.shown()[4])

    def test_nothing_shown_nothing_cleared(self):
        self.progress.done()
        self.assertEqual('', self.stream.getvalue())


class TestApiVersion(base.TestCase):

    def _hosts(self, major, minor):
        return {'OpaqueRef:h': {'name_label': 'host-a',
                                'API_version_major': major,
                                'API_version_minor': minor}}

    def test_supported(self):
        for minor in ('5', '16', '21'):
            audit.check_api_version('http://x', self._hosts('2', minor))

    def test_too_old(self):
        exc = self.assertRaises(audit.UnsupportedVersion,
                                audit.check_api_version, 'http://x',
                                self._hosts('2', '4'))
        self.assertIn('Host host-a at http://x runs XAPI API 2.4, older '
                      'than 2.5 (XenServer 7.0)', str(exc))

    def test_too_new(self):
        exc = self.assertRaises(audit.UnsupportedVersion,
                                audit.check_api_version, 'http://x',
                                self._hosts('3', '0'))
        self.assertIn('API 3.0, newer than 2.21', str(exc))

    def test_missing(self):
        self.assertRaises(audit.UnsupportedVersion, audit.check_api_version,
                          'http://x', self._hosts('', ''))

    def test_no_host(self):
        exc = self.assertRaises(audit.UnsupportedVersion,
                                audit.check_api_version, 'http://x', {})
        self.assertEqual('XAPI at http://x reports no XAPI API version (it '
                         'sent no host record); the audit supports API 2.5 '
                         'to 2.21.', str(exc))


class TestPassword(base.TestCase):

    def test_file_first_line(self):
        path = self.useFixture(fixtures.TempDir()).join('pw')
        with open(path, 'w') as f:
            f.write('s3cret\nignored\n')
        self.assertEqual('s3cret', audit.password_from(
            path, {audit.PASSWORD_ENV: 'other'}))

    def test_environment(self):
        self.assertEqual('env', audit.password_from(
            None, {audit.PASSWORD_ENV: 'env'}))
        self.assertIsNone(audit.password_from(None, {}))

    def test_missing_file(self):
        exc = self.assertRaises(audit.AuditError, audit.password_from,
                                os.path.join('/nonexistent', 'pw'), {})
        self.assertIn('Cannot read the password file', str(exc))


class TestDecoder(base.TestCase):
    """The audit's XML-RPC decoder answers as ``xmlrpc.client.loads``."""

    VALUE = {
        'Status': 'Success',
        'Value': {
            'OpaqueRef:1': {
                'uuid': 'b3c0', 'name_label': 'instance-<&>"\'\u00e9',
                'is_a_template': False, 'is_control_domain': True,
                'other_config': {'nova_uuid': 'x', '': ''},
                'VBDs': [], 'tags': ['a', 'b'], 'memory': '1024',
                'domid': 3, 'ratio': 0.5,
                'nested': [[], [{}], [{'k': ['v']}]],
                'when': xmlrpc.client.DateTime('20261202T07:00:00Z'),
                'blob': xmlrpc.client.Binary(b'\x00\x01xapi'),
                'nothing': None,
            },
        },
    }

    def decode(self, data, block=None):
        decoder = audit._Decoder()
        block = block or len(data)
        for start in range(0, len(data), block):
            decoder.feed(data[start:start + block])
        return decoder.close()

    def test_same_as_loads(self):
        data = xmlrpc.client.dumps((self.VALUE,), methodresponse=True,
                                   allow_none=True).encode('utf-8')
        expected, _ = xmlrpc.client.loads(data)
        self.assertEqual(expected, self.decode(data))
        # a reply read in blocks that split tags and characters
        self.assertEqual(expected, self.decode(data, block=7))

    def test_xapi_form_same_as_loads(self):
        # the mock writes xapi's form: bare strings, <i4>, no white space
        data = reply.response(self.VALUE)
        expected, _ = xmlrpc.client.loads(data)
        self.assertEqual(expected, self.decode(data))
        self.assertEqual(expected, self.decode(data, block=3))

    def test_event_batch_same_as_loads(self):
        world = pool_mod.World()
        scenario_mod.build(world, scenario_mod.Scenario.default())
        pool = world.pools[list(world.pools)[0]]
        outcome = pool.handle('event.from', [pool.new_session('root'),
                                             ['*'], '', 0.0])
        data = reply.response(outcome.payload())
        expected, _ = xmlrpc.client.loads(data)
        self.assertGreater(len(expected[0]['Value']['events']), 10)
        self.assertEqual(expected, self.decode(data, block=1000))

    def test_plain_value_is_a_string(self):
        data = (b'<?xml version="1.0"?><methodResponse><params><param>'
                b'<value><struct><member><name>Status</name><value>Success'
                b'</value></member><member><name>Value</name><value>'
                b'</value></member></struct></value></param></params>'
                b'</methodResponse>')
        self.assertEqual(({'Status': 'Success', 'Value': ''},),
                         self.decode(data))

    def test_namespaced_nil(self):
        data = (b'<methodResponse xmlns:ex="http://ws.apache.org/xmlrpc/'
                b'namespaces/extensions"><params><param><value><array>'
                b'<data><value><ex:nil/></value><value><i8>7</i8></value>'
                b'</data></array></value></param></params></methodResponse>')
        self.assertEqual(([None, 7],), self.decode(data))

    def test_fault(self):
        data = xmlrpc.client.dumps(xmlrpc.client.Fault(-1, 'no such method'),
                                   methodresponse=True).encode('utf-8')
        exc = self.assertRaises(xmlrpc.client.Fault, self.decode, data)
        self.assertEqual((-1, 'no such method'),
                         (exc.faultCode, exc.faultString))

    def test_bad_boolean(self):
        data = (b'<methodResponse><params><param><value><boolean>2'
                b'</boolean></value></param></params></methodResponse>')
        self.assertRaises(TypeError, self.decode, data)

    def test_truncated_or_not_a_response(self):
        data = xmlrpc.client.dumps((self.VALUE,), methodresponse=True,
                                   allow_none=True).encode('utf-8')
        self.assertRaises(expat.ExpatError, self.decode, data[:-40])
        self.assertRaises(xmlrpc.client.ResponseError, self.decode,
                          b'<html><body>hello</body></html>')
