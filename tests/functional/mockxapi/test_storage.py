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

"""SR, PBD, VDI and secret rules through the PyPI SDK."""

import threading

import XenAPI

from nova_xenapi_sr import naming
from nova_xenapi_sr_tools.mockxapi import array
from nova_xenapi_sr_tools.mockxapi import storage
from tests.functional.mockxapi import base


class SRIntroduceTest(base.MockXapiTestCase):

    def test_introduce_is_record_only_and_uuid_unique(self):
        sr = self.b.SR.introduce('sr-1', 'label', 'desc', 'iscsi', '',
                                 False, {})
        rec = self.b.SR.get_record(sr)
        self.assertEqual([], rec['PBDs'])
        self.assertEqual('sr-1', rec['uuid'])
        self.assertFailure(['SR_UUID_EXISTS', 'sr-1'], self.b.SR.introduce,
                           'sr-1', 'other', '', 'iscsi', '', False)
        # the same uuid in another pool is fine
        self.a.SR.introduce('sr-1', 'label', '', 'iscsi', '', False)

    def test_legacy_uuid_accepted(self):
        legacy = naming.legacy_sr_uuid('vol-1')
        sr = self.b.SR.introduce(legacy, 'l', '', 'iscsi', '', False, {})
        self.assertEqual(sr, self.b.SR.get_by_uuid(legacy))

    def test_unknown_type_fails_at_plug(self):
        """xapi_sr.ml introduce; storage_access.ml bind at PBD.plug.

        xapi_sr.ml introduce checks no type (it lower-cases it);
        xapi_pbd.ml plug -> storage_access.ml bind -> check_queue_exists:
        SR_UNKNOWN_DRIVER [type], even for a PBD marked attached.
        """
        sr = self.b.SR.introduce('u', 'l', '', 'NoPe', '', False)
        self.assertEqual('nope', self.b.SR.get_type(sr))
        pbd = self.b.PBD.create({'host': self.b.host.get_all()[0],
                                 'SR': sr, 'device_config': {}})
        self.assertFailure(['SR_UNKNOWN_DRIVER', 'nope'], self.b.PBD.plug,
                           pbd)
        self.assertFalse(self.b.PBD.get_currently_attached(pbd))
        self.srv.pool('pool-b').db.get('PBD', pbd)['currently_attached'] = \
            True
        self.assertFailure(['SR_UNKNOWN_DRIVER', 'nope'], self.b.PBD.plug,
                           pbd)


