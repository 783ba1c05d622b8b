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

"""Audit XenServer pools: how will each nova volume live-migrate?

For every VM of a nova instance with a nova volume (a VBD nova marked
``osvol``) this reads the volume's SR, classifies the SR's name
(``legacy``, ``uuid5`` or ``unknown``, see :mod:`nova_xenapi_sr.naming`),
finds the iSCSI target it points at, and gives a verdict:

* :data:`STOCK`: the volume migrates with stock nova 21;
* :data:`BOTH_ENDS`: only when the source and the destination compute run
  nova-xenapi-sr (a legacy SR: stock nova names the destination SR by
  uuid5, nova bug 1566622);
* :data:`SOURCE`: only when the source runs nova-xenapi-sr (the SR is
  shared with another volume, and stock nova forgets it once per volume);
* :data:`NOWHERE`: neither stock nova nor the extension can name a
  destination SR after it.

Across pools it also lists the pools a volume cannot be live-migrated to at
all: a pool that already reaches the same iSCSI target through an SR of
another name. XAPI keeps a LUN in one SR per pool (SM's scan introduces the
LUN's VDI with a uuid that must be unique in the pool database), so the SR
the volume needs there could never show the LUN.

The audit only reads: per pool it logs in, reads the records of the
:data:`CLASSES` in one ``event.from`` call (whatever the pool's size) and
logs out. It needs no nova and no cliff, so the node's status check uses it
too; the ``nova-xenapi-sr audit`` command of nova-xenapi-sr-tools prints
it.
"""

import collections
import decimal
import http.client
from xml.parsers import expat
import xmlrpc.client

from nova_xenapi_sr import naming

#: Oldest XAPI API version the audit supports: XenServer 7.0 (API 2.5),
#: the oldest release whose raw iSCSI VDIs nova 21 finds by scanning.
MIN_API_VERSION = (2, 5)

#: Newest XAPI API version whose records the audit is known to read right
#: (XenServer 8 and XCP-ng 8.3, API 2.21).
MAX_API_VERSION = (2, 21)

#: The classes whose records the audit reads.
CLASSES = ('host', 'VM', 'VBD', 'SR', 'PBD')

#: The calls the audit makes on a pool after logging in, one each:
#: ``event.from`` from the beginning (the empty token) returns every
#: current object of the classes asked as an ``add`` event with its record
#: (xapi's ``xapi_event.ml`` ``from``), so one call reads all of them.
READS = ('event.from',)

#: The ``timeout`` of that call. xapi answers at once when any object of
#: the classes exists (a pool has a host) and waits this long only for an
#: empty batch.
EVENT_TIMEOUT = 0.0

#: Environment variable with the XAPI password (``--password-file`` wins).
PASSWORD_ENV = 'XAPI_PASSWORD'

#: Seconds to wait for a pool's answer to one call.
TIMEOUT = 300

STOCK = 'migrates with stock nova'
BOTH_ENDS = 'needs the extension on both ends'
SOURCE = 'needs the extension on the source'
NOWHERE = 'cannot migrate'

NULL_REF = 'OpaqueRef:NULL'

#: One volume of one instance, with its verdict. ``blocked`` is a tuple of
#: pool labels the volume cannot be live-migrated to; ``reasons`` and
#: ``actions`` are tuples of sentences.
Volume = collections.namedtuple('Volume', [
    'pool', 'host', 'host_ref', 'instance', 'vm', 'device', 'volume_id',
    'sr_uuid', 'style', 'target', 'verdict', 'blocked', 'reasons',
    'actions'])


class AuditError(Exception):
    """A problem the operator can fix; its message is one line."""


class Unreachable(AuditError):
    pass


class BadCredentials(AuditError):
    pass


class PoolMember(AuditError):
    """The URL is a pool member, not the master; ``master`` names it."""

    def __init__(self, message, master):
        super(PoolMember, self).__init__(message)
        self.master = master


class UnsupportedVersion(AuditError):
    pass


