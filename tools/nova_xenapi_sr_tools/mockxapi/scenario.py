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
        sr_busy_timeout: 7200     # optional: seconds an SR operation
                                  # waits for another (xapi: 2 hours)
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
                                  # each on nova's interim network
                                  # "net-<port>" (bridge xapiN)
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
shows one VDI per LUN *of the target*; ``lvmoiscsi`` (mirror-capable)
keeps the VDI as a logical volume on the LUN.

The builder reaches every state through the mock's own rules, as nova
would on real XAPI: it introduces each SR, creates its PBD on the
instance's host, plugs it and scans it, so an SR's VDIs are exactly what a
scan of its target finds. What real XAPI cannot reach is refused with a
``ValueError`` that says why, for example a legacy SR and a uuid5 SR (or
two legacy SRs) over LUNs of one target in one pool (the second SR's scan
fails with ``SR_BACKEND_FAILURE_40``), or an instance on a second host of
a pool using an SR that is plugged, unshared, on another host
(``SR_NOT_SHARABLE``).

Every pool gets: user/password, a control-domain VM (``domid`` "0") per
host, hosts with ``software_version`` ``platform_name`` XCP,
``platform_version`` 2.1.0 (XenServer 7.0.0), an ``iscsi_iqn`` in
``other_config``, one management PIF with an IPv4 address per host on the
network ``xenbr0``, one local SR per host (``ext``, unshared, ``Local
storage``, plugged on that host only, its suspend-image and crash-dump
SR), the master's as the pool's default, suspend-image and crash-dump SR,
and SM records.

:meth:`Scenario.default` (what ``nova-xenapi-sr mock-xapi`` serves without
``--scenario``): pools ``pool-a`` (host ``host-a``) and ``pool-b`` (host
``host-b``); volumes ``vol-legacy`` (LUN 1) and ``vol-uuid5`` (LUN 2) behind
``192.0.2.10:3260`` ``iqn.2010-10.org.openstack:mock-target``; instance 1
on ``pool-a`` with ``vol-legacy`` as a legacy SR at ``/dev/xvdb``
(behind its own target, ``...:mock-target-legacy``);
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
                 relax_xsm_sr_check=True, sr_busy_timeout=None):
        if any(p['name'] == name for p in self.pools):
            raise ValueError('pool %s already defined' % name)
        hosts = list(hosts or ['%s-host' % name])
        if len(set(hosts)) != len(hosts):
            raise ValueError('pool %s names a host twice' % name)
        spec = {'name': name, 'hosts': hosts, 'user': user,
                'password': password,
                'relax_xsm_sr_check': bool(relax_xsm_sr_check)}
        if sr_busy_timeout is not None:
            spec['sr_busy_timeout'] = float(sr_busy_timeout)
        self.pools.append(spec)
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
                        pool.get('relax_xsm_sr_check', True),
                        pool.get('sr_busy_timeout'))
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
        # one target per naming style: a legacy and a uuid5 SR over LUNs
        # of one target cannot both exist in one pool
        sc.add_volume('vol-legacy', portal, iqn + '-legacy', 1)
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
        kwargs = {}
        if spec.get('sr_busy_timeout') is not None:
            kwargs['sr_busy_timeout'] = spec['sr_busy_timeout']
        pool = world.add_pool(spec['name'],
                              users={spec['user']: spec['password']},
                              relax_xsm_sr_check=spec['relax_xsm_sr_check'],
                              **kwargs)
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
        # xapi's dbsync_master.ml makes the pool with no default SR; a
        # XenServer install's first boot makes each host's own "Local
        # storage" SR (unshared, a PBD on that host only, so
        # xapi_pbd.ml check_sharing_constraint holds) its suspend-image
        # and crash-dump SR, and the first host's the pool's default; a
        # host joining the pool brings its local SR along (xapi_pool.ml
        # join, create_or_get_sr_on_master) and the pool keeps the
        # master's as default
        local = []
        for host in hosts:
            sr = db.create('SR', name_label='Local storage', type='ext',
                           content_type='user', shared=False,
                           physical_size=str(500 * 1024 ** 3),
                           physical_utilisation=str(10 * 1024 ** 3),
                           other_config={'i18n-key': 'local-storage'})
            db.create('PBD', host=host, SR=sr, currently_attached=True,
                      device_config={'device': '/dev/sda3'})
            db.get('host', host).update(suspend_image_sr=sr,
                                        crash_dump_sr=sr)
            local.append(sr)
        pool.pool_ref = db.create('pool', name_label=spec['name'],
                                  master=hosts[0], default_SR=local[0],
                                  suspend_image_SR=local[0],
                                  crash_dump_SR=local[0])
        for sr_type in sorted(storage.SM_FEATURES):
            db.create('SM', name_label=sr_type, type=sr_type,
                      capabilities=sorted(storage.SM_FEATURES[sr_type]),
                      features={f: '1' for f in
                                storage.SM_FEATURES[sr_type]})
    for inst in scenario.instances:
        _build_instance(world, scenario, inst)
    for spec in scenario.srs:
        _ensure_sr(world, scenario, world.pools[spec['pool']],
                   _host(world, spec), spec['volume'], spec['style'],
                   spec['type'], spec['sr_uuid'], spec['plugged'])


def _host(world, spec):
    pool = world.pools[spec['pool']]
    if not spec.get('host'):
        return pool.master
    found = pool.db.find('host', name_label=spec['host'])
    if not found:
        raise ValueError('no host %s in pool %s' % (spec['host'],
                                                    spec['pool']))
    return found[0]


