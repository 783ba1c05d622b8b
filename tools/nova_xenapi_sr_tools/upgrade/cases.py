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

"""The case matrix and the XAPI scenario of every case.

A case is ``{"conductor", "source", "destination", "volumes"}``: the first
three are ``stock`` or ``extension``, ``volumes`` names a volume set. The
matrix is every combination, 2 x 2 x 2 x (number of volume sets): 24 for
each built-in layout (:data:`LAYOUTS`: between two pools,
:func:`default_scenario`, and inside one pool, :func:`same_pool_scenario`).

Volume sets come from a scenario in the mock XAPI's own file format
(``nova_xenapi_sr_tools.mockxapi.scenario``: ``pools``, ``volumes``,
``instances``), with three optional keys that the mock ignores:

* top level ``source_pool`` / ``destination_pool``: the pools to migrate
  between (default: the first and the second pool of ``pools``; one pool
  for both needs ``destination_host``, another host of it);
* top level ``destination_host`` (the destination compute's host) and
  ``block_migration`` (passed to ``os-migrateLive``);
* per instance ``volume_set``: the set's name (default
  ``instance-<instance_id>``);
* per instance ``bystander``: true for an instance that is not migrated
  (instances on other pools are bystanders anyway);
* per volume ``destination_portal``, ``destination_iqn`` (and optionally
  ``destination_lun``): the target behind which the array also exports
  the volume's LUN (same serial) to the destination host. The destination
  then gets a Cinder connection_info naming that target, as a backend
  that exports a volume per host returns it.

Every instance on the source pool that is not a bystander is one volume
set. Each case serves a fresh mock XAPI with every pool and volume of the
scenario, the one instance of its set and every bystander, so cases never
see each other's state; bystanders must keep their VM, VBDs and SRs
whatever the case does. The destination connects the same volumes through
the same array; its Cinder connection_info is a fresh copy (same target,
as Cinder returns for a shared backend) unless the volume names a
destination target.

The built-in scenario (:func:`default_scenario`), two pools
``pool-source`` (host ``host-source``) and ``pool-destination`` (host
``host-destination``) over one array at ``192.0.2.10:3260``:

``uuid5``
    two volumes on targets of their own, each in a uuid5 SR;
``legacy``
    two volumes on targets of their own, each in a legacy
    ``FA15E-D15C-<volume id>`` SR;
``mixed``
    one legacy-named and one uuid5-named SR (an instance from before
    Mitaka with a volume attached after the upgrade), and one VIF, so the
    destination's interim network is checked too. A bystander
    instance on the destination pool uses another LUN of the uuid5
    volume's target, so that SR already exists on the destination (and
    must survive every outcome).

Each set varies only the naming style. Volumes that share one target (one
uuid5 SR for several volumes) add a failure of stock nova 21 itself: a
stock source forgets the shared SR once per volume after the move and
rolls back an instance that already runs on the destination. That
scenario ships as ``etc/verify-upgrade/shared-target.json``; run it with
``--scenario``. So does ``etc/verify-upgrade/source-neighbour.json``: a
bystander on the source pool shares the uuid5 SR of the migrating volume,
which stock nova 21's source forgets after the move. And
``etc/verify-upgrade/other-destination-target.json``: the destination
reaches a legacy volume through another portal and IQN, and stock nova
21's rollback, given the source's connection data, leaves the
destination's SR behind.
"""

import collections
import copy
import itertools
import json

FLAVOURS = ('stock', 'extension')
ROLES = ('conductor', 'source', 'destination')

PORTAL = '192.0.2.10:3260'
IQN = 'iqn.2010-10.org.openstack:%s'

#: Keys of a volume entry that the mock XAPI does not know.
_DESTINATION_KEYS = ('destination_portal', 'destination_iqn',
                     'destination_lun')


