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

"""Scenarios: what the mock serves, as Python calls or a JSON/YAML file.

File format (JSON, or YAML when PyYAML is installed; same keys)::

    pools:                        # one XAPI endpoint each
      - name: pool-a
        hosts: [host-a]           # first host is the master
        user: root                # optional, default root
        password: mock            # optional, default mock
        relax_xsm_sr_check: true  # optional, default true
    volumes:                      # LUNs on the shared iSCSI array
      - id: vol-1                 # Cinder volume id
        portal: 192.0.2.10:3260   # target address:port
        iqn: iqn.2010-10.org.openstack:vol-1
        lun: 1
        chap: [user, secret]      # optional
        serial: ...               # optional (default derived from id)
        size: 1073741824          # optional, bytes
    instances:                    # running VMs with attached volumes
      - pool: pool-a
        instance_id: 1            # VM name_label instance-00000001
        nova_uuid: 6f0d...        # optional (default derived from id)
        host: host-a              # optional, default the pool master
        volumes:                  # [volume id, SR naming, device(, SR type)]
          - [vol-1, legacy, /dev/xvdb]
          - [vol-2, uuid5, /dev/xvdc, iscsi]
        vifs:                     # optional: [{id: <neutron port>, mac}]
    srs:                          # SRs with no VM using them (optional)
      - pool: pool-b
        volume: vol-1             # its target gives the device_config
        style: uuid5              # legacy | uuid5 (ignored with sr_uuid)
        sr_uuid: ...              # optional: any uuid, e.g. a wrong one
        host: host-b              # optional, default the pool master
        type: iscsi               # optional
        plugged: true             # optional

SR naming ``legacy`` is ``FA15E-D15C-<volume id>``, ``uuid5`` the Mitaka
name of the volume's target (``nova_xenapi_sr.naming``); several volumes
behind one target share one uuid5 SR. SR type ``iscsi`` (raw, default)
shows one VDI per LUN; ``lvmoiscsi`` (mirror-capable) keeps the VDI as a
logical volume on the LUN.

Every pool gets: user/password, a control-domain VM (``domid`` "0") per
host, hosts with ``software_version`` ``platform_name`` XCP,
``platform_version`` 2.1.0 (XenServer 7.0.0), an ``iscsi_iqn`` in
``other_config``, one management PIF with an IPv4 address per host on the
network ``xenbr0``, a default SR (``ext``, ``Local storage``) plugged on
every host, and SM records.

:meth:`Scenario.default` (what ``nova-xenapi-sr mock-xapi`` serves without
``--scenario``): pools ``pool-a`` (host ``host-a``) and ``pool-b`` (host
``host-b``); volumes ``vol-legacy`` (LUN 1) and ``vol-uuid5`` (LUN 2) behind
``192.0.2.10:3260`` ``iqn.2010-10.org.openstack:mock-target``; instance 1
on ``pool-a`` with ``vol-legacy`` as a legacy SR at ``/dev/xvdb``;
instance 2 on ``pool-a`` with ``vol-uuid5`` as a uuid5 SR at
``/dev/xvdb``.
"""

import copy
import json
import uuid

from nova_xenapi_sr import naming

#: Namespace for defaults derived from ids (nova uuids, LUN serials).
_NS = uuid.UUID('0b8f3f53-3c3c-4f6e-8c0e-1f5d2f9d7a11')

SOFTWARE_VERSION = {
    'product_brand': 'XenServer', 'product_version': '7.0.0',
    'platform_name': 'XCP', 'platform_version': '2.1.0',
    'xapi': '1.9', 'xen': '4.6.1', 'build_number': 'mock',
    'hostname': 'mock', 'date': '2016-05-12',
}


