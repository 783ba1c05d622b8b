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

"""The layout every case of the fault sweep starts from (issue 11).

Pools ``pool-a`` (host ``host-a``, the source) and ``pool-b`` (host
``host-b``, the destination). The migrating instance (1) has a legacy
volume on its own target and two uuid5 volumes behind one shared target;
a neighbour instance (9), not known to nova, runs (or is halted) on the
destination with a third LUN of the shared target, so its uuid5 SR is the
one the migrating instance's uuid5 volumes need there.

Stock nova cannot migrate a legacy SR (nova bug 1566622), nor two volumes
behind one target (its source forgets their shared SR once per volume, the
second ``SR.forget`` fails after the VM moved): its cases migrate one
uuid5 volume, behind the neighbour's target.
"""

import uuid

from nova_xenapi_sr import naming

SOURCE_POOL, SOURCE_HOST = 'pool-a', 'host-a'
DEST_POOL, DEST_HOST = 'pool-b', 'host-b'
SIDES = {'source': SOURCE_POOL, 'destination': DEST_POOL}

SHARED_PORTAL = '192.0.2.10:3260'
SHARED_IQN = 'iqn.2010-10.org.openstack:fault-sweep-shared'
OWN_PORTAL = '192.0.2.30:3260'
OWN_IQN = 'iqn.2010-10.org.openstack:fault-sweep-legacy'

MIGRATING = 1
#: The neighbour's VM is named ``instance-00fffff9``: a name nova, whose
#: instance names count up from ``instance-00000001``, never gives the
#: migrating server in a sweep (the VMs are told apart by name).
NEIGHBOUR = 0xfffff9
RUNNING = 'Running'
HALTED = 'Halted'
NEIGHBOUR_STATES = (RUNNING, HALTED)

#: Volume names map to these uuids (nova's notifications need Cinder
#: volume ids to be uuids, as real Cinder's are).
_NS = uuid.UUID('8d1f4e0c-6a35-4d0b-9b3e-5f0a1c2e7d42')


def volume_id(name):
    return str(uuid.uuid5(_NS, name))


LEGACY = volume_id('legacy')
UUID5_A = volume_id('uuid5-a')
UUID5_B = volume_id('uuid5-b')
NEIGHBOUR_VOLUME = volume_id('neighbour')


def migrating_volumes(legacy=True):
    """``[(volume id, naming, device)]`` of the migrating instance.

    ``legacy=False``: stock nova's instance, one uuid5 volume.
    """
    if not legacy:
        return [(UUID5_A, naming.UUID5, '/dev/xvdb')]
    return [(LEGACY, naming.LEGACY, '/dev/xvdb'),
            (UUID5_A, naming.UUID5, '/dev/xvdc'),
            (UUID5_B, naming.UUID5, '/dev/xvdd')]


def build(dep, neighbour_state=RUNNING, legacy=True):
    """The case's :class:`~.mockxapi.Scenario` for deployment ``dep``."""
    sc = dep.new_scenario()
    sc.add_volume(LEGACY, OWN_PORTAL, OWN_IQN, 1)
    sc.add_volume(UUID5_A, SHARED_PORTAL, SHARED_IQN, 1)
    sc.add_volume(UUID5_B, SHARED_PORTAL, SHARED_IQN, 2)
    sc.add_volume(NEIGHBOUR_VOLUME, SHARED_PORTAL, SHARED_IQN, 3)
    sc.add_instance(SOURCE_POOL, MIGRATING,
                    volumes=migrating_volumes(legacy))
    sc.add_instance(DEST_POOL, NEIGHBOUR, volumes=[
        (NEIGHBOUR_VOLUME, naming.UUID5, '/dev/xvdb')])
    return sc


def set_power_state(dep, pool_name, vm_name, state):
    """A halted VM keeps its VBDs, detached (xapi's ``VM.shutdown``)."""
    pool = dep.xapi.pool(pool_name)
    with pool.world.lock:
        for ref in pool.db.find('VM', name_label=vm_name):
            pool.db.get('VM', ref)['power_state'] = state
            for vbd in pool.db.find('VBD', VM=ref):
                pool.db.get('VBD', vbd)['currently_attached'] = (
                    state == RUNNING)


def start_case(dep, neighbour_state=RUNNING, legacy=True, cold_cache=False):
    """Reset ``dep`` to a fresh layout and boot the migrating server.

    :param cold_cache: empty the computes' connector caches after the boot
        (:func:`cool_connector_caches`).
    :returns: the server (ACTIVE on the source), call logs cleared.
    """
    sc = build(dep, neighbour_state, legacy)
    dep.reset(sc)
    if neighbour_state != RUNNING:
        set_power_state(dep, DEST_POOL, neighbour_name(dep),
                        neighbour_state)
    server = dep.boot(MIGRATING, [(vol, device) for vol, _, device in
                                  migrating_volumes(legacy)],
                      host=SOURCE_HOST)
    if cold_cache:
        cool_connector_caches(dep)
    dep.clear_calls()
    return server


def neighbour_name(dep):
    """The neighbour VM's name label (a scenario VM nova never adopts)."""
    return dep.scenario_vm_name(NEIGHBOUR)


def cool_connector_caches(dep):
    """Empty each compute's volume connector cache, as after a restart.

    nova's XenAPI driver keeps the host's iSCSI IQN and hostname once it
    has read them (``XenAPIDriver.get_volume_connector``, from the host
    stats: the ``xenhost.py host_data`` plugin, a scan of the default SR);
    a nova-compute that has not attached a volume since it started reads
    them again, the source only after ``VM.migrate_send``.
    """
    for compute in dep.computes.values():
        drv = compute.driver
        drv._initiator = None
        drv._hypervisor_hostname = None
