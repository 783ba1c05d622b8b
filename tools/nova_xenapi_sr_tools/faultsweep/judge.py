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

"""The outcome of one fault-sweep case: XAPI's state and nova's records.

XAPI's side is judged with the verification's rules
(:mod:`nova_xenapi_sr_tools.upgrade.verdict`: copies, new or lost
SR/PBD/VDI/VBD records, the VM on exactly one pool, the destination's SR
uuids, bystanders); nova's side from the in-process deployment's records:

``migrated``
    nova recorded the migration ``completed``; XAPI runs the VM on the
    destination only, with nothing copied or left behind on either pool;
    nova's instance is on the destination host, ``active``, no task; each
    volume's BDM points at a Cinder attachment of the destination host
    and no other attachment of the volume is left.
``failed_clean``
    nova recorded the migration as failed (``error``/``failed``); XAPI
    runs the VM on the source only, and both pools hold exactly the
    SR/PBD/VDI/VBD records they held before, attached as before; nova's
    instance is on the source host with no task (``active``, or ``error``
    which nova 21 sets for any failure of the source's live migration
    step, even after a clean rollback); each BDM points at a Cinder
    attachment of the source host and no other attachment is left.
``UNSAFE``
    anything else, including harm to the neighbour (its VM, VBDs, VDIs,
    SRs and PBDs must stay as they were) and a driver that changed the
    ``block_device_info`` nova handed it.
"""

from nova_xenapi_sr_tools.faultsweep import layout
from nova_xenapi_sr_tools.upgrade import verdict

MIGRATED = verdict.MIGRATED
FAILED_CLEAN = verdict.FAILED_CLEAN
UNSAFE = verdict.UNSAFE
#: The injected fault's call was never made (the flow took another path).
NOT_REACHED = 'not_reached'
OUTCOMES = (MIGRATED, FAILED_CLEAN, UNSAFE, NOT_REACHED)

FAILED_STATUSES = ('error', 'failed')


def snapshot(dep):
    """``{'source': inspect(), 'destination': inspect()}`` of the pools."""
    return {side: dep.xapi.pool(pool).inspect()
            for side, pool in layout.SIDES.items()}


def judge(dep, server, baseline, mutations=(), bystanders=()):
    """Return ``(outcome, detail)`` of the case ``server`` just went through.

    :param baseline: :func:`snapshot` before the migration.
    :param mutations: ``[(host, driver method)]`` whose
        ``block_device_info`` argument the driver changed.
    :param bystanders: VM names the case does not migrate.
    """
    after = snapshot(dep)
    copies = dep.xapi.copies
    vm_name = dep.vm_name(server)
    instance = dep.instance(server)
    migration = dep.migration(server)
    status = migration.status if migration is not None else None
    copy_problems = verdict._copy_problems(copies) + [
        'the driver on %s changed the block_device_info nova passed to %s'
        % (host, step) for host, step in mutations]
    problems = []
    if status == 'completed':
        networks = verdict._vm_networks(baseline['source'], vm_name)
        found = verdict._classify_migrated(
            _without_networks(baseline, networks),
            _without_networks(after, networks), copies, copy_problems,
            vm_name)
        if found.outcome != MIGRATED:
            problems.append(found.detail)
        expected_host, states = layout.DEST_HOST, ('active',)
        outcome = MIGRATED
    elif status in FAILED_STATUSES:
        problems.extend(copy_problems)
        if verdict._vm_only_on_destination(after, vm_name):
            problems.append('the VM runs on the destination pool although '
                            'nova recorded the migration as %s' % status)
            problems.extend(verdict._dangling_disks(
                'destination', after['destination'], vm_name))
        else:
            problems.extend(verdict._vm_problems(baseline, after, vm_name,
                                                 'source'))
        for side in ('source', 'destination'):
            problems.extend(verdict._new_objects(side, baseline[side],
                                                 after[side]))
            problems.extend(verdict._lost_objects(side, baseline[side],
                                                  after[side]))
        expected_host, states = layout.SOURCE_HOST, ('active', 'error')
        outcome = FAILED_CLEAN
    else:
        return UNSAFE, ('nova did not finish the migration (status %s); '
                        'treat the instance as unknown' % status)
    problems.extend(verdict.bystander_problems(baseline, after, bystanders))
    problems.extend(_nova_problems(dep, server, instance, expected_host,
                                   states))
    error = _error_line(dep, server) if outcome == FAILED_CLEAN else None
    if problems:
        return UNSAFE, '%s%s: %s' % (
            'migration %s' % status, ' (%s)' % error if error else '',
            '; '.join(problems))
    if outcome == FAILED_CLEAN:
        detail = 'rolled back (%s)' % (error or 'no error recorded')
        if instance.vm_state == 'error':
            detail += '; nova set the instance to ERROR: %s' % (
                verdict.RESET_STATE)
        return FAILED_CLEAN, detail
    return MIGRATED, 'migrated'


def _without_networks(state, networks):
    """``state`` without the source networks ``networks`` (refs).

    Used with the source networks of the migrating VM's VIFs: once the VM
    has moved, they are nova's per-port interim networks, not storage.
    nova's source means to destroy them (``post_live_migration_at_source``,
    ``vif.XenAPIOpenVswitchDriver.delete_network_and_bridge``), but finds
    the moved VM's VIF records still on them (xapi leaves them to its
    database GC, which runs every 30 s) and then looks up that VIF's
    network by the VIF's ref instead of its port id, finds none, and keeps
    the network. Whether it is kept or destroyed, the case is judged on
    the rest.
    """
    trimmed = dict(state)
    source = dict(state['source'])
    source['network'] = {ref: rec for ref, rec in
                         (source.get('network') or {}).items()
                         if ref not in networks}
    trimmed['source'] = source
    return trimmed


def _nova_problems(dep, server, instance, expected_host, states):
    problems = []
    if instance.host != expected_host:
        problems.append('nova places the instance on %s, XAPI runs it on '
                        '%s' % (instance.host, expected_host))
    if instance.vm_state not in states:
        problems.append('nova left the instance %s' % instance.vm_state)
    if instance.task_state is not None:
        problems.append('nova left task_state %s' % instance.task_state)
    attachments = dep.cinder.attachments()
    for vol, bdm in sorted(dep.bdms(server).items()):
        att = attachments.get(bdm.attachment_id)
        if att is None:
            problems.append('the BDM of volume %s points at attachment %s, '
                            'which Cinder does not have' % (
                                vol, bdm.attachment_id))
        elif att['host'] != expected_host:
            problems.append('the BDM of volume %s points at an attachment '
                            'of %s' % (vol, att['host']))
        others = sorted(a['host'] or '(no host)' for a_id, a in
                        attachments.items() if a['volume_id'] == vol and
                        a_id != bdm.attachment_id)
        if others:
            problems.append('volume %s keeps other attachments (%s)' % (
                vol, ', '.join(others)))
    return problems


def _error_line(dep, server):
    """The first failed live-migration event and its message, if any."""
    for text in dep.event_errors(server):
        lines = [line.strip() for line in (text or '').strip().splitlines()
                 if line.strip()]
        if lines:
            return lines[0][:300]
    return None
