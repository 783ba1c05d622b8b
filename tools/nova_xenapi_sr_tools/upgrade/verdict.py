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

"""The outcome of one case, from what happened and what XAPI holds.

Pure data in, pure data out (no nova, no processes), so every rule here is
unit-tested on its own:

``migrated``
    the flow finished; the VM runs on the destination pool only, the
    source forgot the SRs of its volumes, the destination's SRs keep the
    source's uuids, nothing was copied, nothing else was left behind.
``refused``
    the pre-check failed (before the source's ``live_migration`` started)
    with a recognised message, and neither pool changed.
``failed_clean``
    a later step failed with a recognised message; nothing was copied, no
    SR/PBD/VDI exists that the baseline did not have, everything the
    baseline had is still there, and the VM runs on the source pool only.
``UNSAFE``
    anything else: a copy of a shared volume, a leftover or a lost SR/PBD,
    a lost or duplicated VM, or an error no signature below recognises.

Every non-migrated outcome comes with a ``detail`` that says what happened
and what the operator should do. Also UNSAFE: a migration whose
destination failed ``post_live_migration_at_destination`` (nova set the
instance to ERROR), a refusal that does not say what to do, harm to a
bystander instance (its VM, VBDs or SRs), and, across the cases of a
volume set (:func:`do_no_harm`, DESIGN section 2 item 7), an extension
conductor case that did not migrate what the all-stock case migrated.

Inputs: ``case`` (``{"conductor", "source", "destination", "volumes"}``,
flavours ``stock``/``extension``), ``flow`` (what the conductor node
returned: ``{"phase": "precheck"|"migration"|"done", "error": None |
{"type", "message", "origin", "chain"}}``), ``baseline`` and ``after``
(``{"source": inspect(), "destination": inspect()}`` from the mock XAPI),
``copies`` (the mock's copy log) and ``vm_name``.
"""

from nova_xenapi_sr_tools.upgrade import cases as cases_mod

MIGRATED = 'migrated'
REFUSED = 'refused'
FAILED_CLEAN = 'failed_clean'
UNSAFE = 'UNSAFE'

OUTCOMES = (MIGRATED, REFUSED, FAILED_CLEAN, UNSAFE)

STOCK = 'stock'
EXTENSION = 'extension'

#: What an operator does about an instance nova put in ERROR.
RESET_STATE = ("reset the instance's state (openstack server set --state "
               "active <server>)")

#: XAPI classes whose records must not change when a pre-check refuses.
_WATCHED = ('SR', 'PBD', 'VDI', 'VBD', 'VM', 'VIF', 'network')


class Verdict(object):
    """Outcome, detail and the evidence behind it."""

    def __init__(self, outcome, detail, leftovers=(), copies=0,
                 signature=None):
        self.outcome = outcome
        self.detail = detail
        self.leftovers = list(leftovers)
        self.copies = copies
        self.signature = signature

    def to_dict(self):
        return {'outcome': self.outcome, 'detail': self.detail,
                'leftovers': list(self.leftovers), 'copies': self.copies,
                'signature': self.signature}

    def __repr__(self):
        return 'Verdict(%r, %r)' % (self.outcome, self.detail)


# --- recognising failures ---------------------------------------------------

def _chain(error):
    return error.get('chain') or [{'type': error.get('type'),
                                   'message': error.get('message', '')}]


def _chain_text(error):
    return ' | '.join('%s: %s' % (item.get('type'), item.get('message'))
                      for item in _chain(error))


def _chain_has(error, type_name=None, text=None):
    for item in _chain(error):
        if type_name is not None and item.get('type') != type_name:
            continue
        if text is not None and text not in (item.get('message') or ''):
            continue
        return True
    return False


def _role_of(origin):
    """``'conductor'``, ``'source'``, ``'destination'`` or the name."""
    origin = origin or ''
    if origin.startswith('conductor'):
        return 'conductor'
    for role in ('source', 'destination'):
        if origin.endswith(role):
            return role
    return origin


def _stock_sides(case):
    return [side for side in ('source', 'destination')
            if case[side] == STOCK]


def _install_advice(case):
    sides = _stock_sides(case)
    if not sides:
        return ('every node already runs the extension, so this is a bug '
                'in the extension: do not migrate such instances and report '
                'it')
    return 'install the extension on the %s' % ' and the '.join(sides)


