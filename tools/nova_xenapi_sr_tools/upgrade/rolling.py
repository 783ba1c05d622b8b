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


"""The matrix as a real rolling upgrade of one nova 21.2.4 deployment.

One :class:`~.deployment.Deployment` serves every case. It moves through
the eight deployment states (conductor, source compute, destination
compute; each stock or upgraded) in :data:`STATE_ORDER`, which restarts one
node per step, as an operator upgrades (and, for the states after, rolls
back) one node at a time. In each state it runs the cases of that state,
one per volume set: it boots a volume-backed server on the source host
that adopts its own copy of the set's VM (the mock XAPI runs a copy of
every volume set, with its own volumes and targets, for every state),
takes the XAPI baseline, asks nova-api for ``os-migrateLive`` (the
scheduler picks the destination, the only other compute), waits for
nova's instance-action events to finish, and judges the case with the
rules of :mod:`.verdict` from:

* the mock XAPI's state before and after, and its copy log;
* nova's database: the action's events and the instance faults recorded
  during the case (their tracebacks give the error chain), the migration
  record, the instance's host and states, its block device mappings;
* the fake Cinder's attachments (each BDM's attachment must exist, for
  the host nova places the instance on).
"""

import copy
import json
import os
import re
import time
import uuid

from nova_xenapi_sr_tools.upgrade import cases as cases_mod
from nova_xenapi_sr_tools.upgrade import deployment
from nova_xenapi_sr_tools.upgrade import services
from nova_xenapi_sr_tools.upgrade import verdict

S, E = deployment.STOCK, deployment.EXTENSION

#: (conductor, source, destination) flavours, one node changed per step.
STATE_ORDER = ((S, S, S), (S, S, E), (S, E, E), (S, E, S),
               (E, E, S), (E, E, E), (E, S, E), (E, S, S))

_NS = uuid.UUID('6f1b1b44-7b1e-4c55-9a3c-5e0c5e2e9a11')

#: ``Type: message`` lines of a Python traceback.
_EXC_LINE = re.compile(r'^([A-Za-z_][\w.]*(?:Error|Exception|Timeout|'
                       r'Failure|Exceeded|Host|Invalid\w*|Version|\w+)): '
                       r'(.*)$')


_INSTANCE_PREFIX = re.compile(r'^\[instance: [0-9a-f-]+\] ')

#: A frame of a conductor's traceback: its own serializer asked the
#: conductor service for a backport.
_BACKPORT_FRAME = 'in object_backport_versions'


def backport_loop_errors(path, offset=0):
    """How many RPC requests the conductor failed while backporting.

    A stock conductor cannot read an object version it does not know
    (XenapiLiveMigrateData 1.5); nova's serializer then asks the conductor
    topic to backport it (``object_backport_versions``). The conductor
    that takes that call cannot read its argument either, so it asks
    again: every request holds one of its RPC workers until the call times
    out (``rpc_response_timeout``) and makes the next. Counted from the
    conductor's log after ``offset``: the ERROR tracebacks of failed
    requests that pass through that call.
    """
    if not os.path.exists(path):
        return 0
    with open(path, 'rb') as handle:
        handle.seek(offset)
        text = handle.read().decode('utf-8', 'replace')
    count = 0
    record = None    # the prefix every line of the failure's record has
    for line in text.splitlines():
        fields = line.split(' ', 5)
        prefix = ' '.join(fields[:5])
        if len(fields) == 6 and fields[3] == 'ERROR' and \
                fields[4] == 'oslo_messaging.rpc.server' and \
                fields[5].startswith('['):
            record = prefix
        elif record is not None and prefix == record and \
                _BACKPORT_FRAME in line:
            count += 1
            record = None
        elif prefix != record:
            record = None
    return count


def _loop_note(detail):
    # Without the count, which varies from run to run (it is the case's
    # ``conductor_loop``): equal cases share one note in the matrix.
    return ('%s. Meanwhile the stock conductor kept asking itself for the '
            'backport: its RPC requests timed out one after another, each '
            'holding one of its workers, and other work for it (boots, '
            'other migrations) waited behind them; it recovers only when '
            'restarted (the verification restarted it)'
            % detail.rstrip('. '))