class PBDTest(base.MockXapiTestCase):

    def test_pbd_exists(self):
        sr, pbd = self.iscsi_sr(self.b, self.data('vol-1'), plug=False)
        host = self.b.host.get_all()[0]
        self.assertFailure(['PBD_EXISTS', sr, host, pbd], self.b.PBD.create,
                           {'host': host, 'SR': sr, 'device_config': {}})

    def test_create_checks_the_sr_not_the_host(self):
        """message_forwarding.ml PBD.create: the SR is read, the host not.

        message_forwarding.ml PBD.create marks the SR (with_sr_marked
        reads it: HANDLE_INVALID); Db.PBD.create checks no reference, so a
        PBD of an unknown host is made (db_gc.ml gc_PBDs removes it).
        """
        self.assertFailure(['HANDLE_INVALID', 'SR', 'OpaqueRef:s'],
                           self.b.PBD.create, {'host': 'OpaqueRef:x',
                                               'SR': 'OpaqueRef:s',
                                               'device_config': {}})
        sr = self.b.SR.introduce('u', 'l', '', 'iscsi', '', False)
        pbd = self.b.PBD.create({'host': 'OpaqueRef:x', 'SR': sr,
                                 'device_config': {}})
        self.assertEqual('OpaqueRef:x', self.b.PBD.get_host(pbd))
        self.assertEqual([pbd], self.srv.run_gc('pool-b')['pool-b']['PBD'])

    def test_failed_creates_leak_the_moved_secret(self):
        """message_forwarding.ml PBD.create: failed creates leak a secret.

        message_forwarding.ml PBD.create: move_passwds_to_secrets runs
        before create_common's PBD_EXISTS (and before the SR is read), so
        a failed CHAP PBD.create leaves a secret nothing refers to: xapi's
        leak, listed in xapi_orphaned_secrets (Pool.inspect).
        """
        sr, pbd = self.iscsi_sr(self.b, self.data('vol-chap'), plug=False)
        host = self.b.host.get_all()[0]
        config = naming.device_config(self.data('vol-chap'))
        before = set(self.b.secret.get_all())
        self.assertFailure(['PBD_EXISTS', sr, host, pbd], self.b.PBD.create,
                           {'host': host, 'SR': sr, 'device_config': config})
        self.assertFailure(['HANDLE_INVALID', 'SR', 'OpaqueRef:s'],
                           self.b.PBD.create, {'host': host,
                                               'SR': 'OpaqueRef:s',
                                               'device_config': config})
        leaked = set(self.b.secret.get_all()) - before
        self.assertEqual(2, len(leaked))
        self.assertEqual(['s3cret', 's3cret'],
                         [self.b.secret.get_value(s) for s in leaked])
        orphans = self.srv.pool('pool-b').inspect()['xapi_orphaned_secrets']
        self.assertEqual(leaked, set(orphans) & leaked)
        # the PBD's own secret is not an orphan
        stored = self.b.secret.get_by_uuid(
            self.b.PBD.get_device_config(pbd)['chappassword_secret'])
        self.assertNotIn(stored, orphans)
        self.assertEqual(set(self.b.secret.get_all()), set(orphans) |
                         {stored})

    def test_plug_and_unplug_are_idempotent(self):
        sr, pbd = self.iscsi_sr(self.b, self.data('vol-1'))
        self.assertTrue(self.b.PBD.get_currently_attached(pbd))
        self.b.PBD.plug(pbd)
        self.b.PBD.unplug(pbd)
        self.b.PBD.unplug(pbd)
        self.assertFalse(self.b.PBD.get_currently_attached(pbd))

    def _plug_fails(self, config, code, sr_type='iscsi'):
        sr = self.b.SR.introduce('sr-x', 'l', '', sr_type, '', False)
        pbd = self.b.PBD.create({'host': self.b.host.get_all()[0],
                                 'SR': sr, 'device_config': config})
        exc = self.assertRaises(XenAPI.Failure, self.b.PBD.plug, pbd)
        self.assertEqual('SR_BACKEND_FAILURE_%d' % code, exc.details[0])
        self.assertFalse(self.b.PBD.get_currently_attached(pbd))

    def test_plug_missing_target(self):
        self._plug_fails({'targetIQN': base.IQN}, 95)

    def test_plug_missing_iqn(self):
        self._plug_fails({'target': '192.0.2.10'}, 96)

    def test_plug_bad_port(self):
        for port in ('0', '65536', '3260,1', 'x'):
            self.b.SR.forget(self.b.SR.get_by_uuid('sr-x')) \
                if self.b.SR.get_all_records_where(
                    'field "uuid" = "sr-x"') else None
            self._plug_fails({'target': '192.0.2.10', 'port': port,
                              'targetIQN': base.IQN}, 142)

    def test_plug_nothing_at_portal(self):
        self._plug_fails({'target': '192.0.2.99', 'port': '3260',
                          'targetIQN': base.IQN}, 141)

    def test_plug_iqn_not_at_portal(self):
        self._plug_fails({'target': '192.0.2.10', 'port': '3260',
                          'targetIQN': 'iqn.nope'}, 68)

    def test_plug_chap(self):
        data = self.data('vol-chap')
        good = naming.device_config(data)
        self._plug_fails(dict(good, chappassword='wrong'), 68)
        self.b.SR.forget(self.b.SR.get_by_uuid('sr-x'))
        self._plug_fails({k: v for k, v in good.items()
                          if not k.startswith('chap')}, 68)
        sr, pbd = self.iscsi_sr(self.b, data)
        self.assertTrue(self.b.PBD.get_currently_attached(pbd))

    def test_password_stored_as_secret(self):
        sr, pbd = self.iscsi_sr(self.b, self.data('vol-chap'), plug=False)
        config = self.b.PBD.get_device_config(pbd)
        self.assertNotIn('chappassword', config)
        self.assertEqual('chapuser', config['chapuser'])
        secret = self.b.secret.get_by_uuid(config['chappassword_secret'])
        self.assertEqual('s3cret', self.b.secret.get_value(secret))
        # message_forwarding.ml move_passwds_to_secrets made one secret,
        # xapi_pbd.ml duplicate_passwds a copy, and only the copy is
        # stored: xapi itself orphans the first
        orphans = self.srv.pool('pool-b').inspect()['xapi_orphaned_secrets']
        self.assertEqual(1, len(orphans))
        self.assertNotEqual(secret, orphans[0])
        self.assertEqual('s3cret', self.b.secret.get_value(orphans[0]))
        self.assertEqual(sorted([secret] + orphans),
                         sorted(self.b.secret.get_all()))
        # plug reads the secret back
        self.b.PBD.plug(pbd)
        self.assertTrue(self.b.PBD.get_currently_attached(pbd))
        # forgetting the SR destroys the stored secret
        # (xapi_pbd.ml destroy -> clean_out_passwds), not xapi's orphan
        self.b.PBD.unplug(pbd)
        self.b.SR.forget(sr)
        self.assertEqual(orphans, self.b.secret.get_all())
        self.assertEqual(orphans, self.srv.pool('pool-b').inspect()[
            'xapi_orphaned_secrets'])

    def test_call_log_masks_chap_passwords(self):
        # xapi never logs a *password value; neither does the call log
        self.srv.pool('pool-b').clear_calls()
        self.iscsi_sr(self.b, self.data('vol-chap'))
        calls = self.srv.pool('pool-b').calls()
        self.assertNotIn('s3cret', repr(calls))
        created = [args for method, args in calls if method == 'PBD.create']
        self.assertEqual('***',
                         created[0][0]['device_config']['chappassword'])

    def test_unplug_with_an_attached_vbd_whose_vdi_is_gone(self):
        """xapi_pbd.ml get_active_vdis_by_pbd: a VBD whose VDI is gone.

        xapi_pbd.ml get_active_vdis_by_pbd reads Db.VDI.get_SR of every
        attached VBD's VDI on the host: a VDI a scan forgot (SM SR.py
        synchronise_gone, when its LUN vanished) is HANDLE_INVALID
        ["VDI", ref] there, and the PBD stays plugged.
        """
        vm = self.a.VM.get_by_name_label('instance-00000001')[0]
        vbd = self.a.VM.get_VBDs(vm)[0]
        vdi = self.a.VBD.get_VDI(vbd)
        sr = self.a.VDI.get_SR(vdi)
        pbd = self.a.SR.get_PBDs(sr)[0]
        self.srv.array.remove_lun('192.0.2.10', 3260, base.IQN, 1)
        self.a.SR.scan(sr)
        self.assertTrue(self.a.VBD.get_currently_attached(vbd))
        self.assertFailure(['HANDLE_INVALID', 'VDI', vdi],
                           self.a.PBD.unplug, pbd)
        self.assertTrue(self.a.PBD.get_currently_attached(pbd))
        # xapi_vbd_helpers.ml valid_operations reads the VDI too, so the
        # VBD cannot be unplugged either; db_gc.ml gc_VBDs removes it, and
        # then nothing is in use
        self.assertFailure(['HANDLE_INVALID', 'VDI', vdi],
                           self.a.VBD.unplug, vbd)
        self.assertEqual([vbd], self.srv.run_gc('pool-a')['pool-a']['VBD'])
        self.a.PBD.unplug(pbd)

    def test_unplug_with_vdi_in_use(self):
        vm = self.a.VM.get_by_name_label('instance-00000001')[0]
        vbd = self.a.VM.get_VBDs(vm)[0]
        vdi = self.a.VBD.get_VDI(vbd)
        sr = self.a.VDI.get_SR(vdi)
        pbd = self.a.SR.get_PBDs(sr)[0]
        self.assertFailure(['VDI_IN_USE', vdi], self.a.PBD.unplug, pbd)
        self.a.VBD.unplug(vbd)
        self.a.PBD.unplug(pbd)