class Scenario(object):
    """A description of pools, the iSCSI array and VMs (Python API)."""

    def __init__(self):
        self.pools = []
        self.volumes = []
        self.instances = []
        self.srs = []

    # -- building ------------------------------------------------------------
    def add_pool(self, name, hosts=None, user='root', password='mock',
                 relax_xsm_sr_check=True):
        if any(p['name'] == name for p in self.pools):
            raise ValueError('pool %s already defined' % name)
        hosts = list(hosts or ['%s-host' % name])
        self.pools.append({'name': name, 'hosts': hosts, 'user': user,
                           'password': password,
                           'relax_xsm_sr_check': bool(relax_xsm_sr_check)})
        return self

    def add_volume(self, volume_id, portal, iqn, lun, chap=None, serial=None,
                   size=None):
        """Put a LUN on the array; return its Cinder ``connection_info``."""
        if any(v['id'] == volume_id for v in self.volumes):
            raise ValueError('volume %s already defined' % volume_id)
        self.volumes.append({
            'id': volume_id, 'portal': portal, 'iqn': iqn, 'lun': int(lun),
            'chap': list(chap) if chap else None,
            'serial': serial or str(uuid.uuid5(_NS, 'serial/' + volume_id)),
            'size': int(size or 1024 ** 3)})
        return self.connection_info(volume_id)

    def add_instance(self, pool, instance_id, nova_uuid=None, volumes=(),
                     host=None, vifs=()):
        self._pool(pool)
        vols = []
        for entry in volumes:
            entry = list(entry)
            if len(entry) == 3:
                entry.append('iscsi')
            vol, style, device, sr_type = entry
            self._volume(vol)
            if style not in (naming.LEGACY, naming.UUID5):
                raise ValueError('SR naming must be legacy or uuid5, not %r'
                                 % style)
            vols.append([vol, style, device, sr_type])
        self.instances.append({
            'pool': pool, 'instance_id': int(instance_id),
            'nova_uuid': nova_uuid or str(
                uuid.uuid5(_NS, 'instance/%s' % instance_id)),
            'host': host, 'volumes': vols,
            'vifs': [dict(v) for v in vifs]})
        return self

    def add_sr(self, pool, volume_id, style=naming.UUID5, sr_uuid=None,
               host=None, sr_type='iscsi', plugged=True):
        """An SR (with its PBD) on a volume's target, used by no VM.

        Named per ``style`` for ``volume_id`` unless ``sr_uuid`` is given
        (any string, for example a uuid that does not belong to the
        target). The SR's VDIs appear when it is scanned.
        """
        self._pool(pool)
        self._volume(volume_id)
        if style not in (naming.LEGACY, naming.UUID5):
            raise ValueError('SR naming must be legacy or uuid5, not %r'
                             % style)
        self.srs.append({'pool': pool, 'volume': volume_id, 'style': style,
                         'sr_uuid': sr_uuid, 'host': host, 'type': sr_type,
                         'plugged': bool(plugged)})
        return self

    def connection_info(self, volume_id):
        """A fresh Cinder ``connection_info`` for a volume (a new dict)."""
        vol = self._volume(volume_id)
        data = {'volume_id': vol['id'], 'target_portal': vol['portal'],
                'target_iqn': vol['iqn'], 'target_lun': vol['lun'],
                'target_discovered': False, 'encrypted': False,
                'qos_specs': None, 'access_mode': 'rw'}
        if vol['chap']:
            data.update(auth_method='CHAP', auth_username=vol['chap'][0],
                        auth_password=vol['chap'][1])
        return {'driver_volume_type': 'iscsi', 'data': data,
                'serial': vol['id']}

    def instance_name(self, instance_id):
        return 'instance-%08x' % int(instance_id)

    def _pool(self, name):
        for pool in self.pools:
            if pool['name'] == name:
                return pool
        raise ValueError('no pool %s in the scenario' % name)

    def _volume(self, volume_id):
        for vol in self.volumes:
            if vol['id'] == volume_id:
                return vol
        raise ValueError('no volume %s in the scenario' % volume_id)

    # -- files ---------------------------------------------------------------
    def to_dict(self):
        return copy.deepcopy({'pools': self.pools, 'volumes': self.volumes,
                              'instances': self.instances,
                              'srs': self.srs})

    @classmethod
    def from_dict(cls, data):
        sc = cls()
        for pool in data.get('pools', []):
            sc.add_pool(pool['name'], pool.get('hosts'),
                        pool.get('user', 'root'),
                        pool.get('password', 'mock'),
                        pool.get('relax_xsm_sr_check', True))
        for vol in data.get('volumes', []):
            sc.add_volume(vol['id'], vol['portal'], vol['iqn'], vol['lun'],
                          vol.get('chap'), vol.get('serial'),
                          vol.get('size'))
        for inst in data.get('instances', []):
            sc.add_instance(inst['pool'], inst['instance_id'],
                            inst.get('nova_uuid'), inst.get('volumes', ()),
                            inst.get('host'), inst.get('vifs', ()))
        for sr in data.get('srs', []):
            sc.add_sr(sr['pool'], sr['volume'], sr.get('style', 'uuid5'),
                      sr.get('sr_uuid'), sr.get('host'),
                      sr.get('type', 'iscsi'), sr.get('plugged', True))
        return sc

    @classmethod
    def load(cls, path):
        """Read a scenario file (JSON, or YAML if the text is not JSON)."""
        with open(path) as f:
            text = f.read()
        try:
            data = json.loads(text)
        except ValueError:
            import yaml  # PyYAML; only needed for YAML files
            data = yaml.safe_load(text)
        return cls.from_dict(data)

    def dump(self, path):
        with open(path, 'w') as f:
            json.dump(self.to_dict(), f, indent=2, sort_keys=True)

    @classmethod
    def default(cls):
        sc = cls()
        sc.add_pool('pool-a', hosts=['host-a'])
        sc.add_pool('pool-b', hosts=['host-b'])
        portal = '192.0.2.10:3260'
        iqn = 'iqn.2010-10.org.openstack:mock-target'
        sc.add_volume('vol-legacy', portal, iqn, 1)
        sc.add_volume('vol-uuid5', portal, iqn, 2)
        sc.add_instance('pool-a', 1, volumes=[
            ('vol-legacy', naming.LEGACY, '/dev/xvdb')])
        sc.add_instance('pool-a', 2, volumes=[
            ('vol-uuid5', naming.UUID5, '/dev/xvdb')])
        return sc