class _Reading(object):
    """Transport hook: report the bytes of a reply as they arrive."""

    def __init__(self, callback):
        self.callback = callback
        self.received = 0

    def __call__(self, size):
        self.received += size
        self.callback(self.received)


class _Decoder(object):
    """A lean XML-RPC response decoder: feed bytes, then ``close()``.

    It returns what ``xmlrpc.client.loads`` returns (the same types, a
    ``Fault`` raised for a fault response) with fewer Python calls per
    element: the bulk reads of a pool with 10,000 VMs are tens of
    megabytes of XML, and their decoding is most of the audit's time.
    Like the standard unmarshaller it keeps one flat stack of values and
    the stack positions where open arrays and structs begin; the handlers
    are closures over them, which saves an attribute lookup per use.
    """

    _INTS = frozenset(('int', 'i4', 'i8', 'i1', 'i2', 'biginteger'))

    def __init__(self):
        stack = self._stack = []
        marks = self._marks = []
        text = []
        #: [the response's kind: params, fault or methodName]
        self._state = [None]
        push = stack.append
        join = ''.join
        clear = text.clear
        other = self._end_other
        #: a <value> with no type element (yet): its text is a string
        bare = False

        # Only the elements whose text is read clear the text; the others
        # (member, struct, array, data) leave the white space between
        # elements to the next one. Within a struct no <value> is bare.
        def start(tag, attrs):
            nonlocal bare
            if tag == 'value':
                bare = True
                clear()
            elif tag == 'name':
                clear()
            elif tag != 'member':
                bare = False
                if tag == 'struct' or tag == 'array':
                    marks.append(len(stack))
                clear()

        def end(tag):
            nonlocal bare
            if tag == 'value':
                if bare:
                    push(join(text))
                    bare = False
            elif tag == 'name' or tag == 'string':
                push(join(text))
            elif tag == 'member':
                pass
            elif tag == 'struct':
                mark = marks.pop()
                items = stack[mark:]
                stack[mark:] = [dict(zip(items[::2], items[1::2]))]
            elif tag == 'array':
                mark = marks.pop()
                stack[mark:] = [stack[mark:]]
            else:
                other(tag.rpartition(':')[2], join(text))

        parser = self._parser = expat.ParserCreate('utf-8')
        parser.buffer_text = True
        parser.StartElementHandler = start
        parser.EndElementHandler = end
        parser.CharacterDataHandler = text.append

    def _end_other(self, tag, text):
        stack = self._stack
        if tag == 'boolean':
            if text not in ('0', '1'):
                raise TypeError('bad boolean value')
            stack.append(text == '1')
        elif tag in self._INTS:
            stack.append(int(text))
        elif tag == 'double' or tag == 'float':
            stack.append(float(text))
        elif tag == 'nil':
            stack.append(None)
        elif tag == 'bigdecimal':
            stack.append(decimal.Decimal(text))
        elif tag == 'dateTime.iso8601':
            value = xmlrpc.client.DateTime()
            value.decode(text)
            stack.append(value)
        elif tag == 'base64':
            value = xmlrpc.client.Binary()
            value.decode(text.encode('ascii'))
            stack.append(value)
        elif tag in ('fault', 'params', 'methodName'):
            self._state[0] = tag
        # other tags (methodResponse, param, data) only hold values

    def feed(self, data):
        self._parser.Parse(data, False)

    def close(self):
        """The response's values as a tuple; raise its ``Fault``."""
        self._parser.Parse(b'', True)
        if self._state[0] is None or self._marks:
            raise xmlrpc.client.ResponseError()
        if self._state[0] == 'fault':
            raise xmlrpc.client.Fault(**self._stack[0])
        return tuple(self._stack)