class UnplugInUseTest(base.MockXapiTestCase):
    """PBD.unplug names every VDI in use (xapi_pbd.ml unplug)."""

    def scenario(self):
        sc = base.two_pools()
        sc.add_instance('pool-a', 2, volumes=[
            ('vol-2', 'uuid5', '/dev/xvdb'), ('vol-3', 'uuid5', '/dev/xvdc')])
        return sc

    def test_all_vdis_in_use_are_named(self):
        # instance 1 (vol-1) and instance 2 (vol-2, vol-3) share the uuid5
        # SR of the target: all three VDIs are named, VM by VM
        # get_active_vdis_by_pbd: the VMs come from Db.VM.get_records_where
        # (descending ref order), then each VM's VBDs
        vbds = []
        vms = [self.a.VM.get_by_name_label(name)[0]
               for name in ('instance-00000001', 'instance-00000002')]
        for vm in sorted(vms, reverse=True):
            vbds.extend(self.a.VM.get_VBDs(vm))
        vdis = [self.a.VBD.get_VDI(v) for v in vbds]
        sr = self.a.VDI.get_SR(vdis[0])
        self.assertEqual([sr] * 3, [self.a.VDI.get_SR(v) for v in vdis])
        pbd = self.a.SR.get_PBDs(sr)[0]
        self.assertFailure(['VDI_IN_USE'] + vdis, self.a.PBD.unplug, pbd)
        self.a.VBD.unplug(vbds[1])
        self.assertFailure(['VDI_IN_USE', vdis[0], vdis[2]],
                           self.a.PBD.unplug, pbd)
        self.a.VBD.unplug(vbds[0])
        self.a.VBD.unplug(vbds[2])
        self.a.PBD.unplug(pbd)
        self.assertFalse(self.a.PBD.get_currently_attached(pbd))