def _sig_conductor_version(case, error):
    if not _chain_has(error, 'IncompatibleObjectVersion',
                      'XenapiLiveMigrateData'):
        return None
    if _role_of(error.get('origin')) != 'conductor':
        return None
    return ('conductor-cannot-read',
            'the %s conductor cannot read XenapiLiveMigrateData 1.5 sent by '
            'an upgraded compute (IncompatibleObjectVersion). In a real '
            'deployment its serializer asks the conductor service to '
            'backport the object (conductor.API().object_backport_versions, '
            'an RPC call on the conductor topic) and no conductor can read '
            'it: the live migration fails with MessagingTimeout after '
            'rpc_response_timeout (60 s by default), nothing changed, and '
            'the conductor goes on asking itself for the backport. Fix: '
            'upgrade conductors first (run nova-conductor-xenapi-sr), then '
            'the computes'
            % case['conductor'])


def _sig_conductor_timeout(case, error):
    """A stock conductor with an upgraded compute, as nova really fails.

    An upgraded compute answers with XenapiLiveMigrateData 1.5. Whoever
    receives it on a stock node (the conductor, or a stock source that
    the destination calls) cannot read it and asks the conductor to
    backport it (``object_backport_versions``, an RPC call), which a
    stock conductor cannot do either: the call times out
    (``MessagingTimeout`` after ``rpc_response_timeout``) and the
    conductor gives up on the host.
    """
    if case['conductor'] != STOCK or not any(
            case[side] == EXTENSION for side in ('source', 'destination')):
        return None
    if not (_chain_has(error, 'MessagingTimeout') or
            _chain_has(error, text='Timeout while checking')):
        return None
    return ('conductor-cannot-read',
            'a stock node could not read XenapiLiveMigrateData 1.5 from an '
            'upgraded compute and asked the stock conductor to backport it '
            '(object_backport_versions), which it cannot: nova failed with '
            'MessagingTimeout after rpc_response_timeout (60 s by default; '
            'the %s reported it) and gave up before anything moved. Fix: '
            'upgrade conductors first (run nova-conductor-xenapi-sr), then '
            'the computes' % (_role_of(error.get('origin')) or 'conductor'))


def _sig_uuid_invalid(case, error):
    if not _chain_has(error, text='UUID_INVALID'):
        return None
    return ('sr-uuid-invalid',
            'the source asked its pool for the SR uuid the destination '
            'introduced and XAPI answered UUID_INVALID: the source SR has '
            'another name (a legacy SR, nova bug 1566622); nothing moved. '
            'Fix: %s' % _install_advice(case))


def _sig_vdi_not_in_map(case, error):
    if not _chain_has(error, text='VDI_NOT_IN_MAP'):
        return None
    return ('vdi-not-in-map',
            'XAPI refused VM.migrate_send with VDI_NOT_IN_MAP: the '
            'destination introduced no SR under the uuid of one of the '
            'source SRs (nova bug 1566622); nothing moved. Fix: %s'
            % _install_advice(case))


def _sig_no_mirror(case, error):
    if not _chain_has(error, text='SR_DOES_NOT_SUPPORT_MIGRATION'):
        return None
    return ('sr-would-copy',
            'XAPI would have had to copy a shared volume because the SR '
            'uuids differ between the pools, and refused '
            '(SR_DOES_NOT_SUPPORT_MIGRATION); nothing moved. Fix: %s'
            % _install_advice(case))


def _sig_forget_twice(case, error):
    """nova 21's source forgets a shared uuid5 SR once per volume."""
    if _role_of(error.get('origin')) != 'source' or \
            not _chain_has(error, text="'HANDLE_INVALID', 'SR'"):
        return None
    return ('source-forgot-shared-sr-twice',
            'the VM moved, then the %s source tried to forget the SR shared '
            'by several of its volumes once per volume and XAPI answered '
            'HANDLE_INVALID (stock nova 21 lists an SR once per VBD); nova '
            'then ran its rollback and records the migration as failed '
            'although the VM runs on the destination. Do not live-migrate '
            'instances with several volumes behind one iSCSI target from '
            'this source; %s' % (case['source'], _install_advice(
                {'source': case['source'], 'destination': 'extension'})))


#: Exception types the extension raises to refuse a migration: the
#: source's pre-check, the destination's checks before any XAPI write.
EXTENSION_REFUSALS = ('MigrationPreCheckError', 'InvalidConnectionData',
                      'UntrustedSRUuid', 'UnsafeStockSource',
                      'SamePoolRefusal')


#: Words of a refusal that tells the operator what to do about it.
REMEDY_WORDS = ('install', 'upgrade', 'retry', 'remedy', 'fix', 'detach',
                'report a bug', 'migrate the instance', 'migrate it')