class _FastParse(object):
    """Transport mixin: read replies in large blocks into :class:`_Decoder`.

    ``xmlrpc.client.Transport.parse_response`` reads 1 KiB at a time and
    unmarshals through a generic dispatcher; the audit's replies are
    megabytes.
    """

    BLOCK = 1 << 16

    #: ``f(bytes)`` called after each block of a reply is read, or None.
    on_block = None

    def parse_response(self, response):
        if response.getheader('Content-Encoding', '') == 'gzip':
            return super(_FastParse, self).parse_response(response)
        decoder = _Decoder()
        on_block = self.on_block
        while True:
            data = response.read(self.BLOCK)
            if not data:
                break
            decoder.feed(data)
            if on_block is not None:
                on_block(len(data))
        return decoder.close()


class _Transport(_FastParse, xmlrpc.client.Transport):
    def __init__(self, timeout):
        xmlrpc.client.Transport.__init__(self)
        self._timeout = timeout

    def make_connection(self, host):
        conn = xmlrpc.client.Transport.make_connection(self, host)
        conn.timeout = self._timeout
        return conn


class _SafeTransport(_FastParse, xmlrpc.client.SafeTransport):
    def __init__(self, timeout):
        xmlrpc.client.SafeTransport.__init__(self)
        self._timeout = timeout

    def make_connection(self, host):
        conn = xmlrpc.client.SafeTransport.make_connection(self, host)
        conn.timeout = self._timeout
        return conn


class Session(object):
    """A read-only XML-RPC session to one pool master.

    A plain XML-RPC client: the XenAPI SDK's login adds four calls of its
    own (the API version), which the audit reads from the host records
    instead.
    """

    def __init__(self, url, username, password, timeout=TIMEOUT):
        self.url = url
        self.username = username
        transport = (_SafeTransport(timeout) if url.startswith('https:')
                     else _Transport(timeout))
        self._transport = transport
        try:
            self._proxy = xmlrpc.client.ServerProxy(url, transport=transport)
        except (OSError, ValueError) as exc:
            raise Unreachable('Cannot use XAPI URL %s: %s. Give the pool '
                              'master as http://HOST or https://HOST.'
                              % (url, exc))
        self._ref = None
        self._ref = self._call('session.login_with_password', username,
                               password, '2.0', 'nova-xenapi-sr audit')

    @property
    def ref(self):
        """The session's opaque ref."""
        return self._ref

    def call(self, method, *args, received=None):
        """Call ``method`` with the session; return its value.

        :param received: optional ``f(bytes so far)``, called as the
            reply arrives, block by block.
        """
        if received is None:
            return self._call(method, self._ref, *args)
        self._transport.on_block = _Reading(received)
        try:
            return self._call(method, self._ref, *args)
        finally:
            self._transport.on_block = None

    def _call(self, method, *args):
        try:
            reply = getattr(self._proxy, method)(*args)
        except (OSError, http.client.HTTPException, ValueError,
                xmlrpc.client.Error) as exc:
            # Refused, unresolvable, timed out, not HTTP, not XML-RPC.
            raise Unreachable(
                'Cannot reach XAPI at %s (%s): %s. Check the URL and that '
                'the host is up and runs xapi.'
                % (self.url, method, _one_line(exc)))
        if not isinstance(reply, dict) or 'Status' not in reply:
            raise Unreachable('%s does not answer as XAPI does (%s). Check '
                              'the URL.' % (self.url, method))
        if reply['Status'] == 'Success':
            return reply.get('Value')
        raise self._failure(method, list(reply.get('ErrorDescription')
                                         or ['unknown error']))

    def _failure(self, method, error):
        code = error[0]
        if code == 'SESSION_AUTHENTICATION_FAILED':
            return BadCredentials(
                'XAPI at %s refused user %s and its password. Check '
                '--username, and the password file or $%s.'
                % (self.url, self.username, PASSWORD_ENV))
        if code == 'MESSAGE_METHOD_UNKNOWN' and method in READS:
            return UnsupportedVersion(
                'XAPI at %s does not know %s (XenServer 6.0 and later '
                'have it): it is older than XenServer 7.0, the oldest that '
                'nova 21 and the audit support: upgrade XenServer first.'
                % (self.url, method))
        if code == 'HOST_IS_SLAVE':
            master = error[1] if len(error) > 1 else ''
            return PoolMember(
                '%s is a member of a pool whose master is %s: audit the '
                'pool through its master (--url http://%s).'
                % (self.url, master, master), master)
        return AuditError('XAPI at %s failed %s: %s'
                          % (self.url, method, ' '.join(map(str, error))))

    def logout(self):
        if self._ref is None:
            return
        ref, self._ref = self._ref, None
        try:
            self._call('session.logout', ref)
        except AuditError:
            pass    # the records are read; a failed logout changes nothing


