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

"""``nova-xenapi-sr audit``: how will each nova volume live-migrate?

A cliff ``Lister`` over :mod:`nova_xenapi_sr.audit` (the analysis lives in
the node package, where the status check uses it too). It only reads.
"""

import configparser
import os
import sys
import time
import urllib.parse

from cliff import lister

from nova_xenapi_sr import audit

COLUMNS = ('Pool', 'Host', 'Instance', 'VM', 'Device', 'Volume', 'SR',
           'Style', 'Target', 'Verdict', 'Blocked to', 'Reason', 'Action')


class Progress(object):
    """A one-line progress indicator on a terminal (``stream``).

    The audit reads a pool in one call, so it shows which pool it reads
    and how much of the reply has arrived (at most every ``interval``
    seconds), then the size read.
    """

    def __init__(self, stream, interval=0.1, clock=time.monotonic):
        self.stream = stream
        self.shown = False
        self.interval = interval
        self.clock = clock
        #: when the bytes received were last shown (None: not yet)
        self._last = None

    def __call__(self, label, received, done):
        if done:
            text = 'auditing %s: read %s' % (label, _size(received))
        elif not received:
            self._last = None
            text = 'auditing %s: reading %s (event.from)' % (
                label, ', '.join(audit.CLASSES))
        else:
            now = self.clock()
            if self._last is not None and now - self._last < self.interval:
                return
            self._last = now
            text = 'auditing %s: reading %s (event.from), %s received' % (
                label, ', '.join(audit.CLASSES), _size(received))
        self.stream.write('\r\033[K' + text)
        self.stream.flush()
        self.shown = True

    def done(self):
        if self.shown:
            self.stream.write('\r\033[K')
            self.stream.flush()


def _size(count):
    if count < 10 * 1024:
        return '%d bytes' % count
    if count < 1024 * 1024:
        return '%d KiB' % (count // 1024)
    return '%.1f MiB' % (count / (1024.0 * 1024.0))


def nova_config_target(path):
    """``(label, url, username, password)`` from a nova.conf.

    The credentials come from ``[xenserver]``; the label is the compute's
    ``[DEFAULT] host`` when it is set, else the URL's host.
    """
    parser = configparser.RawConfigParser(strict=False)
    try:
        with open(path) as f:
            parser.read_file(f)
    except (OSError, configparser.Error) as exc:
        raise audit.AuditError('Cannot read nova configuration %s: %s'
                               % (path, exc))
    if not parser.has_option('xenserver', 'connection_url'):
        raise audit.AuditError('%s has no [xenserver] connection_url: it '
                               'is not the configuration of a XenAPI '
                               'compute.' % path)
    get = lambda key, default=None: (  # noqa: E731
        parser.get('xenserver', key) if parser.has_option('xenserver', key)
        else default)
    url = get('connection_url')
    label = (parser.get('DEFAULT', 'host')
             if parser.has_option('DEFAULT', 'host') else _label(url))
    return (label, url, get('connection_username', 'root'),
            get('connection_password'))


def _label(url):
    return urllib.parse.urlsplit(url).netloc or url


class Audit(lister.Lister):
    """List the nova volumes of XenServer pools and how each can migrate.

    For every instance with a nova volume: the volume's SR, the SR's naming
    style (legacy, uuid5 or unknown) and iSCSI target, and a verdict:
    migrates with stock nova, needs the extension on both ends or on the
    source, or cannot migrate; "Blocked to" lists the pools of this run it
    cannot be live-migrated to at all. Give every pool an instance could
    move between, so that cross-pool findings show. Only reads from XAPI.
    The password comes from --password-file or $XAPI_PASSWORD.
    """

    def get_parser(self, prog_name):
        parser = super(Audit, self).get_parser(prog_name)
        parser.add_argument(
            '--url', action='append', default=[], metavar='URL',
            help='XAPI URL of a pool master (http://HOST or https://HOST). '
                 'Repeat for several pools.')
        parser.add_argument(
            '--username', default='root',
            help='XAPI user for every --url (default: root).')
        parser.add_argument(
            '--password-file', metavar='FILE',
            help='File whose first line is the password of --username. '
                 'Without it, the password is read from $%s.'
                 % audit.PASSWORD_ENV)
        parser.add_argument(
            '--nova-config', action='append', default=[], metavar='FILE',
            help='nova.conf of a XenAPI compute: audit its pool with the '
                 'credentials of its [xenserver] section. Repeat for '
                 'several computes.')
        parser.add_argument(
            '--timeout', type=float, default=audit.TIMEOUT,
            metavar='SECONDS',
            help='Seconds to wait for one XAPI answer (default: %d).'
                 % audit.TIMEOUT)
        parser.add_argument(
            '--no-progress', action='store_true',
            help='Do not show progress on the terminal.')
        return parser

    def _targets(self, parsed_args):
        targets = []
        if parsed_args.url:
            password = audit.password_from(parsed_args.password_file,
                                           os.environ)
            if password is None:
                raise audit.AuditError(
                    'No XAPI password: give --password-file FILE or set '
                    '$%s.' % audit.PASSWORD_ENV)
            for url in parsed_args.url:
                targets.append((_label(url), url, parsed_args.username,
                                password))
        for path in parsed_args.nova_config:
            label, url, username, password = nova_config_target(path)
            if password is None:
                raise audit.AuditError('%s has no [xenserver] '
                                       'connection_password.' % path)
            targets.append((label, url, username, password))
        if not targets:
            raise audit.AuditError('Nothing to audit: give --url URL or '
                                   '--nova-config FILE.')
        seen = set()
        for label, url, _, _ in targets:
            if url in seen or label in seen:
                raise audit.AuditError('%s is given twice.' % (
                    url if url in seen else label))
            seen.update((url, label))
        return targets

    def take_action(self, parsed_args):
        targets = self._targets(parsed_args)
        stream = self.app.stderr if self.app else sys.stderr
        progress = None
        if not parsed_args.no_progress and getattr(stream, 'isatty',
                                                   lambda: False)():
            progress = Progress(stream)
        pools = []
        try:
            for label, url, username, password in targets:
                pools.append(audit.fetch(url, username, password, label,
                                         progress, parsed_args.timeout))
        finally:
            if progress is not None:
                progress.done()
        rows = [(v.pool, v.host, v.instance, v.vm, v.device, v.volume_id,
                 v.sr_uuid, v.style, v.target, v.verdict,
                 ', '.join(v.blocked), ' '.join(v.reasons),
                 ' '.join(v.actions))
                for v in audit.audit(pools)]
        return COLUMNS, rows