def _ensure_sr(world, scenario, pool, host, vol_id, style, sr_type,
               sr_uuid=None, plugged=True, description='', lv_uuid=None):
    """The SR of a volume's target in ``pool``, with a PBD on ``host``.

    Made as nova makes it on real XAPI, through the mock's own rules:
    ``SR.introduce`` (unshared), ``PBD.create``, ``PBD.plug``, ``SR.scan``.
    With ``lv_uuid`` (``lvmoiscsi``) that logical volume is put on the LUN
    before the scan. Returns ``(sr ref, lun)``.

    :raises ValueError: real XAPI could not reach this state; the message
        says why.
    """
    from nova_xenapi_sr_tools.mockxapi import errors
    from nova_xenapi_sr_tools.mockxapi import storage
    db = pool.db
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
    if lv_uuid is not None:
        lun.lvs.setdefault(lv_uuid, lun.size)
    ctx = _Ctx(pool)
    existing = db.find('SR', uuid=sr_uuid)
    where = 'pool %s, SR %s (%s naming, volume %s, target %s:%s %s)' % (
        pool.name, sr_uuid, style, vol_id, target_host, port, iqn)
    if existing:
        sr = existing[0]
        pbds = db.find('PBD', SR=sr, host=host)
        pbd = pbds[0] if pbds else storage.pbd_create(ctx, {
            'host': host, 'SR': sr, 'device_config': config})
    else:
        sm_config = dict(config)
        sm_config.pop('chappassword', None)
        sr = db.create('SR', uuid=sr_uuid, name_label=label,
                       name_description=description, type=sr_type,
                       sm_config=sm_config)
        pbd = storage.pbd_create(ctx, {'host': host, 'SR': sr,
                                       'device_config': config})
    if not plugged:
        return sr, lun
    try:
        storage.plug(world, db, pbd)
    except errors.XapiError as exc:
        if exc.code == errors.SR_NOT_SHARABLE:
            raise ValueError(
                '%s: cannot be plugged on host %s: it is plugged on another '
                'host of the pool and nova introduces SRs unshared, so real '
                'XAPI refuses (SR_NOT_SHARABLE). Put the instances that '
                'use this target on one host of the pool.'
                % (where, db.get('host', host)['name_label']))
        raise ValueError('%s: PBD.plug fails: %s' % (where, exc.description))
    conflict = storage.scan_conflict(world, db, sr)
    if conflict is not None:
        vdi_uuid, other = conflict
        raise ValueError(
            '%s: a scan of this SR would fail: the target\'s LUN with VDI '
            'uuid %s is already shown by SR %s of this pool. A raw iSCSI SR '
            'shows every LUN of its target and xapi keeps a VDI uuid once '
            'per pool, so SM\'s SR.scan fails (SR_BACKEND_FAILURE_40): a '
            'legacy SR and a uuid5 SR (or two legacy SRs) cannot both hold '
            'LUNs of one target in one pool. Give the volume its own '
            'target, or use one SR naming per target in this pool.'
            % (where, vdi_uuid, db.get('SR', other)['uuid']))
    storage.scan(world, db, sr)
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
        lv_uuid = None
        if sr_type == 'lvmoiscsi':
            lv_uuid = str(uuid.uuid5(_NS, 'lv/%s' % vol_id))
        sr, lun = _ensure_sr(world, scenario, pool, host, vol_id, style,
                             sr_type, description='Disk-for:%s' %
                             scenario.instance_name(inst['instance_id']),
                             lv_uuid=lv_uuid)
        vdi_uuid = lv_uuid or lun.vdi_uuid
        found = db.find('VDI', uuid=vdi_uuid, SR=sr)
        if not found:
            raise ValueError('volume %s of instance %s: its SR %s does not '
                             'show its VDI %s after a scan'
                             % (vol_id, inst['instance_id'],
                                db.get('SR', sr)['uuid'], vdi_uuid))
        number = _device_number(device)
        db.create('VBD', VM=vm, VDI=found[0], userdevice=str(number),
                  device='xvd%s' % chr(ord('a') + number),
                  bootable=number == 0, currently_attached=True,
                  other_config={'osvol': 'True'})
    for index, vif in enumerate(inst['vifs']):
        db.create('VIF', VM=vm, network=_interim_network(pool, vif['id']),
                  device=str(index),
                  MAC=vif.get('mac', '02:00:00:aa:00:%02x' % index),
                  currently_attached=True,
                  other_config={'neutron-port-id': vif['id']})
    return vm


def _interim_network(pool, port_id):
    """nova's interim network of a port, made when it spawned the VM.

    As ``vif.py`` ``create_vif_interim_network`` names it (``net-<port>``,
    at most 14 characters), shared across the pool; its bridge is the one
    ``network.create`` chose (``xapi_network.ml`` ``choose_bridge_name``).
    """
    from nova_xenapi_sr_tools.mockxapi import lifecycle
    db = pool.db
    name = ('net-' + port_id)[:14]
    found = db.find('network', name_label=name)
    if found:
        return found[0]
    bridges = [db.get('network', r)['bridge'] for r in db.refs('network')]
    return db.create('network', name_label=name,
                     name_description='interim network for vif[%s]'
                     % port_id,
                     bridge=lifecycle.choose_bridge_name(pool, bridges),
                     other_config={'assume_network_is_shared': 'true'})


class _Ctx(object):
    """The minimal handler context the builder needs."""

    def __init__(self, pool):
        self.pool = pool
        self.db = pool.db
