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

"""The SR naming rules, and a differential test against nova 21 itself."""

import copy
import uuid

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import nova.conf
from nova.virt.xenapi import volume_utils
from oslo_config import fixture as config_fixture

from nova_xenapi_sr import exception
from nova_xenapi_sr import naming
from tests import base

IQN = 'iqn.2010-10.org.openstack:volume-1'


def _cd(**kwargs):
    data = {'volume_id': 'vol-1', 'target_portal': '192.0.2.10:3260',
            'target_iqn': IQN, 'target_lun': 1}
    data.update(kwargs)
    return data


# ---------------------------------------------------------------------------
# Generated connection data.

_label = st.from_regex(r'\A[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?\Z')
_hostname = st.lists(_label, min_size=1, max_size=4).map('.'.join)
_ipv4 = st.ip_addresses(v=4).map(str)
_ipv6 = st.ip_addresses(v=6).map(str)
_host = st.one_of(_ipv4, _hostname, _ipv6.map('[{}]'.format), _ipv6,
                  st.just(''))
_port = st.one_of(st.integers(0, 65535).map(str), st.just(''))
_tpgt = st.one_of(st.none(), st.integers(0, 65535).map(str))


@st.composite
def _portals(draw):
    host = draw(_host)
    if draw(st.booleans()):
        portal = '%s:%s' % (host, draw(_port))
    else:
        portal = host  # no port: nova takes [xenserver] target_port
    tpgt = draw(_tpgt)
    if tpgt is not None:
        portal += ',' + tpgt
    return portal


_iqn = st.one_of(
    st.builds('iqn.2010-10.org.openstack:volume-{}'.format, st.uuids()),
    st.text(min_size=0, max_size=30))
_volume_id = st.one_of(st.uuids().map(str), st.integers(1, 10 ** 6))
_secret = st.text(min_size=0, max_size=16)

#: How a key is given: mostly well-formed; sometimes missing (nova meets
#: that with KeyError), null, or a value of the wrong kind.
_GIVEN = ['value'] * 12 + ['missing', 'null', 'empty', 'wrong_type']


@st.composite
def _connection_data(draw):
    data = {}
    for key, strategy in (('volume_id', _volume_id),
                          ('target_portal', _portals()),
                          ('target_iqn', _iqn)):
        how = draw(st.sampled_from(_GIVEN))
        if how == 'value':
            data[key] = draw(strategy)
        elif how == 'null':
            data[key] = None
        elif how == 'empty':
            data[key] = ''
        elif how == 'wrong_type':
            data[key] = draw(st.one_of(st.integers(), st.lists(st.text())))
    data['target_lun'] = draw(st.integers(0, 255))
    auth = draw(st.sampled_from([None, 'CHAP', None, 'CHAP', 'None']))
    if auth is not None:
        data['auth_method'] = auth
        for key in ('auth_username', 'auth_password'):
            if draw(st.sampled_from(_GIVEN)) != 'missing':
                data[key] = draw(_secret)
    if draw(st.booleans()):
        data['name_label'] = 'label-%s' % draw(st.integers(0, 99))
    return data


# [xenserver] target_host is a HostAddressOpt: the top-level domain of a
# host name must not be numeric.
_tld = st.from_regex(r'\A[a-z]{2,6}\Z')
_configured_host = st.one_of(
    _ipv4, st.none(),
    st.tuples(st.lists(_label, max_size=3), _tld).map(
        lambda parts: '.'.join(parts[0] + [parts[1]])))
_configured_port = st.integers(1, 65535)


def _without_auth(connection_data):
    """``connection_data`` without CHAP: what the SR's name depends on."""
    data = dict(connection_data)
    data.pop('auth_method', None)
    return data


def _nova(connection_data):
    """What nova 21 makes of ``connection_data``: (uuid, device_config).

    ``parse_sr_info`` pops ``name_label`` from its argument: it gets a copy.
    Its params carry ``id`` and ``name_description`` besides the XAPI
    ``device_config`` keys, and an ``int`` port when the default applies;
    XAPI's map is ``string -> string``, so the port is compared as a string.
    """
    sr_uuid, _label, params = volume_utils.parse_sr_info(
        copy.deepcopy(connection_data))
    params = dict(params)
    del params['id']
    del params['name_description']
    params['port'] = str(params['port'])
    return sr_uuid, params


def _ours(connection_data):
    return (naming.uuid5_sr_uuid(connection_data),
            naming.device_config(connection_data))