class ScanTest(base.MockXapiTestCase):

    def test_scan_needs_plugged_pbd(self):
        sr, pbd = self.iscsi_sr(self.b, self.data('vol-1'), plug=False)
        self.assertFailure(['SR_NO_PBDS', sr], self.b.SR.scan, sr)
        no_pbd = self.b.SR.introduce('u', 'l', '', 'iscsi', '', False)
        self.assertFailure(['SR_NO_PBDS', no_pbd], self.b.SR.scan, no_pbd)

    def test_scan_shows_every_lun_behind_the_target(self):
        sr, pbd = self.iscsi_sr(self.b, self.data('vol-1'))
        self.b.SR.scan(sr)
        vdis = {self.b.VDI.get_uuid(v): self.b.VDI.get_record(v)
                for v in self.b.SR.get_VDIs(sr)}
        target = self.srv.array.target('192.0.2.10', 3260, base.IQN)
        self.assertEqual({lun.vdi_uuid for lun in target.luns.values()},
                         set(vdis))
        lun1 = target.luns[1]
        rec = vdis[lun1.vdi_uuid]
        self.assertEqual({'LUNid': '1', 'SCSIid': lun1.scsi_id,
                          'backend-kind': 'vbd'}, rec['sm_config'])
        # RawISCSISR.py ISCSIVDI.load: managed = True; LUNperVDI.py
        # _query: the location is the uuid
        self.assertIs(True, rec['managed'])
        self.assertEqual(lun1.vdi_uuid, rec['location'])
        self.assertEqual(array.vdi_uuid(lun1.serial), lun1.vdi_uuid)
        # the same LUN has the same VDI uuid in the source pool
        self.assertEqual(lun1.vdi_uuid, self.a.VDI.get_uuid(
            self.a.VBD.get_VDI(self.a.VM.get_VBDs(
                self.a.VM.get_by_name_label('instance-00000001')[0])[0])))

    def test_scan_fails_on_a_vdi_uuid_another_sr_shows(self):
        # SR.py synchronise_new -> VDI.db_introduce; the uuid is unique in
        # xapi's database (db_cache_types.ml), so SRCommand.py run reports
        # SRScan: SR_BACKEND_FAILURE_40. A legacy SR and a uuid5 SR cannot
        # both hold LUNs of one target in one pool.
        legacy, _ = self.iscsi_sr(self.b, self.data('vol-1'),
                                  sr_uuid=naming.legacy_sr_uuid('vol-1'))
        self.b.SR.scan(legacy)
        self.assertEqual(3, len(self.b.SR.get_VDIs(legacy)))
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'), plug=False)
        pbd = self.b.SR.get_PBDs(sr)[0]
        self.b.PBD.plug(pbd)
        target = self.srv.array.target('192.0.2.10', 3260, base.IQN)
        first = target.luns[1].vdi_uuid
        exc = self.assertRaises(XenAPI.Failure, self.b.SR.scan, sr)
        self.assertEqual(['SR_BACKEND_FAILURE_40', '',
                          'The SR scan failed  [opterr=%s]' %
                          storage.duplicate_message(first), ''],
                         exc.details)
        self.assertEqual([], self.b.SR.get_VDIs(sr))
        self.assertEqual(3, len(self.b.SR.get_VDIs(legacy)))
        # nova's introduce_sr ends with this scan: the SR stays, plugged
        self.assertTrue(self.b.PBD.get_currently_attached(pbd))
        # a LUN added later goes to whichever SR is scanned first; the
        # other SR's scan fails on it
        lun4 = self.srv.array.add_lun('192.0.2.10', 3260, base.IQN, 4)
        self.b.SR.scan(legacy)
        self.assertEqual(4, len(self.b.SR.get_VDIs(legacy)))
        self.assertIn(lun4.vdi_uuid, [self.b.VDI.get_uuid(v) for v in
                                      self.b.SR.get_VDIs(legacy)])
        self.assertRaises(XenAPI.Failure, self.b.SR.scan, sr)

    def test_scan_drops_vanished_luns(self):
        """SM SR.py ScanRecord synchronise_gone: a vanished LUN.

        SM SR.py ScanRecord synchronise_gone: a LUN the target no
        longer shows loses its VDI record at the next scan.
        """
        sr, pbd = self.iscsi_sr(self.b, self.data('vol-1'))
        self.b.SR.scan(sr)
        self.assertEqual(3, len(self.b.SR.get_VDIs(sr)))
        self.srv.array.remove_lun('192.0.2.10', 3260, base.IQN, 3)
        self.b.SR.scan(sr)
        self.assertEqual(2, len(self.b.SR.get_VDIs(sr)))

    def test_scan_forgets_a_vanished_lun_even_in_use(self):
        # SR.py synchronise_gone and xapi_sr.ml update_vdis forget the VDI
        # whether or not VBDs use it; the VBD keeps the dead ref until GC
        vm = self.a.VM.get_by_name_label('instance-00000001')[0]
        vbd = self.a.VM.get_VBDs(vm)[0]
        vdi = self.a.VBD.get_VDI(vbd)
        sr = self.a.VDI.get_SR(vdi)
        self.srv.array.remove_lun('192.0.2.10', 3260, base.IQN, 1)
        self.a.SR.scan(sr)
        self.assertNotIn(vdi, self.a.SR.get_VDIs(sr))
        self.assertEqual(vdi, self.a.VBD.get_VDI(vbd))
        self.assertEqual([vbd], self.srv.pool('pool-a').inspect()[
            'dangling_VBDs'])

    def test_vdi_introduce(self):
        sr, pbd = self.iscsi_sr(self.b, self.data('vol-1'))
        self.b.SR.scan(sr)
        vdi = [v for v in self.b.SR.get_VDIs(sr)
               if self.b.VDI.get_sm_config(v)['LUNid'] == '1'][0]
        rec = self.b.VDI.get_record(vdi)
        args = [rec['uuid'], rec['name_label'], rec['name_description'],
                rec['SR'], rec['type'], rec['sharable'], rec['read_only'],
                rec['other_config'], rec['location'], rec['xenstore_data'],
                rec['sm_config']]
        self.assertEqual(vdi, self.b.VDI.introduce(*args))
        self.assertIs(True, self.b.VDI.get_managed(vdi))
        # 9 arguments are enough for the arity check; without sm_config the
        # raw iscsi backend cannot find the LUN (BaseISCSI.py
        # _getLUNbySMconfig: VDIUnavailable, 46)
        self.assertFailure(['SR_BACKEND_FAILURE_46', '',
                            'The VDI is not available', ''],
                           self.b.VDI.introduce, *args[:9])
        self.assertEqual(vdi, self.b.VDI.introduce(*args[:10] + [
            {'LUNid': '1'}]))

    def _lun_vdi_args(self, sr, lun='1'):
        vdi = [v for v in self.b.SR.get_VDIs(sr)
               if self.b.VDI.get_sm_config(v)['LUNid'] == lun][0]
        rec = self.b.VDI.get_record(vdi)
        return vdi, [rec['uuid'], rec['name_label'], rec['name_description'],
                     rec['SR'], rec['type'], rec['sharable'],
                     rec['read_only'], rec['other_config'], rec['location'],
                     rec['xenstore_data'], rec['sm_config']]

    def test_vdi_introduce_location_not_unique(self):
        # xapi_vdi.ml introduce: the location is taken in this SR by a VDI
        # of another uuid
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'))
        self.b.SR.scan(sr)
        vdi, args = self._lun_vdi_args(sr)
        other = list(args)
        other[0] = '0b0b0b0b-0000-4000-8000-000000000001'
        self.assertFailure(['LOCATION_NOT_UNIQUE', sr, args[8]],
                           self.b.VDI.introduce, *other)
        self.assertEqual(3, len(self.b.SR.get_VDIs(sr)))

    def test_vdi_introduce_raw_iscsi_takes_the_luns_uuid(self):
        # LUNperVDI.py introduce: the VDI's uuid comes from the LUN
        # (_query), whatever uuid the caller passed
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'))
        self.b.SR.scan(sr)
        vdi, args = self._lun_vdi_args(sr)
        self.b.VDI.forget(vdi)
        for given in ('not-a-uuid', ''):
            other = list(args)
            other[0] = given
            new = self.b.VDI.introduce(*other)
            self.assertEqual(args[0], self.b.VDI.get_uuid(new))
            self.assertIs(True, self.b.VDI.get_managed(new))
            self.assertEqual(3, len(self.b.SR.get_VDIs(sr)))
            self.b.VDI.forget(new)

    def test_vdi_introduce_uuid_format_on_other_srs(self):
        # xapi_vdi.ml introduce_dbonly: Scanf "%02x%02x..." (one or two
        # hex digits per byte); anything else is UUID_INVALID ["VDI", u]
        sr = self.b.SR.introduce('u-ext', 'l', '', 'ext', '', False)
        pbd = self.b.PBD.create({'host': self.b.host.get_all()[0],
                                 'SR': sr, 'device_config': {}})
        self.b.PBD.plug(pbd)
        for bad in ('not-a-uuid', '', '0123456789ab'):
            self.assertFailure(['UUID_INVALID', 'VDI', bad],
                               self.b.VDI.introduce, bad, '', '', sr,
                               'user', False, False, {}, 'loc-' + bad)
        loose = '1-2-3-4-5'
        self.assertRaises(XenAPI.Failure, self.b.VDI.introduce, loose, '',
                          '', sr, 'user', False, False, {}, 'loc')
        short = '1234567-12-12-12-123456789ab'
        vdi = self.b.VDI.introduce(short, '', '', sr, 'user', False, False,
                                   {}, 'loc-short')
        self.assertEqual(short, self.b.VDI.get_uuid(vdi))

    def test_vdi_introduce_raw_iscsi_needs_the_lun(self):
        # the SM backend of a raw iscsi SR finds the LUN by sm_config LUNid
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'))
        self.b.SR.scan(sr)
        vdi, args = self._lun_vdi_args(sr)
        self.b.VDI.forget(vdi)
        for sm_config in ({'LUNid': '7'}, {}, {'LUNid': 'x'}):
            other = list(args)
            other[10] = dict(args[10], **sm_config)
            if not sm_config:
                other[10].pop('LUNid')
            exc = self.assertRaises(XenAPI.Failure, self.b.VDI.introduce,
                                    *other)
            self.assertEqual('SR_BACKEND_FAILURE_46', exc.details[0])
        self.assertEqual(2, len(self.b.SR.get_VDIs(sr)))
        # the right LUN brings it back
        new = self.b.VDI.introduce(*args)
        self.assertEqual(args[0], self.b.VDI.get_uuid(new))

    def test_vdi_introduce_uuid_unique_in_pool(self):
        # the uuid is a VDI of another SR of the pool: xapi's database
        # refuses a second record with it
        legacy, _ = self.iscsi_sr(self.b, self.data('vol-1'),
                                  sr_uuid=naming.legacy_sr_uuid('vol-1'))
        self.b.SR.scan(legacy)
        vdi, args = self._lun_vdi_args(legacy)
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'))
        other = list(args)
        other[3] = sr
        exc = self.assertRaises(XenAPI.Failure, self.b.VDI.introduce,
                                *other)
        self.assertEqual('INTERNAL_ERROR', exc.details[0])
        self.assertIn(args[0], exc.details[1])
        self.assertEqual([], self.b.SR.get_VDIs(sr))

    def test_vdi_introduce_needs_plugged_pbd(self):
        sr, pbd = self.iscsi_sr(self.b, self.data('vol-1'), plug=False)
        self.assertFailure(['SR_NO_PBDS', sr], self.b.VDI.introduce,
                           'u', '', '', sr, 'user', False, False, {}, 'loc')