def says_what_to_do(message):
    """Whether ``message`` tells the operator what to do next."""
    text = (message or '').lower()
    return any(word in text for word in REMEDY_WORDS)


def _sig_extension_precheck(case, error):
    """The extension's own refusal, raised by one of its nodes.

    A refusal that does not say what to do (install, upgrade, retry, fix,
    ...) is not a clean refusal: it leaves the operator stuck.
    """
    role = _role_of(error.get('origin'))
    if role not in ('source', 'destination') or case[role] != EXTENSION:
        return None
    if error.get('type') not in EXTENSION_REFUSALS:
        return None
    message = (error.get('message') or '').strip()
    if not message or not says_what_to_do(message):
        return None
    return ('extension-refused',
            'the extension on the %s refused: %s' % (role, message))


def _sig_same_pool(case, error):
    """Stock nova 21's live migration inside one pool.

    ``VM.pool_migrate`` needs the VM's SRs plugged on the destination host
    (``VM_REQUIRES_SR``), or, for a legacy volume, the uuid5 SR nova
    introduces there cannot be scanned next to the legacy SR that holds
    the LUN (``SR_BACKEND_FAILURE_40``).
    """
    if case.get('layout') != SAME_POOL:
        return None
    code = [name for name in ('VM_REQUIRES_SR', 'SR_BACKEND_FAILURE_40')
            if _chain_has(error, text=name)]
    if not code:
        return None
    return ('same-pool-stock',
            'stock nova 21 cannot live-migrate volumes inside a pool: %s '
            '(nova\'s SRs are unshared, so XAPI cannot plug them on a '
            'second host, and a LUN shows in one SR per pool); nova\'s '
            'recover path then detaches the running instance\'s volumes. '
            'Fix: install the extension on the source, which refuses such '
            'a migration before anything changes; migrate with block '
            'migration to a host of another pool, or cold (nova migrate)'
            % code[0])


#: Known failure signatures, most specific first. Each takes ``(case,
#: error)`` and returns ``(name, detail)`` or None.
SIGNATURES = (_sig_conductor_version, _sig_conductor_timeout,
              _sig_extension_precheck,
              _sig_same_pool, _sig_uuid_invalid, _sig_vdi_not_in_map,
              _sig_no_mirror, _sig_forget_twice)


def recognise(case, error):
    """Return ``(signature, detail)`` for a known failure, else None."""
    for signature in SIGNATURES:
        found = signature(case, error)
        if found:
            return found
    return None


# --- reading XAPI state -----------------------------------------------------

def _vms(state, vm_name):
    return [rec for rec in (state.get('VM') or {}).values()
            if rec.get('name_label') == vm_name and
            not rec.get('is_control_domain')]


def _sr_label(state, ref):
    rec = (state.get('SR') or {}).get(ref) or {}
    return '%s (%s)' % (rec.get('uuid', ref), rec.get('name_label', ''))


def _new_objects(pool, before, after, allowed_srs=(), allowed_networks=()):
    """Strings naming SR/PBD/VDI/network records not in ``before``.

    Records of the SRs in ``allowed_srs`` (and their PBDs and VDIs) and
    the networks in ``allowed_networks`` are expected and not named. So
    are VDI records on an SR the pool already had: a raw iSCSI SR lists
    every LUN of its target once scanned, so a scan of an SR shared with
    another instance adds the migrating LUN's record there; no storage is
    left behind (copies are checked on their own).
    """
    found = []
    for ref in sorted(set(after.get('network') or {}) -
                      set(before.get('network') or {})):
        if ref not in allowed_networks:
            found.append('%s pool: new network %s' % (
                pool, after['network'][ref].get('name_label', ref)))
    for cls in ('SR', 'PBD', 'VDI'):
        new = set(after.get(cls) or {}) - set(before.get(cls) or {})
        for ref in sorted(new):
            rec = after[cls][ref]
            sr_ref = ref if cls == 'SR' else rec.get('SR')
            if sr_ref in allowed_srs:
                continue
            if cls == 'VDI' and sr_ref in (before.get('SR') or {}):
                continue
            if cls == 'SR':
                what = _sr_label(after, ref)
            elif cls == 'PBD':
                what = 'of SR %s' % _sr_label(after, rec.get('SR'))
            else:
                what = '%s on SR %s' % (rec.get('uuid'),
                                        _sr_label(after, rec.get('SR')))
            found.append('%s pool: new %s %s' % (pool, cls, what))
    return found


