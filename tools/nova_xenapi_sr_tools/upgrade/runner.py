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

"""Running cases: node processes, a mock XAPI per case, a verdict each.

The node processes start once per run (six of them: a stock and an
extension conductor, and a stock and an extension compute for each of the
source and the destination role) and serve every case. For each case the
runner starts a fresh mock XAPI with the case's two pools, has the two
computes build their drivers against their pools, takes the baseline,
asks the conductor to live-migrate, then compares XAPI's state with the
baseline (:mod:`verdict`).
"""

import os
import shutil
import tempfile
import time
import uuid

from oslo_log import log as logging

from nova_xenapi_sr_tools.upgrade import cases as cases_mod
from nova_xenapi_sr_tools.upgrade import node
from nova_xenapi_sr_tools.upgrade import rpc
from nova_xenapi_sr_tools.upgrade import verdict

LOG = logging.getLogger(__name__)

#: Seconds one call from the harness to a node may take before the case
#: counts as hung. A case makes several such calls (each compute's driver
#: set-up, the migration itself, collecting the traces); the migration is
#: the one that can hang.
CASE_TIMEOUT = 180


def repo_root():
    """The directory that holds the ``nova_xenapi_sr`` package."""
    import nova_xenapi_sr
    return os.path.dirname(os.path.dirname(os.path.abspath(
        nova_xenapi_sr.__file__)))


def conductor_name(flavour):
    return 'conductor-%s' % flavour


def compute_name(flavour, role):
    return 'compute-%s-%s' % (flavour, role)


def needed_nodes(cases):
    """Names of the node processes that ``cases`` use."""
    names = set()
    for case in cases:
        names.add(conductor_name(case['conductor']))
        names.add(compute_name(case['source'], 'source'))
        names.add(compute_name(case['destination'], 'destination'))
    return names


def node_specs(log_dir, extension_driver=None, sys_path=None, names=None):
    """Specs of the node processes a run needs (``names``: only those)."""
    paths = list(sys_path or [])
    root = repo_root()
    if root not in paths:
        paths.insert(0, root)
    specs = []
    for flavour in cases_mod.FLAVOURS:
        specs.append({'name': conductor_name(flavour), 'role': 'conductor',
                      'flavour': flavour})
        for role in ('source', 'destination'):
            specs.append({'name': compute_name(flavour, role),
                          'role': 'compute', 'flavour': flavour,
                          'conductor': conductor_name(flavour),
                          'extension_driver': extension_driver})
    if names is not None:
        specs = [spec for spec in specs if spec['name'] in names]
    for spec in specs:
        spec['sys_path'] = paths
        spec['log_path'] = os.path.join(log_dir, spec['name'] + '.log')
    return specs