def _one_line(exc):
    return ' '.join(str(exc).split()) or type(exc).__name__


def check_api_version(url, hosts):
    """Raise :class:`UnsupportedVersion` unless every host's API fits.

    A pool without hosts is no pool: an ``event.from`` without snapshots
    (before XenServer 6.1) gives none.
    """
    if not hosts:
        raise UnsupportedVersion(
            'XAPI at %s reports no XAPI API version (it sent no host '
            'record); the audit supports API %d.%d to %d.%d.'
            % ((url,) + MIN_API_VERSION + MAX_API_VERSION))
    for rec in sorted(hosts.values(), key=lambda r: r.get('name_label', '')):
        try:
            version = (int(rec.get('API_version_major')),
                       int(rec.get('API_version_minor')))
        except (TypeError, ValueError):
            raise UnsupportedVersion(
                'Host %s at %s reports no XAPI API version; the audit '
                'supports API %d.%d to %d.%d.'
                % (rec.get('name_label'), url, MIN_API_VERSION[0],
                   MIN_API_VERSION[1], MAX_API_VERSION[0],
                   MAX_API_VERSION[1]))
        if version < MIN_API_VERSION:
            raise UnsupportedVersion(
                'Host %s at %s runs XAPI API %d.%d, older than %d.%d '
                '(XenServer 7.0), the oldest that nova 21 and the audit '
                'support: upgrade XenServer first.'
                % ((rec.get('name_label'), url) + version +
                   MIN_API_VERSION))
        if version > MAX_API_VERSION:
            raise UnsupportedVersion(
                'Host %s at %s runs XAPI API %d.%d, newer than %d.%d, the '
                'newest this audit knows; use a nova-xenapi-sr release '
                'that supports it.'
                % ((rec.get('name_label'), url) + version +
                   MAX_API_VERSION))