def _lost_objects(pool, before, after, refs=None):
    """Strings naming baseline SR/PBD/VDI/VBD records gone or broken.

    A record is broken when it is still there but a baseline PBD that was
    plugged is now unplugged, or a baseline VBD that was attached is now
    detached (storage under a running VM). ``refs`` limits the check.
    """
    lost = []
    for cls, flag in (('PBD', 'currently_attached'),
                      ('VBD', 'currently_attached')):
        for ref, rec in sorted((before.get(cls) or {}).items()):
            if refs is not None and ref not in refs:
                continue
            now = (after.get(cls) or {}).get(ref)
            if now is not None and rec.get(flag) and not now.get(flag):
                what = ('of SR %s' % _sr_label(before, rec.get('SR'))
                        if cls == 'PBD' else 'of the VM, device %s'
                        % rec.get('device'))
                lost.append('%s pool: %s %s no longer attached' % (
                    pool, cls, what))
    for ref in sorted(set(before.get('network') or {}) -
                      set(after.get('network') or {})):
        if refs is None or ref in refs:
            lost.append('%s pool: lost network %s' % (
                pool, before['network'][ref].get('name_label', ref)))
    for cls in ('SR', 'PBD', 'VDI', 'VBD'):
        gone = set(before.get(cls) or {}) - set(after.get(cls) or {})
        for ref in sorted(gone):
            if refs is not None and ref not in refs:
                continue
            rec = before[cls][ref]
            if cls == 'SR':
                what = _sr_label(before, ref)
            elif cls == 'PBD':
                what = 'of SR %s' % _sr_label(before, rec.get('SR'))
            elif cls == 'VBD':
                what = 'of the VM, device %s' % rec.get('device')
            else:
                what = '%s on SR %s' % (rec.get('uuid'),
                                        _sr_label(before, rec.get('SR')))
            lost.append('%s pool: lost %s %s' % (pool, cls, what))
    return lost


def _changes(pool, before, after):
    """Strings naming every watched record that differs."""
    changes = []
    for cls in _WATCHED:
        old, new = before.get(cls) or {}, after.get(cls) or {}
        for ref in sorted(set(old) | set(new)):
            if old.get(ref) != new.get(ref):
                state = 'added' if ref not in old else (
                    'removed' if ref not in new else 'changed')
                rec = new.get(ref) or old.get(ref)
                changes.append('%s pool: %s %s %s' % (
                    pool, cls, state, rec.get('uuid', ref)))
    return changes


def _vm_sr_refs(state, vm_name):
    """SR refs holding the disks of the VM ``vm_name`` in ``state``."""
    vm_refs = set(ref for ref, rec in (state.get('VM') or {}).items()
                  if rec.get('name_label') == vm_name)
    vdis = set(rec.get('VDI') for rec in (state.get('VBD') or {}).values()
               if rec.get('VM') in vm_refs)
    return set((state.get('VDI') or {}).get(vdi, {}).get('SR')
               for vdi in vdis if vdi in (state.get('VDI') or {})) - {None}


def _srs_of_other_vms(state, vm_name):
    """SR refs holding disks of any VM but ``vm_name`` in ``state``."""
    names = set(rec.get('name_label') for rec in
                (state.get('VM') or {}).values()
                if not rec.get('is_control_domain')) - {vm_name}
    srs = set()
    for name in names:
        srs |= _vm_sr_refs(state, name)
    return srs


def _vm_networks(state, vm_name):
    """Network refs the VIFs of the VM ``vm_name`` are on."""
    vm_refs = set(ref for ref, rec in (state.get('VM') or {}).items()
                  if rec.get('name_label') == vm_name)
    return set(rec.get('network') for rec in
               (state.get('VIF') or {}).values()
               if rec.get('VM') in vm_refs)


def _vm_problems(baseline, after, vm_name, expect_on):
    """Where the VM is versus where it should be (``source``/``dest``)."""
    problems = []
    for pool in ('source', 'destination'):
        vms = _vms(after[pool], vm_name)
        running = [vm for vm in vms if vm.get('power_state') == 'Running']
        if pool == expect_on:
            if len(vms) != 1 or len(running) != 1:
                problems.append('%s pool: %d VM(s) named %s (%d running), '
                                'expected one running' % (
                                    pool, len(vms), vm_name, len(running)))
        elif vms:
            problems.append('%s pool: VM %s present (%s)' % (
                pool, vm_name, ', '.join(vm.get('power_state', '?')
                                         for vm in vms)))
    return problems