def state_of(case):
    return (case['conductor'], case['source'], case['destination'])


def _copy_name(name, index):
    return '%s-s%d' % (name, index)


def state_copy(scenario, index):
    """The scenario with every volume, target and instance renamed.

    Copy ``index`` serves the cases of one deployment state: its own
    volume ids, iSCSI targets, VM names and VIF port ids (uuids, as
    Neutron's), so the cases of different states never share a record.
    """
    data = copy.deepcopy(scenario)
    targets = {}
    for volume in data.get('volumes') or []:
        volume['id'] = _copy_name(volume['id'], index)
        for key in ('iqn', 'destination_iqn'):
            if volume.get(key):
                volume[key] = targets.setdefault(
                    volume[key], _copy_name(volume[key], index))
        volume.pop('serial', None)
    for instance in data.get('instances') or []:
        instance['instance_id'] = 1000 * (index + 1) + int(
            instance['instance_id'])
        instance.pop('nova_uuid', None)
        instance['volumes'] = [[_copy_name(entry[0], index)] + list(
            entry[1:]) for entry in instance.get('volumes') or []]
        for vif in instance.get('vifs') or []:
            vif['id'] = str(uuid.uuid5(_NS, _copy_name(vif['id'], index)))
    return data


def world(copies):
    """One mock scenario holding every copy's pools, volumes, VMs."""
    merged = None
    seen_volumes, seen_instances = set(), set()
    for data in copies:
        if merged is None:
            merged = dict((k, copy.deepcopy(v)) for k, v in data.items()
                          if k not in ('volumes', 'instances'))
            merged['volumes'], merged['instances'] = [], []
        for volume in data.get('volumes') or []:
            if volume['id'] not in seen_volumes:
                seen_volumes.add(volume['id'])
                merged['volumes'].append(copy.deepcopy(volume))
        for instance in data.get('instances') or []:
            key = int(instance['instance_id'])
            if key not in seen_instances:
                seen_instances.add(key)
                merged['instances'].append(copy.deepcopy(instance))
    return merged


def error_chain(texts):
    """``[{'type', 'message'}]`` from tracebacks and messages, in order."""
    chain = []
    for text in texts:
        for line in (text or '').splitlines():
            match = _EXC_LINE.match(line.strip())
            if match:
                item = {'type': match.group(1).rsplit('.', 1)[-1],
                        'message': match.group(2)}
                if item not in chain:
                    chain.append(item)
    return chain


def _first_line(exc):
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _added_connection_keys(bdm, attachment):
    """Keys of a BDM's connection data that Cinder did not hand out."""
    try:
        saved = json.loads(bdm.get('connection_info') or '{}')
    except ValueError:
        return ['connection_info is not JSON']
    data = saved.get('data') or {}
    given = attachment.get('connection_info') or {}
    return sorted(key for key in data if key not in given)