class TestAgainstNova(base.TestCase):
    """Differential test: nova-xenapi-sr names SRs exactly as nova 21."""

    def setUp(self):
        super(TestAgainstNova, self).setUp()
        self.conf = self.useFixture(config_fixture.Config(nova.conf.CONF))

    @settings(max_examples=300, deadline=None)
    @given(_connection_data(), _configured_host, _configured_port)
    def test_same_uuid_and_device_config(self, data, target_host,
                                         target_port):
        self.conf.config(group='xenserver', target_host=target_host,
                         target_port=target_port)
        before = copy.deepcopy(data)
        notes = []
        # The name: nova fails to name the SR exactly when we do.
        try:
            expected_uuid = _nova(_without_auth(data))[0]
        except Exception as nova_error:
            # StorageError, KeyError, AttributeError...: we raise our one
            # documented exception instead.
            for func in (naming.uuid5_sr_uuid, naming.sr_uuid_candidates,
                         naming.iscsi_target):
                self.assertRaises(exception.InvalidConnectionData, func, data)
            notes.append(repr(nova_error))
        else:
            self.assertEqual(expected_uuid, naming.uuid5_sr_uuid(data))
            uuid5, legacy = naming.sr_uuid_candidates(data)
            self.assertEqual(expected_uuid, uuid5)
            self.assertEqual('FA15E-D15C-%s' % data['volume_id'], legacy)
            self.assertEqual(naming.UUID5, naming.naming_style(uuid5))
        # The device_config, CHAP included.
        try:
            expected = _nova(data)
        except Exception as nova_error:
            self.assertRaises(exception.InvalidConnectionData,
                              naming.device_config, data)
            notes.append(repr(nova_error))
        else:
            self.assertEqual(expected, _ours(data))
        # Neither nova's copy nor our own code touched the caller's dict.
        self.assertEqual(before, data, notes)

    def test_known_cases_from_design(self):
        cases = {
            # portal: (target, port)
            '192.0.2.10:3260': ('192.0.2.10', '3260'),
            'storage.example.org:3261': ('storage.example.org', '3261'),
            '[fe80::1]:3260': ('[fe80', ''),
            'fe80::1': ('fe80', ''),
            'h:3260,1': ('h', '3260,1'),
            'h,1': ('h,1', '3260'),
            'h': ('h', '3260'),
            'h:': ('h', ''),
        }
        for portal, (target, port) in cases.items():
            data = _cd(target_portal=portal)
            self.assertEqual(_nova(data), _ours(data), portal)
            self.assertEqual({'target': target, 'port': port,
                              'targetIQN': IQN},
                             naming.device_config(data), portal)

    def test_configured_defaults(self):
        self.conf.config(group='xenserver', target_host='198.51.100.7',
                         target_port=3262)
        for portal in ('', None, ':3260'):
            data = _cd(target_portal=portal)
            self.assertEqual(_nova(data), _ours(data), portal)
            self.assertEqual('198.51.100.7',
                             naming.device_config(data)['target'])
        data = _cd(target_portal='198.51.100.7')
        self.assertEqual('3262', naming.device_config(data)['port'])
        self.assertEqual(_nova(data)[0], naming.uuid5_sr_uuid(data))

    def test_pinned_uuid5(self):
        # Computed once with nova 21.2.4's parse_sr_info.
        data = _cd(target_portal='192.0.2.10:3260',
                   target_iqn='iqn.2010-10.org.openstack:vol-1')
        self.assertEqual('4cde721c-ef3a-5eca-b30a-11eb06f38c31',
                         naming.uuid5_sr_uuid(data))
        data = _cd(target_portal='[fe80::1]:3260', target_iqn='iqn.x')
        self.assertEqual('4f3bada3-1855-56b5-b11b-de7f094a7649',
                         naming.uuid5_sr_uuid(data))


class TestLegacy(base.TestCase):

    def test_legacy_sr_uuid(self):
        self.assertEqual('FA15E-D15C-vol-1', naming.legacy_sr_uuid('vol-1'))
        volume_id = '8c6c7e57-5b1a-4ad4-8d56-1e3f2b4a9c10'
        self.assertEqual('FA15E-D15C-' + volume_id,
                         naming.legacy_sr_uuid(volume_id))

    def test_legacy_sr_uuid_of_an_integer_id(self):
        self.assertEqual('FA15E-D15C-42', naming.legacy_sr_uuid(42))


class TestNamingStyle(base.TestCase):

    def test_legacy(self):
        self.assertEqual(naming.LEGACY,
                         naming.naming_style('FA15E-D15C-vol-1'))

    def test_uuid5(self):
        sr_uuid = naming.uuid5_sr_uuid(_cd())
        self.assertEqual(naming.UUID5, naming.naming_style(sr_uuid))
        self.assertEqual(naming.UUID5, naming.naming_style(sr_uuid.upper()))

    def test_unknown(self):
        for value in (str(uuid.uuid4()), str(uuid.uuid1()), 'FA15E-D15C-',
                      'tempSR-vol-1', '', 'not-a-uuid', None, 42,
                      '{%s}' % naming.uuid5_sr_uuid(_cd()),
                      naming.uuid5_sr_uuid(_cd()).replace('-', '')):
            self.assertEqual(naming.UNKNOWN, naming.naming_style(value),
                             value)