def _copy_problems(copies):
    """One string per copy the mock XAPI recorded."""
    problems = []
    for item in copies:
        if isinstance(item, dict):
            problems.append('XAPI copied VDI %s from SR %s to SR %s' % (
                item.get('vdi_uuid', '?'), item.get('source_sr_uuid', '?'),
                item.get('destination_sr_uuid', '?')))
        else:
            problems.append('XAPI copied %s' % (item,))
    return problems


# --- classification ---------------------------------------------------------

def classify(case, flow, baseline, after, copies, vm_name, mutations=(),
             live_migration_began=False, bystanders=(), same_pool=False):
    """Return the :class:`Verdict` of one case (see the module doc).

    :param mutations: driver calls of extension nodes that changed the
        ``block_device_info`` nova handed them (``[(node, step)]``); nova
        persists connection_info from it, so any is a problem.
    :param live_migration_began: the source's driver ``live_migration``
        was called. nova 21's ``_do_live_migration`` sets the migration to
        error and the instance to ERROR for any failure from there on,
        even after a clean rollback: the detail says how to recover.
    :param bystanders: names of VMs the case does not migrate; each must
        keep its pool, power state, VBDs, VDIs and SRs (plugged).
    :param same_pool: source and destination are two hosts of one pool,
        so ``baseline`` and ``after`` hold the same pool twice: the pool
        is judged once, as the source (see :func:`_classify_same_pool`).
    """
    if same_pool:
        found = _classify_same_pool(case, flow, baseline['source'],
                                    after['source'], copies, vm_name,
                                    mutations)
        baseline = {'source': baseline['source'], 'destination': {}}
        after = {'source': after['source'], 'destination': {}}
    else:
        found = _classify(case, flow, baseline, after, copies, vm_name,
                          mutations)
    harmed = bystander_problems(baseline, after, bystanders)
    if harmed:
        found = Verdict(UNSAFE, '%s; BUT another instance was harmed: %s'
                        % (found.detail.rstrip('. '), '; '.join(harmed)),
                        leftovers=found.leftovers, copies=found.copies,
                        signature=found.signature)
    if live_migration_began and flow.get('error') is not None:
        found.detail = ('%s. nova 21 set the migration to error and the '
                        'instance to ERROR (even when the rollback was '
                        'clean): once the instance checks out, %s' % (
                            found.detail.rstrip('. '), RESET_STATE))
    return found


def _classify(case, flow, baseline, after, copies, vm_name, mutations):
    copies = list(copies or [])
    copy_problems = _copy_problems(copies) + [
        'the driver on %s changed the block_device_info nova passed to %s '
        '(nova persists connection_info from it)' % (node, step)
        for node, step in mutations]
    error = flow.get('error')
    if error is None and flow.get('phase') == 'done':
        found = _classify_migrated(baseline, after, copies, copy_problems,
                                   vm_name)
        if flow.get('post_error'):
            return _post_at_destination_failed(case, flow['post_error'],
                                               found)
        return found
    if error is None:
        return Verdict(UNSAFE, 'the flow stopped in phase %s without an '
                       'error; treat the instance as unknown'
                       % flow.get('phase'), copies=len(copies))

    found = recognise(case, error)
    # Whatever the error: where did things end up?
    if _vm_only_on_destination(after, vm_name):
        # The VM moved although nova recorded a failure: its storage on
        # the source is gone with it, and nova's records are wrong.
        leftovers = _migrated_leftovers(baseline, after, vm_name)
        vm_problems = ['the VM now runs on the destination pool although '
                       'nova recorded the migration as failed (nova still '
                       'places the instance on the source host: correct '
                       'its host in nova by hand)']
        vm_problems.extend(_dangling_disks('destination',
                                           after['destination'], vm_name))
    else:
        leftovers = []
        for pool in ('source', 'destination'):
            leftovers.extend(_new_objects(pool, baseline[pool],
                                          after[pool]))
            leftovers.extend(_lost_objects(pool, baseline[pool],
                                           after[pool]))
        vm_problems = _vm_problems(baseline, after, vm_name, 'source')
    leftovers = sorted(leftovers)
    problems = copy_problems + leftovers + vm_problems

    if found is None:
        return Verdict(
            UNSAFE, 'failed with an error no check recognises (%s on %s: '
            '%s)%s; check both pools by hand before retrying' % (
                error.get('type'), error.get('origin'),
                _first_line(error.get('message')),
                _problem_suffix(problems)),
            leftovers=leftovers, copies=len(copies))
    signature, advice = found
    if problems:
        return Verdict(UNSAFE, '%s; BUT: %s' % (advice, '; '.join(problems)),
                       leftovers=leftovers, copies=len(copies),
                       signature=signature)
    if flow.get('phase') == 'precheck':
        changes = []
        for pool in ('source', 'destination'):
            changes.extend(_changes(pool, baseline[pool], after[pool]))
        if not changes:
            return Verdict(REFUSED, advice, signature=signature)
        return Verdict(FAILED_CLEAN, '%s (the pre-check changed records '
                       'but left nothing behind: %s)' % (
                           advice, '; '.join(changes)),
                       signature=signature)
    return Verdict(FAILED_CLEAN, advice, signature=signature)