class PoolState(object):
    """The records of one pool that the audit needs (read once).

    ``records`` is ``{class: {ref: record}}`` for each of :data:`CLASSES`,
    as ``<class>.get_all_records`` would answer.
    """

    def __init__(self, label, url, records):
        self.label = label
        self.url = url
        self.hosts = records['host']
        self.vms = records['VM']
        self.vbds = records['VBD']
        self.srs = records['SR']
        self.pbds = records['PBD']
        self.vdi_sr = {}
        for sr_ref, rec in self.srs.items():
            for vdi_ref in rec.get('VDIs') or ():
                self.vdi_sr[vdi_ref] = sr_ref
        self.sr_pbds = collections.defaultdict(list)
        for rec in self.pbds.values():
            self.sr_pbds[rec.get('SR')].append(rec)
        #: ``{sr_ref: [(vm_ref, vbd record)]}`` of nova volumes.
        self.sr_users = collections.defaultdict(list)
        for rec in self.vbds.values():
            sr_ref = self.vdi_sr.get(rec.get('VDI'))
            if sr_ref is not None and _is_nova_volume(rec):
                self.sr_users[sr_ref].append((rec.get('VM'), rec))
        #: ``{(target, IQN): [sr_ref]}`` of every SR with a known target.
        self.by_target = collections.defaultdict(list)
        for sr_ref in self.srs:
            target = self.target(sr_ref)
            if target is not None:
                self.by_target[(target[0], target[2])].append(sr_ref)
        self.by_uuid = {rec.get('uuid'): ref
                        for ref, rec in self.srs.items()}
        self._sr_groups = {}

    def sr_groups(self, sr_ref):
        """The nova volumes of an SR grouped by VM and by host.

        Returns ``({vm_ref: [vbd record]}, {host_ref: {vm_ref:
        instance}})``, computed once per SR: the verdict of each of an SR's
        volumes looks at the SR's other volumes, and a shared uuid5 SR of
        a large pool has many.
        """
        groups = self._sr_groups.get(sr_ref)
        if groups is None:
            by_vm = collections.defaultdict(list)
            by_host = collections.defaultdict(dict)
            for vm_ref, rec in self.sr_users.get(sr_ref, ()):
                by_vm[vm_ref].append(rec)
                host_ref = (self.vms.get(vm_ref) or {}).get('resident_on')
                by_host[host_ref][vm_ref] = self.instance_of(vm_ref)
            groups = self._sr_groups[sr_ref] = (by_vm, by_host)
        return groups

    def target(self, sr_ref):
        """``(target, port, IQN)`` an SR points at, or None."""
        configs = [rec.get('device_config') or {}
                   for rec in self.sr_pbds.get(sr_ref, ())]
        configs.append(self.srs[sr_ref].get('sm_config') or {})
        for config in configs:
            if config.get('target') and config.get('targetIQN'):
                return (config['target'], config.get('port') or '3260',
                        config['targetIQN'])
        return None

    def host_name(self, host_ref):
        rec = self.hosts.get(host_ref)
        return rec.get('name_label') if rec else ''

    def instance_of(self, vm_ref):
        rec = self.vms.get(vm_ref) or {}
        nova_uuid = (rec.get('other_config') or {}).get('nova_uuid')
        return nova_uuid or rec.get('name_label') or vm_ref

    def users_text(self, sr_ref, limit=3):
        names = sorted({self.instance_of(vm) for vm, _ in
                        self.sr_users.get(sr_ref, ())})
        text = ', '.join(names[:limit])
        if len(names) > limit:
            text += ' and %d more' % (len(names) - limit)
        return text


def _is_nova_volume(vbd):
    return (vbd.get('VDI') not in (None, '', NULL_REF) and
            str((vbd.get('other_config') or {}).get('osvol', '')).lower()
            == 'true')


def records_of_events(url, reply):
    """``{class: {ref: record}}`` of :data:`CLASSES` from ``event.from``.

    From the empty token every current object is an ``add`` event whose
    snapshot is its record (xapi sends no ``mod`` or ``del`` then; they
    would replace or remove it).
    """
    events = reply.get('events') if isinstance(reply, dict) else None
    if not isinstance(events, list):
        raise Unreachable('%s does not answer as XAPI does (event.from '
                          'returned no events). Check the URL.' % url)
    names = {cls.lower(): cls for cls in CLASSES}
    records = {cls: {} for cls in CLASSES}
    for event in events:
        if not isinstance(event, dict):
            continue
        cls = names.get(str(event.get('class', '')).lower())
        if cls is None:
            continue
        if event.get('operation') == 'del':
            records[cls].pop(event.get('ref'), None)
        elif isinstance(event.get('snapshot'), dict):
            records[cls][event.get('ref')] = event['snapshot']
    return records


def read_pool(session, label, progress=None):
    """Read one pool through ``session``: exactly the :data:`READS` calls.

    :param progress: optional ``f(label, received, done)``: called with
        ``(label, 0, False)`` before the read, with the bytes received so
        far while the reply arrives, and with ``done`` True once it is
        decoded.
    :raises UnsupportedVersion: a host's XAPI is too old or too new, or
        knows no ``event.from``.
    """
    size = [0]

    def received(total):
        size[0] = total
        if progress is not None:
            progress(label, total, False)

    if progress is not None:
        progress(label, 0, False)
    reply = session.call('event.from', list(CLASSES), '', EVENT_TIMEOUT,
                         received=received)
    records = records_of_events(session.url, reply)
    check_api_version(session.url, records['host'])
    if progress is not None:
        progress(label, size[0], True)
    return PoolState(label, session.url, records)