class ForgetTest(base.MockXapiTestCase):

    def test_forget_with_attached_pbd(self):
        sr, pbd = self.iscsi_sr(self.b, self.data('vol-1'))
        self.assertFailure(['SR_HAS_PBD', sr], self.b.SR.forget, sr)

    def test_forget_removes_sr_pbds_and_vdis_but_not_vbds(self):
        # xapi_sr.ml forget destroys the PBDs and the VDI records and
        # leaves VBDs pointing at the destroyed VDI
        vm = self.a.VM.get_by_name_label('instance-00000001')[0]
        vbd = self.a.VM.get_VBDs(vm)[0]
        vdi = self.a.VBD.get_VDI(vbd)
        sr = self.a.VDI.get_SR(vdi)
        sr_uuid = self.a.SR.get_uuid(sr)
        self.a.VBD.unplug(vbd)
        for pbd in self.a.SR.get_PBDs(sr):
            self.a.PBD.unplug(pbd)
        self.a.SR.forget(sr)
        self.assertFailure(['UUID_INVALID', 'SR', sr_uuid],
                           self.a.SR.get_by_uuid, sr_uuid)
        self.assertFailure(['HANDLE_INVALID', 'VDI', vdi],
                           self.a.VDI.get_record, vdi)
        self.assertEqual([vbd], self.a.VM.get_VBDs(vm))
        self.assertEqual(vdi, self.a.VBD.get_VDI(vbd))
        view = self.srv.pool('pool-a').inspect()
        self.assertNotIn(vdi, view['VDI'])
        self.assertEqual([], [p for p in view['PBD'].values()
                              if p['SR'] == sr])
        # the leak check sees the dangling VBD
        self.assertIn(vbd, view['VBD'])
        self.assertEqual([vbd], view['dangling_VBDs'])
        self.a.VBD.destroy(vbd)
        self.assertEqual(
            [], self.srv.pool('pool-a').inspect()['dangling_VBDs'])