def _classify_same_pool(case, flow, before, after, copies, vm_name,
                        mutations):
    """A case whose source and destination hosts share one pool.

    A pool migration (``VM.pool_migrate``) keeps the VM's record, its
    VBDs and their SRs: whatever happens, the one pool must end with the
    VM running, every SR, PBD, VDI and VBD it had (attached as before)
    and nothing new. Comparing the pool with itself as two pools would
    see the VM "on both pools".
    """
    empty = {}
    if flow.get('error') is None and flow.get('phase') == 'done':
        copies = list(copies or [])
        problems = _copy_problems(copies) + [
            'the driver on %s changed the block_device_info nova passed '
            'to %s (nova persists connection_info from it)' % (node, step)
            for node, step in mutations]
        problems.extend(_vm_problems({'source': before,
                                      'destination': empty},
                                     {'source': after, 'destination': empty},
                                     vm_name, 'source'))
        problems.extend(_dangling_disks('source', after, vm_name))
        leftovers = sorted(
            _new_objects('source', before, after,
                         allowed_networks=_vm_networks(after, vm_name)) +
            _lost_objects('source', before, after))
        problems.extend(leftovers)
        if problems:
            return Verdict(UNSAFE, 'the VM moved within its pool, BUT: %s'
                           % '; '.join(problems), leftovers=leftovers,
                           copies=len(copies))
        return Verdict(MIGRATED, 'migrated within the pool; the VM keeps '
                       'SRs %s' % ', '.join(sorted(
                           after['SR'][ref]['uuid'] for ref in
                           _vm_sr_refs(after, vm_name)
                           if ref in after.get('SR', {}))), copies=0)
    return _classify(case, flow, {'source': before, 'destination': empty},
                     {'source': after, 'destination': empty}, copies,
                     vm_name, mutations)


def _post_at_destination_failed(case, post_error, found):
    """The VM moved, then the destination's post-migration step failed.

    nova's source logs the failure and finishes; the destination's
    manager has set the instance's vm_state to ERROR
    (``ComputeManager.post_live_migration_at_destination``).
    """
    detail = ('the VM moved, then post_live_migration_at_destination '
              'failed on the %s destination (%s: %s); nova set the '
              'instance to ERROR. Check the instance on the destination '
              'host (its disks and networks), then %s' % (
                  case['destination'], post_error.get('type'),
                  _first_line(post_error.get('message')), RESET_STATE))
    if found.outcome != MIGRATED:
        detail += '; and: %s' % found.detail
    return Verdict(UNSAFE, detail, leftovers=found.leftovers,
                   copies=found.copies, signature='post-at-destination-failed')


def bystander_problems(baseline, after, names):
    """What happened to VMs that were not migrated (``names``).

    Each must still be on its pool, in the same power state, with every
    VBD it had (attached as before), their VDIs, and the SRs of those
    VDIs with their PBDs plugged as before.
    """
    problems = []
    for pool in ('source', 'destination'):
        before, now = baseline[pool], after[pool]
        for name in names:
            vms = dict((ref, rec) for ref, rec in
                       (before.get('VM') or {}).items()
                       if rec.get('name_label') == name)
            if not vms:
                continue
            for ref, rec in vms.items():
                still = (now.get('VM') or {}).get(ref)
                if still is None:
                    problems.append('%s pool: VM %s is gone' % (pool, name))
                    continue
                if still.get('power_state') != rec.get('power_state'):
                    problems.append('%s pool: VM %s is %s, was %s' % (
                        pool, name, still.get('power_state'),
                        rec.get('power_state')))
            refs = set()
            for vbd_ref, vbd in (before.get('VBD') or {}).items():
                if vbd.get('VM') not in vms:
                    continue
                refs.add(vbd_ref)
                vdi = (before.get('VDI') or {}).get(vbd.get('VDI'))
                if vdi is None:
                    continue
                refs.add(vbd['VDI'])
                refs.add(vdi.get('SR'))
                refs.update(ref for ref, pbd in
                            (before.get('PBD') or {}).items()
                            if pbd.get('SR') == vdi.get('SR'))
            problems.extend('%s (of VM %s)' % (item, name) for item in
                            _lost_objects(pool, before, now, refs=refs))
    return problems