def fetch(url, username, password, label=None, progress=None,
          timeout=TIMEOUT):
    """Log in to ``url``, read the pool, log out; return a PoolState."""
    session = Session(url, username, password, timeout=timeout)
    try:
        return read_pool(session, label or url, progress)
    finally:
        session.logout()


def _style(sr_uuid, target):
    style = naming.naming_style(sr_uuid)
    if style == naming.UUID5 and target is not None and \
            naming.target_sr_uuid(*target) != sr_uuid:
        return naming.UNKNOWN
    return style


def _target_text(target):
    if target is None:
        return ''
    return '%s:%s %s' % target


def audit(pools):
    """Judge every nova volume of ``pools`` (a list of PoolState).

    Returns a list of :class:`Volume`, in pool order, then by VM name,
    instance and device.
    """
    result = []
    for pool in pools:
        for sr_ref, users in sorted(pool.sr_users.items()):
            for vm_ref, vbd in users:
                vm = pool.vms.get(vm_ref)
                if not vm or vm.get('is_control_domain') or \
                        vm.get('is_a_template') or vm.get('is_a_snapshot'):
                    continue
                result.append(_judge(pool, pools, sr_ref, vm_ref, vbd))
    order = {pool.label: index for index, pool in enumerate(pools)}
    result.sort(key=lambda v: (order[v.pool], v.vm, v.instance, v.device))
    return result


def _judge(pool, pools, sr_ref, vm_ref, vbd):
    sr = pool.srs[sr_ref]
    sr_uuid = sr.get('uuid', '')
    target = pool.target(sr_ref)
    style = _style(sr_uuid, target)
    vm = pool.vms[vm_ref]
    host_ref = vm.get('resident_on') or NULL_REF
    device = vbd.get('device') or vbd.get('userdevice') or ''
    volume_id = ''
    if style == naming.LEGACY:
        volume_id = sr_uuid[len(naming.LEGACY_PREFIX):]
    reasons = []
    actions = []

    if style == naming.UNKNOWN:
        verdict = NOWHERE
        if naming.naming_style(sr_uuid) == naming.UUID5:
            why = ('SR %s has a uuid5 name, but not nova\'s name for its '
                   'target %s (%s)' % (sr_uuid, _target_text(target),
                                       naming.target_sr_uuid(*target)))
        else:
            why = ('SR %s is named neither FA15E-D15C-<volume id> nor by '
                   'uuid5 of its target' % sr_uuid)
        reasons.append(why + ': neither stock nova nor nova-xenapi-sr '
                       'introduces a destination SR under that name, so '
                       'it cannot be live-migrated anywhere.')
        actions.append('Migrate the instance cold (nova migrate), or '
                       'detach and re-attach the volume so that nova '
                       'attaches it through the uuid5 SR of its target.')
    elif style == naming.LEGACY:
        verdict = BOTH_ENDS
        reasons.append('Legacy SR %s: stock nova names the destination SR '
                       'by uuid5, and the source\'s migration fails with '
                       'UUID_INVALID (nova bug 1566622).' % sr_uuid)
        actions.append('Run nova-xenapi-sr on the conductors, then on the '
                       'source and the destination computes.')
    else:
        verdict = STOCK
        by_vm, by_host = pool.sr_groups(sr_ref)
        same_vm = sorted(rec.get('device') or rec.get('userdevice') or ''
                         for rec in by_vm.get(vm_ref, ()) if rec is not vbd)
        neighbours = []
        if host_ref != NULL_REF:
            neighbours = sorted({name for v, name in
                                 by_host.get(host_ref, {}).items()
                                 if v != vm_ref})
        if same_vm:
            verdict = SOURCE
            reasons.append(
                'uuid5 SR %s also holds this instance\'s volume(s) at %s: '
                'a stock source forgets the shared SR once per volume '
                'after the move, fails, and rolls back an instance that '
                'already runs on the destination.'
                % (sr_uuid, ', '.join(same_vm)))
        if neighbours:
            verdict = SOURCE
            reasons.append(
                'uuid5 SR %s is also used by %s on the same host: a stock '
                'source cannot forget it after the move and rolls back an '
                'instance that already runs on the destination.'
                % (sr_uuid, ', '.join(neighbours[:3]) +
                   (' and %d more' % (len(neighbours) - 3)
                    if len(neighbours) > 3 else '')))
        if verdict == SOURCE:
            actions.append('Run nova-xenapi-sr on the source compute '
                           '(after the conductors) before live-migrating '
                           'the instance.')

    blocked = []
    if verdict != NOWHERE and target is not None:
        for other in pools:
            if other is pool:
                continue
            why, todo = _blocker(other, sr_uuid, target)
            if why:
                blocked.append(other.label)
                reasons.append(why)
                actions.append(todo)
    return Volume(pool.label, pool.host_name(host_ref), host_ref,
                  pool.instance_of(vm_ref), vm.get('name_label', ''),
                  device, volume_id, sr_uuid, style, _target_text(target),
                  verdict, tuple(blocked), tuple(reasons), tuple(actions))