class ForgetVDIAndPBDTest(base.MockXapiTestCase):

    def test_vdi_forget_leaves_the_vbd_pointing_at_it(self):
        """xapi_vdi.ml check_operation_error and forget.

        xapi_vdi.ml check_operation_error: forget cannot run while a
        VBD has the VDI attached (VDI_IN_USE [vdi, "forget"]); then
        xapi_vdi.ml forget only destroys the VDI record.
        """
        vm = self.a.VM.get_by_name_label('instance-00000001')[0]
        vbd = self.a.VM.get_VBDs(vm)[0]
        vdi = self.a.VBD.get_VDI(vbd)
        self.assertFailure(['VDI_IN_USE', vdi, 'forget'], self.a.VDI.forget,
                           vdi)
        self.a.VBD.unplug(vbd)
        self.a.VDI.forget(vdi)
        self.assertFailure(['HANDLE_INVALID', 'VDI', vdi],
                           self.a.VDI.get_record, vdi)
        self.assertEqual(vdi, self.a.VBD.get_VDI(vbd))
        self.assertEqual([vbd],
                         self.srv.pool('pool-a').inspect()['dangling_VBDs'])

    def test_vdi_destroy_checks_in_xapis_order(self):
        """message_forwarding.ml VDI.destroy; xapi_vdi.ml destroy.

        message_forwarding.ml VDI.destroy (with_sr_andor_vdi) then
        xapi_vdi.ml destroy_and_data_destroy_common: the SR's SM features
        (xapi_sr_operations.ml check_sm_features), attached VBDs
        (check_operation_error), a plugged PBD (Sm.assert_pbd_is_plugged),
        managed (assert_managed); the VDI's VBDs go with it.
        """
        vm = self.a.VM.get_by_name_label('instance-00000001')[0]
        vbd = self.a.VM.get_VBDs(vm)[0]
        raw = self.a.VBD.get_VDI(vbd)
        self.assertFailure(['SR_OPERATION_NOT_SUPPORTED',
                            self.a.VDI.get_SR(raw)], self.a.VDI.destroy, raw)
        host = self.a.host.get_all()[0]
        sr = self.a.SR.introduce('u-ext', 'l', '', 'ext', '', False)
        pbd = self.a.PBD.create({'host': host, 'SR': sr,
                                 'device_config': {}})
        self.a.PBD.plug(pbd)
        vdi = self.a.VDI.introduce('0b0b0b0b-0000-4000-8000-0000000000e1',
                                   'd', '', sr, 'user', False, False, {},
                                   'loc-e1')
        disk = self.a.VBD.create({
            'VM': vm, 'VDI': vdi, 'userdevice': '3', 'bootable': False,
            'mode': 'RW', 'type': 'Disk', 'empty': False,
            'other_config': {}, 'qos_algorithm_type': '',
            'qos_algorithm_params': {}})
        self.a.VBD.plug(disk)
        self.assertFailure(['VDI_IN_USE', vdi, 'destroy'],
                           self.a.VDI.destroy, vdi)
        self.a.VBD.unplug(disk)
        self.a.PBD.unplug(pbd)
        self.assertFailure(['SR_NO_PBDS', sr], self.a.VDI.destroy, vdi)
        self.a.PBD.plug(pbd)
        db = self.srv.pool('pool-a').db
        db.get('VDI', vdi)['managed'] = False
        self.assertFailure(['VDI_NOT_MANAGED', vdi], self.a.VDI.destroy,
                           vdi)
        db.get('VDI', vdi)['managed'] = True
        self.a.VDI.destroy(vdi)
        self.assertFailure(['HANDLE_INVALID', 'VBD', disk],
                           self.a.VBD.get_record, disk)

    def test_pbd_destroy_while_attached(self):
        # xapi_pbd.ml destroy
        sr, pbd = self.iscsi_sr(self.b, self.data('vol-1'))
        self.assertFailure(['OPERATION_NOT_ALLOWED',
                            'PBD is currently attached'],
                           self.b.PBD.destroy, pbd)
        self.b.PBD.unplug(pbd)
        self.b.PBD.destroy(pbd)
        self.assertEqual([], self.b.SR.get_PBDs(sr))