def _dangling_disks(pool, state, vm_name):
    """Disks of the VM whose VDI (or its SR) is gone from ``state``."""
    vm_refs = set(ref for ref, rec in (state.get('VM') or {}).items()
                  if rec.get('name_label') == vm_name)
    vdis = state.get('VDI') or {}
    srs = state.get('SR') or {}
    problems = []
    for rec in (state.get('VBD') or {}).values():
        if rec.get('VM') not in vm_refs or rec.get('empty'):
            continue
        vdi = rec.get('VDI')
        if vdi not in vdis or vdis[vdi].get('SR') not in srs:
            problems.append('%s pool: disk %s of the VM has lost its VDI or '
                            'SR' % (pool, rec.get('device') or
                                    rec.get('userdevice')))
    return sorted(problems)


def _vm_only_on_destination(after, vm_name):
    return (not _vms(after['source'], vm_name) and
            len(_vms(after['destination'], vm_name)) == 1)


def _classify_migrated(baseline, after, copies, copy_problems, vm_name):
    problems = list(copy_problems)
    problems.extend(_vm_problems(baseline, after, vm_name, 'destination'))
    problems.extend(_dangling_disks('destination', after['destination'],
                                    vm_name))
    leftovers = _migrated_leftovers(baseline, after, vm_name)
    src_before = baseline['source']
    dst_after = after['destination']
    source_srs = _vm_sr_refs(src_before, vm_name)
    dest_srs = _vm_sr_refs(dst_after, vm_name)
    source_uuids = set(src_before['SR'][ref]['uuid'] for ref in source_srs)
    dest_uuids = set(dst_after['SR'][ref]['uuid'] for ref in dest_srs
                     if ref in dst_after.get('SR', {}))
    if source_uuids and dest_uuids != source_uuids:
        problems.append('destination SRs %s differ from the source SRs %s'
                        % (sorted(dest_uuids), sorted(source_uuids)))
    problems.extend(leftovers)
    if problems:
        return Verdict(UNSAFE, 'the VM moved, BUT: %s' % '; '.join(problems),
                       leftovers=leftovers, copies=len(copies))
    return Verdict(MIGRATED, 'migrated; the destination uses SRs %s'
                   % ', '.join(sorted(dest_uuids)) if dest_uuids else
                   'migrated', copies=0)


def _migrated_leftovers(baseline, after, vm_name):
    """Leftovers and losses once the VM runs on the destination."""
    leftovers = []
    # The source must have forgotten the SRs of the migrated disks and
    # kept everything else; it must have nothing new.
    source_srs = _vm_sr_refs(baseline['source'], vm_name)
    src_before, src_after = baseline['source'], after['source']
    leftovers.extend(_new_objects('source', src_before, src_after))
    # An SR another VM still uses must stay (uuid5 SRs are per target).
    shared = _srs_of_other_vms(src_after, vm_name)
    for ref in sorted(source_srs - shared):
        if ref in (src_after.get('SR') or {}):
            leftovers.append('source pool: SR %s of the migrated volumes '
                             'not forgotten' % _sr_label(src_after, ref))
    kept = set(src_before.get('SR') or {}) - source_srs
    kept_pbds = set(ref for ref, rec in (src_before.get('PBD') or {}).items()
                    if rec.get('SR') in kept)
    # nova's per-port network of the moved VM (``vif.py``
    # ``XenAPIOpenVswitchDriver.unplug``) may go or stay: xapi keeps the
    # source's VIF records of a VM that left the pool until its database
    # GC (``xapi_vm_migrate.ml``, ``db_gc.ml``), and nova keeps a network
    # that still lists VIFs. Neither is storage.
    vm_networks = _vm_networks(src_before, vm_name)
    leftovers.extend(_lost_objects(
        'source', src_before, src_after,
        refs=kept | kept_pbds |
        (set(src_before.get('network') or {}) - vm_networks)))
    # The destination: new SRs are exactly those holding the VM's disks,
    # each under the uuid the source used.
    dst_before, dst_after = baseline['destination'], after['destination']
    dest_srs = _vm_sr_refs(dst_after, vm_name)
    leftovers.extend(_new_objects('destination', dst_before, dst_after,
                                  allowed_srs=dest_srs,
                                  allowed_networks=_vm_networks(
                                      dst_after, vm_name)))
    leftovers.extend(_lost_objects('destination', dst_before, dst_after))
    return sorted(leftovers)