# -- turning a scenario into pool state ---------------------------------------

def _device_number(device):
    name = device[5:] if device.startswith('/dev/') else device
    if name.isdigit():
        return int(name)
    return ord(name[-1]) - ord('a')


def build(world, scenario):
    """Populate ``world`` (a ``pool.World``) from ``scenario``."""
    from nova_xenapi_sr_tools.mockxapi import storage
    for vol in scenario.volumes:
        address, _, port = vol['portal'].rpartition(':')
        if not address:
            address, port = vol['portal'], '3260'
        world.array.add_lun(address, int(port), vol['iqn'], vol['lun'],
                            vol['serial'], vol['size'], vol['id'],
                            vol['chap'])
    host_index = 0
    for spec in scenario.pools:
        pool = world.add_pool(spec['name'],
                              users={spec['user']: spec['password']},
                              relax_xsm_sr_check=spec['relax_xsm_sr_check'])
        db = pool.db
        network = db.create('network', name_label='Pool-wide network '
                            'associated with eth0', bridge='xenbr0')
        hosts = []
        for name in spec['hosts']:
            host_index += 1
            address = '198.51.%d.%d' % (100 + host_index // 250,
                                        host_index % 250 + 1)
            host = db.create(
                'host', name_label=name, hostname=name, address=address,
                software_version=dict(SOFTWARE_VERSION, hostname=name),
                other_config={'iscsi_iqn': 'iqn.2016-01.org.mock:%s' % name,
                              'agent_start_time': '1.0'},
                capabilities=['xen-3.0-x86_64', 'xen-3.0-x86_32p',
                              'hvm-3.0-x86_32', 'hvm-3.0-x86_64'])
            hosts.append(host)
            db.create('PIF', network=network, host=host, IP=address,
                      netmask='255.255.255.0', management=True,
                      MAC='02:00:00:00:%02x:%02x' % (host_index // 256,
                                                     host_index % 256))
            db.create('VM', name_label='Control domain on host: %s' % name,
                      is_control_domain=True, domid='0', resident_on=host,
                      power_state='Running')
        pool.master = hosts[0]
        sr = db.create('SR', name_label='Local storage', type='ext',
                       content_type='user', physical_size=str(500 * 1024 ** 3),
                       physical_utilisation=str(10 * 1024 ** 3),
                       other_config={'i18n-key': 'local-storage'})
        for host in hosts:
            db.create('PBD', host=host, SR=sr, currently_attached=True,
                      device_config={'device': '/dev/sda3'})
        pool.pool_ref = db.create('pool', name_label=spec['name'],
                                  master=hosts[0], default_SR=sr,
                                  suspend_image_SR=sr, crash_dump_SR=sr)
        for sr_type in sorted(storage.SM_FEATURES):
            db.create('SM', name_label=sr_type, type=sr_type,
                      capabilities=sorted(storage.SM_FEATURES[sr_type]),
                      features={f: '1' for f in
                                storage.SM_FEATURES[sr_type]})
    for inst in scenario.instances:
        _build_instance(world, scenario, inst)
    for spec in scenario.srs:
        db = world.pools[spec['pool']].db
        _ensure_sr(world, scenario, db, _host(world, spec),
                   spec['volume'], spec['style'], spec['type'],
                   spec['sr_uuid'], spec['plugged'])


def _host(world, spec):
    pool = world.pools[spec['pool']]
    if not spec.get('host'):
        return pool.master
    found = pool.db.find('host', name_label=spec['host'])
    if not found:
        raise ValueError('no host %s in pool %s' % (spec['host'],
                                                    spec['pool']))
    return found[0]