class Runner(object):
    """Runs cases; a context manager that owns the node processes.

    :param extension_driver: dotted path of the extension driver the
        extension computes load (default: nova's
        ``xenapi_sr.driver.XenAPISRDriver``, or the package path when the
        shim is not installed). Tests pass deliberately broken drivers.
    :param sys_path: extra import paths for the node processes.
    :param log_dir: where node logs go (default: a temporary directory,
        removed on exit unless ``keep_logs``).
    :param cases: the cases this runner will run (default: the whole
        matrix); only the node processes they need are started.
    """

    def __init__(self, scenario=None, extension_driver=None, sys_path=None,
                 log_dir=None, keep_logs=False, case_timeout=CASE_TIMEOUT,
                 cases=None):
        sets = cases_mod.volume_sets(scenario)
        self.sets = dict((vset.name, vset) for vset in sets)
        self.set_order = [vset.name for vset in sets]
        self.planned = list(cases if cases is not None else self.cases())
        self.extension_driver = extension_driver
        self.sys_path = sys_path
        self._own_log_dir = log_dir is None
        self.log_dir = log_dir or tempfile.mkdtemp(prefix='verify-upgrade-')
        self.keep_logs = keep_logs or not self._own_log_dir
        self.case_timeout = case_timeout
        self.bus = None
        self.nodes = {}

    def cases(self):
        return cases_mod.matrix([self.sets[name] for name in self.set_order])

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            # __exit__ does not run: stop what started, drop the logs.
            self.close()
            raise
        return self

    def __exit__(self, *exc_info):
        self.close()

    def start(self):
        self.bus = node.Bus(call_timeout=self.case_timeout)
        self.nodes = self.bus.start(node_specs(
            self.log_dir, self.extension_driver, self.sys_path,
            names=needed_nodes(self.planned)))
        return self.nodes

    def close(self):
        if self.bus is not None:
            self.bus.close()
            self.bus = None
        if not self.keep_logs:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    def _restart(self):
        if self.bus is not None:
            self.bus.close()
        self.start()

    def run(self, cases=None, progress=None):
        """Run ``cases`` (default: the whole matrix); return results.

        :param progress: called as ``progress(index, total, result)``
            after each case.
        """
        cases = list(cases if cases is not None else self.planned)
        missing = needed_nodes(cases) - set(self.nodes)
        if missing:
            raise ValueError('cases need nodes this runner did not start: '
                             '%s' % ', '.join(sorted(missing)))
        # The all-stock case of a set runs first: the do-no-harm rule
        # judges the set's other cases by its outcome.
        cases.sort(key=lambda case: not verdict.is_all_stock(case))
        stock_outcomes = {}
        results = []
        for index, case in enumerate(cases):
            result = self.run_case(case)
            if verdict.is_all_stock(case):
                stock_outcomes[case['volumes']] = result['outcome']
            else:
                harm = verdict.do_no_harm(
                    case, result['outcome'], result['detail'],
                    stock_outcomes.get(case['volumes']))
                if harm is not None:
                    result.update(outcome=harm.outcome, detail=harm.detail,
                                  signature=harm.signature)
            results.append(result)
            if progress is not None:
                progress(index + 1, len(cases), result)
        return results

    def run_case(self, case):
        """Run one case; return its result dict (see :mod:`report`)."""
        from nova_xenapi_sr_tools.mockxapi import MockXapi
        from nova_xenapi_sr_tools.mockxapi import Scenario

        started = time.monotonic()
        vset = self.sets[case['volumes']]
        result = dict(case)
        result.update({'outcome': None, 'detail': '', 'copies': 0,
                       'leftovers': [], 'xapi_calls': {}, 'trace': [],
                       'drivers': {}})
        scenario = Scenario.from_dict(vset.case_scenario())
        try:
            with MockXapi(scenario) as server:
                self._run_in(server, scenario, vset, case, result)
        except rpc.RemoteError as exc:
            result.update(outcome=verdict.UNSAFE, detail=(
                'the verification itself failed in %s (%s: %s); the outcome '
                'of this case is unknown' % (exc.origin, exc.exc_type,
                                             exc.message)))
            LOG.error('case %s: %s', case, exc)
        except node.NodeError as exc:
            result.update(outcome=verdict.UNSAFE, detail=(
                'the verification itself broke down (%s); the outcome of '
                'this case is unknown' % exc))
            LOG.error('case %s: %s', case, exc)
            self._restart()
        result['wall_time'] = round(time.monotonic() - started, 3)
        return result

    def _run_in(self, server, scenario, vset, case, result):
        source = compute_name(case['source'], 'source')
        destination = compute_name(case['destination'], 'destination')
        conductor = conductor_name(case['conductor'])
        hosts = {'source': vset.host('source'),
                 'destination': vset.host('destination')}
        peers = {hosts['source']: source, hosts['destination']: destination}
        destination_targets = _export_to_destination(server, scenario,
                                                     vset)
        volumes = []
        for volume_id, _style, device in vset.volume_entries:
            volumes.append({
                'volume_id': volume_id, 'device': device,
                'source_connection_info': scenario.connection_info(
                    volume_id),
                # A fresh attachment for the destination host.
                'destination_connection_info': _destination_connection_info(
                    scenario, volume_id, destination_targets)})
        pools = {'source': vset.pool_name('source'),
                 'destination': vset.pool_name('destination')}
        for role, name in (('source', source), ('destination', destination)):
            user, password = vset.credentials(role)
            try:
                result['drivers'][role] = self.bus.call(
                    name, 'setup_case', case={
                        'role': role, 'host': hosts[role],
                        'pool_url': server.urls[pools[role]],
                        'username': user, 'password': password,
                        'volumes': volumes,
                        'network_info': vset.network_info(),
                        'peers': peers, 'conductor': conductor})
            except rpc.RemoteError as exc:
                result.update(outcome=verdict.UNSAFE, detail=(
                    'the %s %s compute could not start its driver (%s: %s); '
                    'fix the installation before migrating' % (
                        case[role], role, exc.exc_type, exc.message)))
                return
        baseline = dict((role, server.pool(pools[role]).inspect())
                        for role in pools)
        for role in pools:
            server.pool(pools[role]).clear_calls()
        instance = vset.instance
        flow = self.bus.call(conductor, 'live_migrate', case={
            'instance': {'id': int(instance['instance_id']),
                         'uuid': _nova_uuid(scenario, instance),
                         'host': hosts['source'],
                         'root_device_name': vset.volume_entries[0][2]},
            'source': source, 'destination': destination,
            'destination_host': hosts['destination']})
        after = dict((role, server.pool(pools[role]).inspect())
                     for role in pools)
        copies = server.copies
        result['xapi_calls'] = dict(
            (role, len(server.pool(pools[role]).calls())) for role in pools)
        for name in (source, destination):
            result['trace'].extend(self.bus.call(name, 'teardown_case'))
        result['trace'].extend(self.bus.call(conductor, 'take_trace'))
        result['flow'] = flow
        mutations = [(entry['node'], entry['step'])
                     for entry in result['trace']
                     if entry.get('mutated_arguments') and
                     '-extension-' in entry['node']]
        began = any(entry['node'] == source and
                    entry['step'] == 'driver.live_migration'
                    for entry in result['trace'])
        found = verdict.classify(case, flow, baseline, after, copies,
                                 vset.vm_name, mutations=mutations,
                                 live_migration_began=began,
                                 bystanders=vset.bystander_vm_names)
        urls = dict((server.urls[pools[role]], 'pool %s' % pools[role])
                    for role in pools)
        result.update(outcome=found.outcome,
                      detail=_scrub(found.detail, urls),
                      copies=found.copies,
                      leftovers=[_scrub(item, urls)
                                 for item in found.leftovers],
                      signature=found.signature)