def _first_line(text):
    return (text or '').strip().splitlines()[0] if (text or '').strip() \
        else '(no message)'


def _problem_suffix(problems):
    return '; and: %s' % '; '.join(problems) if problems else ''


DO_NO_HARM = 'the extension broke a migration stock nova handles'


def is_all_stock(case):
    return all(case[role] == STOCK for role in
               ('conductor', 'source', 'destination'))


def do_no_harm(case, outcome, detail, stock_outcome):
    """DESIGN section 2 item 7, across the cases of one volume set.

    Once the conductors run the extension, installing it on any subset of
    computes must not change the migrations stock nova already handles:
    when the all-stock case of the set (``stock_outcome``) migrated, a
    case with an extension conductor that did not migrate is UNSAFE.

    :returns: the replacing :class:`Verdict`, or None when the rule does
        not apply (no all-stock outcome known, it did not migrate, a stock
        conductor, or this case migrated).
    """
    if (stock_outcome != MIGRATED or case['conductor'] != EXTENSION or
            outcome == MIGRATED or is_all_stock(case)):
        return None
    return Verdict(
        UNSAFE, '%s: with stock nova on every node volume set %s migrates, '
        'with this mix it ended %s (%s). Do not roll this version of '
        'nova-xenapi-sr out; report a bug against it' % (
            DO_NO_HARM, case['volumes'], outcome, detail),
        signature='do-no-harm')


def unchecked_do_no_harm(cases):
    """Volume sets whose do-no-harm rule a run could not apply.

    Sets with a case run by an extension conductor but without their
    all-stock case (a filtered run).
    """
    stock = set(case['volumes'] for case in cases if is_all_stock(case))
    return sorted(set(case['volumes'] for case in cases
                      if case['conductor'] == EXTENSION) - stock)


#: The layout in which XAPI cannot live-migrate nova's volumes: nova's
#: SRs are unshared, and ``VM.pool_migrate`` needs each plugged on the
#: destination host (``VM_REQUIRES_SR``, ``SR_NOT_SHARABLE``).
SAME_POOL = cases_mod.SAME_POOL


def extension_case_ok(case, outcome):
    """Whether an all-extension case ended as it must.

    Migrated; or, inside one pool, refused by the extension itself with
    what to do (the ``extension-refused`` signature), since no driver can
    move nova's unshared SRs there.
    """
    if outcome == MIGRATED:
        return True
    return (case.get('layout') == SAME_POOL and outcome == REFUSED and
            case.get('signature') == 'extension-refused')


def unsafe_before_upgrade(verdicts):
    """The UNSAFE cases that are stock nova 21's own behaviour.

    Both computes run stock nova and the all-stock case of the same volume
    set and layout is UNSAFE too: the upgrade neither causes nor can
    change them (an extension conductor only registers the object). A
    case whose all-stock case did not run is not among them.

    :param verdicts: ``[(case, outcome)]``.
    :returns: the cases, in the order given.
    """
    all_stock = dict(((case.get('layout'), case['volumes']), outcome)
                     for case, outcome in verdicts if is_all_stock(case))
    return [case for case, outcome in verdicts
            if outcome == UNSAFE and case['source'] == STOCK and
            case['destination'] == STOCK and
            all_stock.get((case.get('layout'), case['volumes'])) == UNSAFE]


def exit_status(verdicts):
    """0 only if the upgrade makes no case UNSAFE and all-extension is ok.

    UNSAFE counts unless it is stock nova's own
    (:func:`unsafe_before_upgrade`); see :func:`extension_case_ok`.

    :param verdicts: ``[(case, outcome)]``.
    """
    unsafe = sum(1 for _, outcome in verdicts if outcome == UNSAFE)
    if unsafe > len(unsafe_before_upgrade(verdicts)):
        return 1
    for case, outcome in verdicts:
        if all(case[role] == EXTENSION for role in
               ('conductor', 'source', 'destination')) and \
                not extension_case_ok(case, outcome):
            return 1
    return 0