def _ensure_sr(world, scenario, db, host, vol_id, style, sr_type,
               sr_uuid=None, plugged=True, description=''):
    """The SR of a volume's target in ``db``, with a PBD on ``host``.

    Created if missing. Returns ``(sr ref, lun)``.
    """
    from nova_xenapi_sr_tools.mockxapi import storage
    data = scenario.connection_info(vol_id)['data']
    if sr_uuid:
        label = 'tempSR-%s' % sr_uuid
    elif style == naming.LEGACY:
        sr_uuid = naming.legacy_sr_uuid(vol_id)
        label = 'tempSR-%s' % vol_id
    else:
        sr_uuid = naming.uuid5_sr_uuid(data)
        label = 'tempSR-%s' % sr_uuid
    target_host, port, iqn = naming.iscsi_target(data)
    target = world.array.target(target_host, int(port), iqn)
    lun = target.luns[int(data['target_lun'])]
    config = naming.device_config(data)
    if sr_type == 'lvmoiscsi':
        config['SCSIid'] = lun.scsi_id
    existing = db.find('SR', uuid=sr_uuid)
    if existing:
        sr = existing[0]
        if db.find('PBD', SR=sr, host=host):
            return sr, lun
    else:
        sm_config = dict(config)
        sm_config.pop('chappassword', None)
        sr = db.create('SR', uuid=sr_uuid, name_label=label,
                       name_description=description, type=sr_type,
                       sm_config=sm_config)
    pbd = storage.pbd_create(_Ctx(db), {
        'host': host, 'SR': sr, 'device_config': config})
    db.get('PBD', pbd)['currently_attached'] = bool(plugged)
    return sr, lun


def _build_instance(world, scenario, inst):
    pool = world.pools[inst['pool']]
    db = pool.db
    host = _host(world, inst)
    from nova_xenapi_sr_tools.mockxapi import motion
    vm = db.create('VM', name_label=scenario.instance_name(
        inst['instance_id']), power_state='Running', resident_on=host,
        domid=str(next(motion._DOMIDS)), VCPUs_max='1',
        other_config={'nova_uuid': inst['nova_uuid']})
    for vol_id, style, device, sr_type in inst['volumes']:
        sr, lun = _ensure_sr(world, scenario, db, host, vol_id, style,
                             sr_type, description='Disk-for:%s' %
                             scenario.instance_name(inst['instance_id']))
        if sr_type == 'lvmoiscsi':
            vdi_uuid = str(uuid.uuid5(_NS, 'lv/%s' % vol_id))
        else:
            vdi_uuid = lun.vdi_uuid
        vdi = _existing_vdi(db, vdi_uuid, sr, vol_id)
        if vdi is not None:
            pass  # the volume is attached twice (multi-attach): one VDI
        elif sr_type == 'lvmoiscsi':
            lun.lvs[vdi_uuid] = lun.size
            vdi = db.create('VDI', uuid=vdi_uuid, SR=sr, location=vdi_uuid,
                            virtual_size=str(lun.size),
                            physical_utilisation=str(lun.size),
                            name_label='LV-%s' % vol_id)
        else:
            vdi = db.create('VDI', uuid=vdi_uuid, SR=sr,
                            location=lun.scsi_id, name_label='LUN%d' %
                            lun.lun_id, virtual_size=str(lun.size),
                            physical_utilisation=str(lun.size),
                            sm_config={'LUNid': str(lun.lun_id),
                                       'SCSIid': lun.scsi_id})
        number = _device_number(device)
        db.create('VBD', VM=vm, VDI=vdi, userdevice=str(number),
                  device='xvd%s' % chr(ord('a') + number),
                  bootable=number == 0, currently_attached=True,
                  other_config={'osvol': 'True'})
    network = db.find('network', bridge='xenbr0')[0]
    for index, vif in enumerate(inst['vifs']):
        db.create('VIF', VM=vm, network=network, device=str(index),
                  MAC=vif.get('mac', '02:00:00:aa:00:%02x' % index),
                  currently_attached=True,
                  other_config={'neutron-port-id': vif['id']})
    return vm


def _existing_vdi(db, vdi_uuid, sr, vol_id):
    """The pool's VDI of this uuid, if any; it must be on ``sr``.

    VDI uuids are unique per pool (as in xapi), so one LUN cannot have a
    VDI in two SRs of a pool: a scenario that attaches a volume through
    two differently named SRs in one pool is refused.
    """
    found = db.find('VDI', uuid=vdi_uuid)
    if not found:
        return None
    if db.get('VDI', found[0])['SR'] != sr:
        raise ValueError('volume %s is attached through two SRs of one '
                         'pool; its VDI (uuid %s) can be in only one of '
                         'them' % (vol_id, vdi_uuid))
    return found[0]


class _Ctx(object):
    """The minimal handler context the builder needs."""

    def __init__(self, db):
        self.db = db