def _split_portal(portal):
    address, _, port = portal.rpartition(':')
    if not address:
        return portal, 3260
    return address, int(port)


def _export_to_destination(server, scenario, vset):
    """Export LUNs behind the destination targets the scenario names.

    The same LUN (same serial, so the same VDI uuid) behind another
    portal/IQN of the shared array. Returns ``{volume_id: (portal, iqn,
    lun)}``.
    """
    targets = vset.destination_targets()
    serials = dict((volume['id'], volume['serial'])
                   for volume in scenario.volumes)
    for volume_id, (portal, iqn, lun) in sorted(targets.items()):
        address, port = _split_portal(portal)
        server.array.add_lun(address, port, iqn, lun, serials[volume_id],
                             None, volume_id)
    return targets


def _destination_connection_info(scenario, volume_id, targets):
    """Cinder's connection_info for the destination host's attachment."""
    info = scenario.connection_info(volume_id)
    if volume_id in targets:
        portal, iqn, lun = targets[volume_id]
        info['data'].update(target_portal=portal, target_iqn=iqn,
                            target_lun=lun)
    return info


def _scrub(text, urls):
    """Name pools instead of their per-case random XAPI addresses.

    The addresses change with every case; the notes of the table are
    shared between cases whose details read the same.
    """
    for url, name in urls.items():
        text = text.replace(url.rstrip('/'), name)
    return text


def _nova_uuid(scenario, instance):
    for inst in scenario.instances:
        if int(inst['instance_id']) == int(instance['instance_id']):
            return inst['nova_uuid']
    return str(uuid.uuid4())