class RollingRunner(object):
    """Runs cases on one deployment; a context manager.

    :param scenario: the verification's scenario dict (default: built-in).
    :param cases: the cases to run (default: the whole matrix).
    :param extension_drivers: run the cases once per driver, each round
        with the upgraded computes restarted on that ``compute_driver``
        (tests of the verification itself; default: the one given by
        ``extension_driver``). Results carry ``extension_driver``.
    """

    def __init__(self, scenario=None, cases=None, extension_driver=None,
                 keep_logs=False, say=None, extra_python_path=(),
                 extension_drivers=None):
        self.scenario = copy.deepcopy(scenario or
                                      cases_mod.default_scenario())
        sets = cases_mod.volume_sets(self.scenario)
        self.set_order = [vset.name for vset in sets]
        self.planned = list(cases if cases is not None
                            else cases_mod.matrix(sets))
        self.states = [state for state in STATE_ORDER
                       if any(state_of(c) == state for c in self.planned)]
        self.drivers = list(extension_drivers or [extension_driver])
        self.copies = {}
        index = 0
        for round_ in range(len(self.drivers)):
            for state in self.states:
                data = state_copy(self.scenario, index)
                index += 1
                self.copies[(round_, state)] = dict(
                    (vset.name, vset)
                    for vset in cases_mod.volume_sets(data))
        first = sets[0]
        self.hosts = {'source': first.host('source'),
                      'destination': first.host('destination')}
        self.pools = {'source': first.pool_name('source'),
                      'destination': first.pool_name('destination')}
        #: Source and destination are two hosts of one pool: the two
        #: snapshots of a case are of that one pool.
        self.same_pool = first.same_pool
        self.block_migration = first.block_migration
        credentials = dict((first.pool_name(role), first.credentials(role))
                           for role in ('source', 'destination'))
        mock_scenario = world(
            [vset.case_scenario() for by_set in self.copies.values()
             for vset in by_set.values()])
        from nova_xenapi_sr_tools.mockxapi import Scenario
        self.mock_scenario = Scenario.from_dict(mock_scenario)
        self.deployment = deployment.Deployment(
            self.mock_scenario,
            {self.hosts['source']: self.pools['source'],
             self.hosts['destination']: self.pools['destination']},
            flavours=self._flavours(self.states[0]),
            extension_driver=self.drivers[0], keep_logs=keep_logs,
            say=say, extra_python_path=extra_python_path,
            credentials=credentials)
        self.say = say or (lambda line: None)

    def _flavours(self, state):
        conductor, source, destination = state
        return {'conductor': conductor,
                'compute-%s' % self.hosts['source']: source,
                'compute-%s' % self.hosts['destination']: destination}

    def __enter__(self):
        self.deployment.__enter__()
        try:
            self._export_destination_targets()
        except BaseException:
            self.deployment.close()
            raise
        return self

    def __exit__(self, *exc_info):
        self.deployment.close()

    def _export_destination_targets(self):
        """LUNs the array also exports to the destination elsewhere."""
        xapi = self.deployment.xapi
        serials = dict((volume['id'], volume['serial'])
                       for volume in self.mock_scenario.volumes)
        for by_set in self.copies.values():
            for vset in by_set.values():
                for volume_id, (portal, iqn, lun) in sorted(
                        vset.destination_targets().items()):
                    address, _, port = portal.rpartition(':')
                    xapi.array.add_lun(address, int(port or 3260), iqn, lun,
                                       serials.get(volume_id), None,
                                       volume_id)
                    info = self.mock_scenario.connection_info(volume_id)
                    info['data'].update(target_portal=portal,
                                        target_iqn=iqn, target_lun=lun)
                    self.deployment.cinder.per_host[
                        (volume_id, self.hosts['destination'])] = info

    def _enter_state(self, state):
        for name, flavour in sorted(self._flavours(state).items()):
            self.deployment.set_flavour(name, flavour)

    def run(self, progress=None):
        """Run the planned cases; return their result dicts."""
        started = time.monotonic()
        results = []
        stock_outcomes = {}
        total = len(self.planned) * len(self.drivers)
        for round_, driver in enumerate(self.drivers):
            if round_:
                stock_outcomes = {}
                self.deployment.set_extension_driver(driver)
            self._run_round(round_, results, stock_outcomes, total, progress)
        self.deployment.timings['cases'] = time.monotonic() - started
        return results

    def _run_round(self, round_, results, stock_outcomes, total, progress):
        for state in self.states:
            self._enter_state(state)
            for case in sorted((c for c in self.planned
                                if state_of(c) == state),
                               key=lambda c: self.set_order.index(
                                   c['volumes'])):
                result = self.run_case(case, round_)
                if verdict.is_all_stock(case):
                    stock_outcomes[case['volumes']] = result['outcome']
                else:
                    harm = verdict.do_no_harm(
                        case, result['outcome'], result['detail'],
                        stock_outcomes.get(case['volumes']))
                    if harm is not None:
                        result.update(outcome=harm.outcome,
                                      detail=harm.detail,
                                      signature=harm.signature)
                results.append(result)
                if progress is not None:
                    progress(len(results), total, result)

    # --- one case -------------------------------------------------------

    def run_case(self, case, round_=0):
        started = time.monotonic()
        vset = self.copies[(round_, state_of(case))][case['volumes']]
        result = dict(case)
        result['extension_driver'] = self.deployment.extension_driver
        result.update({'outcome': None, 'detail': '', 'copies': 0,
                       'leftovers': [], 'xapi_calls': {}})
        conductor_log = self.deployment.log_path('conductor')
        conductor_mark = os.path.getsize(conductor_log) \
            if os.path.exists(conductor_log) else 0
        try:
            self._run(case, vset, result)
        except (deployment.DeploymentError, deployment.APIError) as exc:
            result.update(outcome=verdict.UNSAFE, detail=(
                'the verification itself broke down (%s); the outcome of '
                'this case is unknown' % _first_line(exc)))
        except services.ServiceError as exc:
            # A node died during the case: the case is lost, the run goes
            # on once the node runs again.
            result.update(outcome=verdict.UNSAFE, detail=(
                '%s during the live migration; the outcome of this case is '
                'unknown: check the instance and both pools by hand'
                % _first_line(exc)))
            self.deployment.revive()
        cannot_read = result.get('signature') == 'conductor-cannot-read'
        if case['conductor'] == S and (cannot_read or backport_loop_errors(
                conductor_log, conductor_mark)):
            if cannot_read:
                # The loop's first request fails a moment after the call
                # that failed the migration: let it show in the log.
                deadline = time.monotonic() + \
                    deployment.RPC_RESPONSE_TIMEOUT + 5
                while not backport_loop_errors(conductor_log,
                                               conductor_mark) and \
                        time.monotonic() < deadline:
                    time.sleep(0.2)
            # The next case must not meet this one's loop: its calls to
            # the conductor would wait behind it and time out. Counted
            # once the looping process has stopped and its log is whole.
            self.deployment.restart_conductor()
            loops = backport_loop_errors(conductor_log, conductor_mark)
            result['conductor_loop'] = loops
            if loops and result['outcome'] is not None:
                result['detail'] = _loop_note(result['detail'])
        result['wall_time'] = round(time.monotonic() - started, 3)
        return result

    def _volumes(self, vset):
        return [(volume_id, self.mock_scenario.connection_info(volume_id),
                 device) for volume_id, _style, device in vset.volume_entries]

    def _run(self, case, vset, result):
        dep = self.deployment
        xapi = dep.xapi
        ports = [(vif['id'], vif.get('mac', '02:00:00:aa:00:%02x' % index))
                 for index, vif in enumerate(vset.instance.get('vifs') or [])]
        server = dep.boot_adopting(
            '%s-%s-%s-%s' % (case['conductor'], case['source'],
                             case['destination'], case['volumes']),
            vset.vm_name, self._volumes(vset), ports, self.hosts['source'])
        vm_name = server['OS-EXT-SRV-ATTR:instance_name']
        db = dep.database.connect('nova')
        try:
            marks = self._marks(db)
            baseline = dict((role, xapi.pool(self.pools[role]).inspect())
                            for role in self.pools)
            for role in self.pools:
                xapi.pool(self.pools[role]).clear_calls()
            copies_before = len(xapi.copies)
            request_id = dep.live_migrate(
                server['id'], block_migration=self.block_migration)
            dep.wait_action(server['id'], request_id,
                            block_migration=not self.same_pool)
            after = dict((role, xapi.pool(self.pools[role]).inspect())
                         for role in self.pools)
            copies = list(xapi.copies)[copies_before:]
            result['xapi_calls'] = dict(
                (role, len(xapi.pool(self.pools[role]).calls()))
                for role in self.pools)
            record = self._record(db, server['id'], request_id, marks)
            record['logged'] = self._logged_errors(request_id, marks)
        finally:
            db.close()
        flow, began = self._flow(case, record)
        result['nova'] = record['summary']
        found = verdict.classify(case, flow, baseline, after, copies,
                                 vm_name, live_migration_began=began,
                                 bystanders=vset.bystander_vm_names,
                                 same_pool=self.same_pool)
        problems = self._nova_problems(record, found.outcome)
        if problems and found.outcome != verdict.UNSAFE:
            found = verdict.Verdict(
                verdict.UNSAFE, '%s; BUT nova\'s records are wrong: %s' % (
                    found.detail.rstrip('. '), '; '.join(problems)),
                leftovers=found.leftovers, copies=found.copies,
                signature=found.signature)
        result.update(outcome=found.outcome, detail=found.detail,
                      copies=found.copies, leftovers=found.leftovers,
                      signature=found.signature, flow=flow)

    # --- nova's records ---------------------------------------------------

    def _log_nodes(self):
        return ['conductor'] + ['compute-%s' % self.hosts[role]
                                for role in ('source', 'destination')]

    def _marks(self, db):
        with db.cursor() as cursor:
            cursor.execute('SELECT COALESCE(MAX(id), 0) AS n FROM '
                           'instance_faults')
            marks = {'fault': cursor.fetchone()['n'], 'logs': {}}
        for name in self._log_nodes():
            path = self.deployment.log_path(name)
            marks['logs'][name] = os.path.getsize(path) \
                if os.path.exists(path) else 0
        return marks

    def _logged_errors(self, request_id, marks):
        """``{node: traceback text}`` nova logged at ERROR for a request.

        nova records no exception text in its database for a failure
        inside ``_do_live_migration`` (the migration is set to error, the
        instance to ERROR); the node's log has it, as an operator reads it.
        """
        found = {}
        for name in self._log_nodes():
            path = self.deployment.log_path(name)
            if not os.path.exists(path):
                continue
            with open(path, 'rb') as handle:
                handle.seek(marks['logs'].get(name, 0))
                text = handle.read().decode('utf-8', 'replace')
            lines = []
            record = None
            for line in text.splitlines():
                if name == 'conductor' and request_id in line and \
                        'Skipping host: ' in line:
                    # The conductor gives up on a destination at DEBUG.
                    reason = line.split('Skipping host: ', 1)[1]
                    lines.append('SkippedHost: %s' % reason.rsplit(
                        ' _find_destination', 1)[0])
                    continue
                fields = line.split(' ', 5)
                if len(fields) < 6 or fields[3] != 'ERROR':
                    record = None
                    continue
                prefix = ' '.join(fields[:5])
                if request_id in line:
                    record = prefix
                    body = line.split(request_id, 1)[1]
                    body = body.split('] ', 1)[1] if '] ' in body else body
                elif prefix == record:
                    body = fields[5]
                else:
                    continue
                lines.append(_INSTANCE_PREFIX.sub('', body))
            if lines:
                found[name] = '\n'.join(lines)
        return found

    def _record(self, db, server_id, request_id, marks):
        with db.cursor() as cursor:
            cursor.execute(
                'SELECT e.event, e.result, e.host, e.traceback, e.details, '
                'e.start_time FROM instance_actions_events e JOIN '
                'instance_actions a ON e.action_id = a.id WHERE '
                'a.request_id = %s ORDER BY e.start_time, e.id',
                (request_id,))
            events = cursor.fetchall()
            cursor.execute(
                'SELECT message, details, host FROM instance_faults WHERE '
                'instance_uuid = %s AND id > %s ORDER BY id',
                (server_id, marks['fault']))
            faults = cursor.fetchall()
            cursor.execute(
                'SELECT status, source_compute, dest_compute FROM '
                'migrations WHERE instance_uuid = %s ORDER BY id DESC '
                'LIMIT 1', (server_id,))
            migration = cursor.fetchone() or {}
            cursor.execute(
                'SELECT host, vm_state, task_state FROM instances WHERE '
                'uuid = %s', (server_id,))
            instance = cursor.fetchone() or {}
            cursor.execute(
                'SELECT volume_id, attachment_id, connection_info FROM '
                'block_device_mapping '
                'WHERE instance_uuid = %s AND deleted = 0 AND '
                'destination_type = %s', (server_id, 'volume'))
            bdms = cursor.fetchall()
        summary = {
            'migration_status': migration.get('status'),
            'instance_host': instance.get('host'),
            'vm_state': instance.get('vm_state'),
            'task_state': instance.get('task_state'),
            'events': ['%s:%s' % (e['event'], e['result']) for e in events],
        }
        return {'events': events, 'faults': faults, 'migration': migration,
                'instance': instance, 'bdms': bdms, 'summary': summary}

    def _role(self, host):
        for role, name in self.hosts.items():
            if host == name:
                return role
        return 'conductor'

    def _flow(self, case, record):
        """The verdict's ``flow`` from nova's records.

        :returns: ``(flow, in_error)``; ``in_error``: nova left the
            instance in ERROR.
        """
        events = dict((e['event'], e) for e in record['events'])
        pre = events.get('compute_pre_live_migration')
        # nova put the instance in ERROR (after a failure from the
        # source's live_migration on, and for unexpected errors of the
        # conductor): the operator has to reset it.
        began = record['instance'].get('vm_state') == 'error'
        failed = [e for e in record['events'] if e['result'] != 'Success']
        status = record['migration'].get('status')
        if status == 'completed' and not failed:
            return {'phase': 'done', 'error': None}, began
        logged = record.get('logged') or {}
        computes = [name for name in self._log_nodes()
                    if name != 'conductor' and name in logged]
        texts = [logged[name] for name in computes] + \
            [f['details'] for f in record['faults']] + \
            [f['message'] for f in record['faults']] + \
            [e['details'] for e in failed] + \
            [e['traceback'] for e in failed] + \
            [logged.get('conductor')]
        chain = error_chain(texts)
        # The first failing node, computes before the conductor that
        # reports their failure.
        origins = [self._role(self.deployment.nodes[name].host)
                   for name in computes] + \
            [self._role(e['host']) for e in failed
             if self._role(e['host']) != 'conductor'] + \
            [self._role(f['host']) for f in record['faults']] + \
            ['conductor']
        origin = origins[0]
        first = chain[0] if chain else {
            'type': 'unknown', 'message': 'nova recorded no error (%s)'
            % ', '.join(record['summary']['events'])}
        phase = 'precheck' if pre is None else 'migration'
        error = {'type': first['type'], 'message': first['message'],
                 'origin': origin if origin == 'conductor'
                 else 'compute-%s' % origin, 'chain': chain or [first]}
        flow = {'phase': phase, 'error': error}
        if status == 'completed':
            # Moved, then a later step (at the destination) failed.
            flow = {'phase': 'done', 'error': None, 'post_error': error}
        return flow, began

    def _nova_problems(self, record, outcome):
        """Where nova's database and Cinder disagree with the outcome."""
        problems = []
        instance = record['instance']
        expected = self.hosts['destination' if outcome == verdict.MIGRATED
                              else 'source']
        if outcome in (verdict.MIGRATED, verdict.REFUSED,
                       verdict.FAILED_CLEAN) and \
                instance.get('host') != expected:
            problems.append('nova places the instance on %s, its VM runs '
                            'on %s' % (instance.get('host'), expected))
        cinder = self.deployment.cinder
        for bdm in record['bdms']:
            attachments = cinder.volume_attachments(bdm['volume_id'])
            mine = [a for a in attachments
                    if a['id'] == bdm['attachment_id']]
            if not mine:
                problems.append('the block device mapping of %s names '
                                'attachment %s, which Cinder does not have'
                                % (bdm['volume_id'], bdm['attachment_id']))
            elif mine[0]['host'] != instance.get('host'):
                problems.append('the Cinder attachment of %s is for %s, the '
                                'instance is on %s' % (
                                    bdm['volume_id'], mine[0]['host'],
                                    instance.get('host')))
            else:
                added = _added_connection_keys(bdm, mine[0])
                if added:
                    problems.append(
                        'nova saved connection data for %s that Cinder '
                        'never handed out (%s): a driver changed the '
                        'block_device_info nova passed it' % (
                            bdm['volume_id'], ', '.join(added)))
            others = [a for a in attachments
                      if a['id'] != bdm['attachment_id']]
            if others:
                problems.append('Cinder keeps %d more attachment(s) of %s '
                                '(%s)' % (len(others), bdm['volume_id'],
                                          ', '.join(sorted(
                                              str(a['host'])
                                              for a in others))))
        return problems