class SerializationTest(base.MockXapiTestCase):

    def test_operations_on_one_sr_never_overlap(self):
        sr, pbd = self.iscsi_sr(self.b, self.data('vol-1'))
        self.srv.set_latency('pool-b', 'SR.scan', 0.2)
        self.srv.set_latency('pool-b', 'PBD.plug', 0.2)
        url = self.fx.urls['pool-b']
        errors = []

        def worker(method):
            import XenAPI
            try:
                s = XenAPI.Session(url)
                s.login_with_password('root', 'mock')
                if method == 'scan':
                    s.xenapi.SR.scan(sr)
                else:
                    s.xenapi.PBD.plug(pbd)
            except Exception as exc:  # pragma: no cover
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(m,))
                   for m in ('scan', 'plug', 'scan', 'plug')]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual([], errors)
        journal = sorted((start, end) for ref, op, start, end in
                         self.srv.world.sr_journal if ref == sr)
        self.assertEqual(5, len(journal))  # 1 plug in set-up + 4
        for (s1, e1), (s2, e2) in zip(journal, journal[1:]):
            self.assertLessEqual(e1, s2)


class SharedTargetTest(base.MockXapiTestCase):

    def test_legacy_and_uuid5_sr_on_one_target(self):
        # a mixed-style instance arriving on a pool: the SR scanned first
        # shows every LUN of the target; the other SR's scan fails
        # (SR.py synchronise_new, SRCommand.py run: SR_BACKEND_FAILURE_40)
        # and nova's introduce_sr leaves it plugged
        legacy, _ = self.iscsi_sr(self.b, self.data('vol-1'),
                                  sr_uuid=naming.legacy_sr_uuid('vol-1'))
        self.b.SR.scan(legacy)
        self.assertEqual(3, len(self.b.SR.get_VDIs(legacy)))
        uuid5, _ = self.iscsi_sr(self.b, self.data('vol-2'))
        exc = self.assertRaises(XenAPI.Failure, self.b.SR.scan, uuid5)
        self.assertEqual('SR_BACKEND_FAILURE_40', exc.details[0])
        self.assertEqual([], self.b.SR.get_VDIs(uuid5))
        self.assertTrue(self.b.PBD.get_currently_attached(
            self.b.SR.get_PBDs(uuid5)[0]))