def _blocker(dest, sr_uuid, target):
    """Why ``dest`` cannot take a volume on SR ``sr_uuid``, and what to do.

    Returns ``(None, None)`` when nothing in ``dest`` stands in the way.
    """
    for sr_ref in dest.by_target.get((target[0], target[2]), ()):
        other = dest.srs[sr_ref].get('uuid')
        if other == sr_uuid:
            continue
        users = dest.users_text(sr_ref)
        if users:
            free = ('move off the pool, or detach, the volumes of %s that '
                    'use it, so that nova forgets it' % users)
        else:
            free = ('no instance uses it: forget it, xe sr-forget uuid=%s'
                    % other)
        return (
            'Pool %s already reaches target %s through %s SR %s: XAPI '
            'keeps a LUN in one SR per pool, so the SR %s this volume '
            'needs there could not show it (its scan fails, or an upgraded '
            'destination refuses first).'
            % (dest.label, _target_text(target),
               naming.naming_style(other), other, sr_uuid),
            'To move it to pool %s, first free SR %s there (%s), or '
            'migrate the instance cold (nova migrate); or live-migrate it '
            'to another pool.' % (dest.label, other, free))
    existing = dest.by_uuid.get(sr_uuid)
    if existing is not None:
        there = dest.target(existing)
        if there is None or (there[0], there[2]) != (target[0], target[2]):
            return (
                'Pool %s has an SR named %s that points at %s, not at this '
                'volume\'s target %s: an upgraded destination refuses it, '
                'and stock nova would attach the wrong disk.'
                % (dest.label, sr_uuid, _target_text(there) or 'no target',
                   _target_text(target)),
                'Forget the stale SR %s in pool %s if it is unused (xe '
                'sr-forget uuid=%s), then retry.'
                % (sr_uuid, dest.label, sr_uuid))
    return None, None


def cannot_migrate_anywhere(volume, pool_count):
    """Whether no pool of the audit (nor any other) can take ``volume``."""
    if volume.verdict == NOWHERE:
        return True
    return pool_count > 1 and len(volume.blocked) == pool_count - 1


def password_from(password_file=None, environ=None):
    """The XAPI password: the file's first line, else $XAPI_PASSWORD.

    Returns None when neither gives one.
    """
    if password_file:
        try:
            with open(password_file) as f:
                return f.readline().rstrip('\r\n')
        except OSError as exc:
            raise AuditError('Cannot read the password file %s: %s'
                             % (password_file, exc.strerror or exc))
    if environ is not None and environ.get(PASSWORD_ENV):
        return environ[PASSWORD_ENV]
    return None