def default_scenario():
    """Return the built-in scenario (mock file format) as a dict."""
    def volume(volume_id, target, lun):
        return {'id': volume_id, 'portal': PORTAL, 'iqn': IQN % target,
                'lun': lun}

    return {
        'source_pool': 'pool-source',
        'destination_pool': 'pool-destination',
        'pools': [{'name': 'pool-source', 'hosts': ['host-source']},
                  {'name': 'pool-destination',
                   'hosts': ['host-destination']}],
        'volumes': [volume('vol-u5-a', 'vol-u5-a', 1),
                    volume('vol-u5-b', 'vol-u5-b', 1),
                    volume('vol-leg-a', 'vol-leg-a', 1),
                    volume('vol-leg-b', 'vol-leg-b', 1),
                    volume('vol-mix-leg', 'vol-mix-leg', 1),
                    volume('vol-mix-u5', 'vol-mix-u5', 1),
                    volume('vol-dst-neighbour', 'vol-mix-u5', 2)],
        'instances': [
            {'pool': 'pool-source', 'instance_id': 1, 'volume_set': 'uuid5',
             'volumes': [['vol-u5-a', 'uuid5', '/dev/xvdb'],
                         ['vol-u5-b', 'uuid5', '/dev/xvdc']]},
            {'pool': 'pool-source', 'instance_id': 2,
             'volume_set': 'legacy',
             'volumes': [['vol-leg-a', 'legacy', '/dev/xvdb'],
                         ['vol-leg-b', 'legacy', '/dev/xvdc']]},
            {'pool': 'pool-source', 'instance_id': 3, 'volume_set': 'mixed',
             'volumes': [['vol-mix-leg', 'legacy', '/dev/xvdb'],
                         ['vol-mix-u5', 'uuid5', '/dev/xvdc']],
             'vifs': [{'id': 'port-mixed-0'}]},
            # Not migrated: its uuid5 SR is the one vol-mix-u5 needs on
            # the destination.
            {'pool': 'pool-destination', 'instance_id': 4,
             'bystander': True,
             'volumes': [['vol-dst-neighbour', 'uuid5', '/dev/xvdb']]},
        ],
    }


def same_pool_scenario():
    """Return the built-in same-pool scenario (mock file format) as a dict.

    The destination compute runs on a second host of the source's pool,
    ``host-source-2``; nova live-migrates without block migration
    (``VM.pool_migrate``). Its endpoint is the member's own, which answers
    ``HOST_IS_SLAVE`` and sends the session to the pool master, as real
    XAPI does. The destination pool is there only as the second pool the
    format asks for.
    """
    def volume(volume_id):
        return {'id': volume_id, 'portal': PORTAL, 'iqn': IQN % volume_id,
                'lun': 1}

    return {
        'source_pool': 'pool-source',
        'destination_pool': 'pool-source',
        'destination_host': 'host-source-2',
        'block_migration': False,
        'pools': [{'name': 'pool-source',
                   'hosts': ['host-source', 'host-source-2']},
                  {'name': 'pool-destination',
                   'hosts': ['host-destination']}],
        'volumes': [volume('vol-sp-u5'), volume('vol-sp-leg'),
                    volume('vol-sp-mix-leg'), volume('vol-sp-mix-u5')],
        'instances': [
            {'pool': 'pool-source', 'host': 'host-source', 'instance_id': 1,
             'volume_set': 'same-pool-uuid5',
             'volumes': [['vol-sp-u5', 'uuid5', '/dev/xvdb']],
             'vifs': [{'id': 'port-sp-1'}]},
            {'pool': 'pool-source', 'host': 'host-source', 'instance_id': 2,
             'volume_set': 'same-pool-legacy',
             'volumes': [['vol-sp-leg', 'legacy', '/dev/xvdb']]},
            {'pool': 'pool-source', 'host': 'host-source', 'instance_id': 3,
             'volume_set': 'same-pool-mixed',
             'volumes': [['vol-sp-mix-leg', 'legacy', '/dev/xvdb'],
                         ['vol-sp-mix-u5', 'uuid5', '/dev/xvdc']]},
        ],
    }


#: The layouts: between two pools, and between two hosts of one pool.
CROSS_POOL = 'cross-pool'
SAME_POOL = 'same-pool'