class TestCandidates(base.TestCase):

    def test_candidates(self):
        uuid5, legacy = naming.sr_uuid_candidates(_cd())
        self.assertEqual(naming.uuid5_sr_uuid(_cd()), uuid5)
        self.assertEqual('FA15E-D15C-vol-1', legacy)

    def test_candidates_for_an_integer_volume_id(self):
        self.assertEqual('FA15E-D15C-7',
                         naming.sr_uuid_candidates(_cd(volume_id=7))[1])

    def test_shared_target_one_uuid5(self):
        # Two LUNs behind one target share the uuid5 SR, not the legacy one.
        first = naming.sr_uuid_candidates(_cd(volume_id='a', target_lun=1))
        second = naming.sr_uuid_candidates(_cd(volume_id='b', target_lun=2))
        self.assertEqual(first[0], second[0])
        self.assertNotEqual(first[1], second[1])


class TestDeviceConfig(base.TestCase):

    def test_without_chap(self):
        self.assertEqual(
            {'target': '192.0.2.10', 'port': '3260', 'targetIQN': IQN},
            naming.device_config(_cd()))

    def test_with_chap(self):
        data = _cd(auth_method='CHAP', auth_username='user',
                   auth_password='secret')
        self.assertEqual(
            {'target': '192.0.2.10', 'port': '3260', 'targetIQN': IQN,
             'chapuser': 'user', 'chappassword': 'secret'},
            naming.device_config(data))

    def test_other_auth_method_ignored(self):
        data = _cd(auth_method='None', auth_username='user',
                   auth_password='secret')
        self.assertNotIn('chapuser', naming.device_config(data))

    def test_does_not_modify_its_argument(self):
        data = _cd(auth_method='CHAP', auth_username='u', auth_password='p',
                   name_label='label')
        before = copy.deepcopy(data)
        naming.device_config(data)
        naming.sr_uuid_candidates(data)
        self.assertEqual(before, data)

    def test_iscsi_target(self):
        self.assertEqual(('192.0.2.10', '3260', IQN),
                         naming.iscsi_target(_cd()))


class TestErrors(base.TestCase):

    def _error(self, func, data):
        return self.assertRaises(exception.InvalidConnectionData, func, data)

    def test_missing_key_names_volume_and_key(self):
        for key in ('target_portal', 'target_iqn'):
            data = _cd()
            del data[key]
            for func in (naming.uuid5_sr_uuid, naming.device_config,
                         naming.sr_uuid_candidates, naming.iscsi_target):
                err = self._error(func, data)
                self.assertEqual('vol-1', err.volume_id)
                self.assertEqual(key, err.key)
                self.assertIn('vol-1', str(err))
                self.assertIn(key, str(err))
                self.assertIn('missing', str(err))

    def test_missing_volume_id(self):
        data = _cd()
        del data['volume_id']
        err = self._error(naming.uuid5_sr_uuid, data)
        self.assertEqual('volume_id', err.key)
        self.assertIsNone(err.volume_id)
        self.assertIn('volume_id', str(err))
        self.assertIn('<unknown>', str(err))

    def test_null_values(self):
        for key in ('volume_id', 'target_iqn'):
            err = self._error(naming.uuid5_sr_uuid, _cd(**{key: None}))
            self.assertEqual(key, err.key)
            self.assertIn('null', str(err))

    def test_no_host_anywhere(self):
        err = self._error(naming.uuid5_sr_uuid, _cd(target_portal=':3260'))
        self.assertEqual('target_portal', err.key)
        self.assertIn('target_host', str(err))
        self.assertIn('vol-1', str(err))

    def test_portal_not_a_string(self):
        err = self._error(naming.uuid5_sr_uuid, _cd(target_portal=3260))
        self.assertEqual('target_portal', err.key)

    def test_not_a_dict(self):
        for value in (None, ['volume_id'], 'volume_id'):
            err = self._error(naming.uuid5_sr_uuid, value)
            self.assertEqual('connection_data', err.key)

    def test_chap_without_credentials(self):
        for missing in ('auth_username', 'auth_password'):
            data = _cd(auth_method='CHAP', auth_username='u',
                       auth_password='p')
            del data[missing]
            err = self._error(naming.device_config, data)
            self.assertEqual(missing, err.key)
            self.assertIn('vol-1', str(err))
            data[missing] = None
            err = self._error(naming.device_config, data)
            self.assertEqual(missing, err.key)
            self.assertIn('CHAP', str(err))

    def test_never_a_key_error(self):
        self.assertFalse(issubclass(exception.InvalidConnectionData,
                                    KeyError))
        self.assertTrue(issubclass(exception.InvalidConnectionData,
                                   ValueError))

    def test_message_says_what_to_check(self):
        err = self._error(naming.uuid5_sr_uuid, _cd(target_iqn=None))
        self.assertIn('Check the volume attachment', str(err))