#: The built-in layouts, in the order a run verifies them.
LAYOUTS = collections.OrderedDict([(CROSS_POOL, default_scenario),
                                   (SAME_POOL, same_pool_scenario)])


def layout_of(scenario):
    """``same-pool`` when a scenario migrates inside one pool."""
    scenario = scenario or default_scenario()
    names = [pool.get('name') for pool in scenario.get('pools') or []]
    source = scenario.get('source_pool', names[0] if names else None)
    destination = scenario.get('destination_pool',
                               names[1] if len(names) > 1 else None)
    return SAME_POOL if source == destination else CROSS_POOL


class ScenarioError(ValueError):
    """A scenario file the verification cannot use."""


class VolumeSet(object):
    """One instance to migrate and the world it lives in."""

    def __init__(self, name, scenario, instance, source_pool,
                 destination_pool):
        self.name = name
        self.scenario = scenario
        self.instance = instance
        self.source_pool = source_pool
        self.destination_pool = destination_pool

    def _pool(self, name):
        for pool in self.scenario['pools']:
            if pool['name'] == name:
                return pool
        raise ScenarioError('no pool %s' % name)

    def host(self, role):
        """The nova host name (XAPI host name_label) of a side.

        The destination is the scenario's ``destination_host`` when it
        names one (a member of the destination pool: in a same-pool
        scenario, another host of the source's pool).
        """
        if role == 'source' and self.instance.get('host'):
            return self.instance['host']
        pool = self._pool(self.source_pool if role == 'source'
                          else self.destination_pool)
        if role == 'destination' and self.scenario.get('destination_host'):
            return self.scenario['destination_host']
        return pool['hosts'][0]

    @property
    def same_pool(self):
        """Source and destination are hosts of one pool."""
        return self.source_pool == self.destination_pool

    @property
    def block_migration(self):
        """The ``block_migration`` of ``os-migrateLive`` (default auto)."""
        return self.scenario.get('block_migration', 'auto')

    def pool_name(self, role):
        return self.source_pool if role == 'source' else \
            self.destination_pool

    def credentials(self, role):
        pool = self._pool(self.pool_name(role))
        return pool.get('user', 'root'), pool.get('password', 'mock')

    def bystanders(self):
        """The instances every case has but never migrates."""
        return [instance for instance in self.scenario.get('instances') or []
                if is_bystander(instance, self.source_pool)]

    @property
    def bystander_vm_names(self):
        return ['instance-%08x' % int(instance['instance_id'])
                for instance in self.bystanders()]

    def case_scenario(self):
        """The mock scenario dict of a case.

        This set's instance and the bystanders, in the mock's own format.
        """
        data = copy.deepcopy(self.scenario)
        for key in ('source_pool', 'destination_pool', 'destination_host',
                    'block_migration'):
            data.pop(key, None)
        for volume in data.get('volumes') or []:
            for key in _DESTINATION_KEYS:
                volume.pop(key, None)
        instances = []
        for instance in [self.instance] + self.bystanders():
            instance = copy.deepcopy(instance)
            instance.pop('volume_set', None)
            instance.pop('bystander', None)
            instances.append(instance)
        data['instances'] = instances
        return data

    def destination_targets(self):
        """Volumes the array exports to the destination elsewhere.

        :returns: ``{volume_id: (portal, iqn, lun)}``.
        """
        targets = {}
        mine = set(entry[0] for entry in self.volume_entries)
        for volume in self.scenario.get('volumes') or []:
            if volume['id'] not in mine:
                continue
            if volume.get('destination_portal') or \
                    volume.get('destination_iqn'):
                targets[volume['id']] = (
                    volume.get('destination_portal') or volume['portal'],
                    volume.get('destination_iqn') or volume['iqn'],
                    int(volume.get('destination_lun', volume['lun'])))
        return targets

    @property
    def vm_name(self):
        return 'instance-%08x' % int(self.instance['instance_id'])

    def network_info(self):
        """nova's ``network_info`` for the instance's VIFs (OVS ports)."""
        return [{'id': vif['id'],
                 'address': vif.get('mac', '02:00:00:aa:00:%02x' % index),
                 'type': 'ovs', 'details': {}, 'devname': 'tap' + vif['id'],
                 'ovs_interfaceid': vif['id'],
                 'network': {'id': 'net-%s' % vif['id'], 'bridge': 'br-int',
                             'subnets': [], 'meta': {}}}
                for index, vif in enumerate(self.instance.get('vifs') or [])]

    @property
    def volume_entries(self):
        """``[(volume_id, style, device)]`` of the instance."""
        return [(entry[0], entry[1], entry[2])
                for entry in self.instance.get('volumes', [])]


def volume_sets(scenario=None):
    """Return the :class:`VolumeSet` list of a scenario dict.

    :raises ScenarioError: fewer than two pools, unknown pool names, no
        instance on the source pool, duplicate set names.
    """
    scenario = copy.deepcopy(scenario or default_scenario())
    pools = [pool.get('name') for pool in scenario.get('pools') or []]
    if len(pools) < 2:
        raise ScenarioError('the scenario needs two pools (source and '
                            'destination), it has %d' % len(pools))
    source = scenario.get('source_pool', pools[0])
    destination = scenario.get('destination_pool', pools[1])
    for name in (source, destination):
        if name not in pools:
            raise ScenarioError('no pool named %r in the scenario' % name)
    if source == destination:
        hosts = [pool.get('hosts') or [] for pool in scenario['pools']
                 if pool.get('name') == source][0]
        target = scenario.get('destination_host')
        if not target or target not in hosts:
            raise ScenarioError(
                'source and destination pool are both %r: name another '
                'host of that pool as destination_host (hosts: %s)'
                % (source, ', '.join(hosts)))
    elif scenario.get('destination_host'):
        hosts = [pool.get('hosts') or [] for pool in scenario['pools']
                 if pool.get('name') == destination][0]
        if scenario['destination_host'] not in hosts:
            raise ScenarioError('destination_host %r is not a host of the '
                                'destination pool %r'
                                % (scenario['destination_host'],
                                   destination))
    sets = []
    seen = set()
    for instance in scenario.get('instances') or []:
        if is_bystander(instance, source):
            continue
        name = instance.get('volume_set') or 'instance-%s' % instance.get(
            'instance_id')
        if name in seen:
            raise ScenarioError('two volume sets named %r' % name)
        seen.add(name)
        if not instance.get('volumes'):
            raise ScenarioError('volume set %r has no volumes' % name)
        sets.append(VolumeSet(name, scenario, instance, source, destination))
    if not sets:
        raise ScenarioError('no instance on the source pool %r: every such '
                            'instance is a volume set to migrate' % source)
    return sets


def is_bystander(instance, source_pool):
    """An instance no case migrates (on another pool, or marked)."""
    return instance.get('pool') != source_pool or \
        bool(instance.get('bystander'))


def load_scenario(path):
    """Read a scenario file (JSON, or YAML when PyYAML is installed)."""
    with open(path) as handle:
        text = handle.read()
    try:
        data = json.loads(text)
    except ValueError:
        try:
            import yaml
        except ImportError:
            raise ScenarioError('%s is not JSON (YAML needs PyYAML)' % path)
        data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ScenarioError('%s does not describe a scenario' % path)
    return data


def matrix(sets):
    """Every case: conductor x source x destination x volume set."""
    return [{'conductor': conductor, 'source': source,
             'destination': destination, 'volumes': vset.name}
            for conductor, source, destination, vset in itertools.product(
                FLAVOURS, FLAVOURS, FLAVOURS, sets)]


def select(cases, conductor=None, source=None, destination=None,
           volumes=None):
    """The cases matching every given filter (None: any)."""
    wanted = {'conductor': conductor, 'source': source,
              'destination': destination, 'volumes': volumes}
    return [case for case in cases
            if all(value is None or case[key] in _as_set(value)
                   for key, value in wanted.items())]


def _as_set(value):
    if isinstance(value, (list, tuple, set, frozenset)):
        return set(value)
    return {value}


def is_all_extension(case):
    return all(case[role] == 'extension' for role in ROLES)
