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


"""The OpenStack services the verification fakes, as small HTTP services.

nova's node processes reach these over HTTP on loopback, exactly as they
reach the real services (python-cinderclient, python-neutronclient and
keystoneauth, with ``endpoint_template`` / ``endpoint_override`` in each
node's configuration). They run in the runner's process, so their state
is what the verdicts read. What they fake, and nothing more:

:class:`Cinder` (block storage API v3, microversions up to 3.60)
    volumes (``GET /v3/{project}/volumes/{id}``, detail list) and the
    attachment API nova 21 uses from 3.44 on: ``POST /attachments``
    (reserve, with or without a connector), ``PUT /attachments/{id}``
    (connector given: the connection data of the mock array's target and
    LUN, for the host that asks), ``POST /attachments/{id}/action``
    (``os-complete``), ``GET`` and ``DELETE``. Each attachment records the
    instance, the host and the connection data handed out; volume status
    follows (``available``, ``reserved``, ``attaching``, ``in-use``).
    No backend, no export: the iSCSI target and LUN are the mock XAPI's.
:class:`Neutron` (networking API v2.0)
    one network with one IPv4 subnet; ports (list, show, update); the
    ``binding`` and ``binding-extended`` extensions (``POST/GET/DELETE
    /v2.0/ports/{id}/bindings[/{host}]``, ``PUT .../activate``), so nova's
    multiple-binding live-migration path runs; no floating IPs; one
    security group. It never sends ``network-vif-plugged`` events, so the
    nodes run with ``vif_plugging_timeout = 0``.
:class:`Glance` (image API v2)
    boot from volume needs no image: it answers the version document and
    404 for every image.

Keystone is not run at all: nova-api, placement and these fakes take any
token (nova-api and placement with their ``noauth2`` strategies).
"""

import copy
import datetime
import json
import re
import socketserver
import threading
from urllib import parse as urlparse
import uuid
from wsgiref import simple_server

PROJECT = 'verify'


class HTTPError(Exception):
    def __init__(self, status, message):
        super(HTTPError, self).__init__(message)
        self.status = status
        self.message = message


class _Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(simple_server.WSGIRequestHandler):
    def log_message(self, fmt, *args):
        pass


class FakeService(object):
    """A WSGI app with a route table, served on 127.0.0.1 in a thread."""

    #: ``[(method, path regex, handler name)]``
    routes = ()
    name = 'fake'

    def __init__(self):
        self._lock = threading.RLock()
        self._compiled = [(method, re.compile('^%s$' % pattern), handler)
                          for method, pattern, handler in self.routes]
        self._server = None
        self._thread = None
        self.port = None
        self.requests = []

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.port

    def start(self):
        self._server = simple_server.make_server(
            '127.0.0.1', 0, self, server_class=_Server,
            handler_class=_QuietHandler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __call__(self, environ, start_response):
        method = environ['REQUEST_METHOD']
        path = environ.get('PATH_INFO', '')
        if path.endswith('.json'):
            path = path[:-len('.json')]
        query = urlparse.parse_qs(environ.get('QUERY_STRING', ''))
        length = int(environ.get('CONTENT_LENGTH') or 0)
        raw = environ['wsgi.input'].read(length) if length else b''
        status, body = 404, {'itemNotFound': {
            'message': 'no route %s %s' % (method, path), 'code': 404}}
        for route_method, pattern, handler in self._compiled:
            match = pattern.match(path)
            if match and route_method == method:
                try:
                    payload = json.loads(raw.decode('utf-8')) if raw else {}
                    with self._lock:
                        self.requests.append((method, path))
                        status, body = getattr(self, handler)(
                            query=query, body=payload, **match.groupdict())
                except HTTPError as exc:
                    status, body = exc.status, {
                        'error': {'message': exc.message, 'code': exc.status}}
                break
        data = b'' if body is None else json.dumps(body).encode('utf-8')
        start_response('%d %s' % (status, _REASONS.get(status, 'Status')), [
            ('Content-Type', 'application/json'),
            ('Content-Length', str(len(data))),
            ('OpenStack-API-Version', 'volume 3.60')])
        return [data]


_REASONS = {200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content',
            300: 'Multiple Choices', 400: 'Bad Request', 404: 'Not Found',
            409: 'Conflict'}


def _now():
    return datetime.datetime.utcnow().strftime('%Y-%m-%dT%H:%M:%S.%f')


class Cinder(FakeService):
    """Volumes and attachments; connection data from the mock's array."""

    name = 'cinder'
    routes = (
        ('GET', r'/?', 'versions'),
        ('GET', r'/v3/?', 'versions'),
        ('GET', r'/v3/(?P<project>[^/]+)/volumes/detail', 'list_volumes'),
        ('GET', r'/v3/(?P<project>[^/]+)/volumes/(?P<volume_id>[^/]+)',
         'show_volume'),
        ('POST', r'/v3/(?P<project>[^/]+)/volumes/(?P<volume_id>[^/]+)'
         r'/action', 'volume_action'),
        ('POST', r'/v3/(?P<project>[^/]+)/attachments', 'create_attachment'),
        ('GET', r'/v3/(?P<project>[^/]+)/attachments/(?P<attachment_id>'
         r'[^/]+)', 'show_attachment'),
        ('PUT', r'/v3/(?P<project>[^/]+)/attachments/(?P<attachment_id>'
         r'[^/]+)', 'update_attachment'),
        ('POST', r'/v3/(?P<project>[^/]+)/attachments/(?P<attachment_id>'
         r'[^/]+)/action', 'attachment_action'),
        ('DELETE', r'/v3/(?P<project>[^/]+)/attachments/(?P<attachment_id>'
         r'[^/]+)', 'delete_attachment'),
    )

    def __init__(self):
        super(Cinder, self).__init__()
        self.volumes = {}
        self.attachments = {}
        #: ``[(volume_id, action)]`` of :data:`VOLUME_ACTIONS` received.
        self.actions = []
        #: ``{(volume_id, host): connection_info}`` overrides for hosts the
        #: array exports a volume to through another target.
        self.per_host = {}

    def add_volume(self, volume_id, connection_info, size=1):
        """A volume whose connection data is ``connection_info``."""
        with self._lock:
            self.volumes[volume_id] = {
                'id': volume_id, 'size': size, 'name': volume_id,
                'connection_info': copy.deepcopy(connection_info)}

    def volume_attachments(self, volume_id):
        with self._lock:
            return [copy.deepcopy(a) for a in self.attachments.values()
                    if a['volume_id'] == volume_id]

    def _status(self, volume_id):
        states = [a['status'] for a in self.attachments.values()
                  if a['volume_id'] == volume_id]
        if 'attached' in states:
            return 'in-use'
        if 'attaching' in states:
            return 'attaching'
        if 'reserved' in states:
            return 'reserved'
        return 'available'

    def versions(self, query, body, **kw):
        return 300, {'versions': [{
            'id': 'v3.0', 'status': 'CURRENT', 'version': '3.60',
            'min_version': '3.0', 'updated': '2020-04-01T00:00:00Z',
            'links': [{'rel': 'self', 'href': self.url + '/v3/'}]}]}

    def _volume_view(self, volume_id):
        volume = self.volumes.get(volume_id)
        if volume is None:
            raise HTTPError(404, 'Volume %s could not be found.' % volume_id)
        attachments = [{'server_id': a['instance'], 'attachment_id': a['id'],
                        'device': a.get('mountpoint'), 'volume_id': volume_id,
                        'host_name': a.get('host'), 'id': volume_id}
                       for a in self.attachments.values()
                       if a['volume_id'] == volume_id and
                       a['status'] == 'attached']
        return {'id': volume_id, 'status': self._status(volume_id),
                'size': volume['size'], 'availability_zone': 'nova',
                'created_at': '2020-01-01T00:00:00.000000',
                'attachments': attachments, 'name': volume['name'],
                'description': None, 'volume_type': None,
                'snapshot_id': None, 'bootable': 'true', 'metadata': {},
                'multiattach': False, 'encrypted': False,
                'shared_targets': False, 'service_uuid': None,
                'migration_status': None, 'user_id': 'admin',
                'os-vol-tenant-attr:tenant_id': PROJECT}

    def list_volumes(self, query, body, **kw):
        return 200, {'volumes': [self._volume_view(v)
                                 for v in sorted(self.volumes)]}

    def show_volume(self, query, body, volume_id, **kw):
        return 200, {'volume': self._volume_view(volume_id)}

    #: Volume actions of the pre-3.44 attach flow that nova still sends
    #: on some paths (the destination's rollback rolls back a detach).
    #: Without a backend they change nothing here; each is recorded.
    VOLUME_ACTIONS = ('os-roll_detaching', 'os-begin_detaching',
                      'os-reserve', 'os-unreserve')

    def volume_action(self, query, body, volume_id, **kw):
        self._volume_view(volume_id)
        actions = [name for name in body if name in self.VOLUME_ACTIONS]
        if len(actions) != 1:
            raise HTTPError(400, 'unsupported volume action %s'
                            % sorted(body))
        self.actions.append((volume_id, actions[0]))
        return 202, None

    def _connection(self, volume_id, connector):
        host = (connector or {}).get('host')
        info = self.per_host.get((volume_id, host)) or \
            self.volumes[volume_id]['connection_info']
        data = copy.deepcopy(info.get('data') or {})
        data['driver_volume_type'] = info.get('driver_volume_type', 'iscsi')
        return data

    def _attachment_view(self, attachment):
        view = dict((k, copy.deepcopy(v)) for k, v in attachment.items()
                    if k not in ('host', 'mountpoint', 'history'))
        view['instance'] = attachment['instance']
        return view

    def create_attachment(self, query, body, **kw):
        spec = body.get('attachment') or {}
        volume_id = spec.get('volume_uuid')
        if volume_id not in self.volumes:
            raise HTTPError(404, 'Volume %s could not be found.' % volume_id)
        connector = spec.get('connector')
        attachment = {
            'id': str(uuid.uuid4()), 'volume_id': volume_id,
            'instance': spec.get('instance_uuid'),
            'attach_mode': spec.get('mode') or 'rw',
            'attached_at': None, 'detached_at': None,
            'status': 'reserved', 'connection_info': {},
            'host': None, 'mountpoint': None, 'history': ['created']}
        if connector:
            attachment.update(status='attaching',
                              host=connector.get('host'),
                              mountpoint=connector.get('mountpoint'),
                              connection_info=self._connection(
                                  volume_id, connector))
            attachment['history'].append('connector:%s'
                                         % connector.get('host'))
        self.attachments[attachment['id']] = attachment
        return 200, {'attachment': self._attachment_view(attachment)}

    def _attachment(self, attachment_id):
        attachment = self.attachments.get(attachment_id)
        if attachment is None:
            raise HTTPError(404, 'Attachment %s could not be found.'
                            % attachment_id)
        return attachment

    def show_attachment(self, query, body, attachment_id, **kw):
        return 200, {'attachment': self._attachment_view(
            self._attachment(attachment_id))}

    def update_attachment(self, query, body, attachment_id, **kw):
        attachment = self._attachment(attachment_id)
        connector = (body.get('attachment') or {}).get('connector') or {}
        attachment.update(
            status='attaching' if attachment['status'] != 'attached'
            else 'attached',
            host=connector.get('host'),
            mountpoint=connector.get('mountpoint'),
            connection_info=self._connection(attachment['volume_id'],
                                             connector))
        attachment['history'].append('connector:%s' % connector.get('host'))
        return 200, {'attachment': self._attachment_view(attachment)}

    def attachment_action(self, query, body, attachment_id, **kw):
        attachment = self._attachment(attachment_id)
        if 'os-complete' not in body:
            raise HTTPError(400, 'unknown attachment action %s'
                            % sorted(body))
        attachment.update(status='attached', attached_at=_now())
        attachment['history'].append('completed')
        return 204, None

    def delete_attachment(self, query, body, attachment_id, **kw):
        attachment = self._attachment(attachment_id)
        del self.attachments[attachment_id]
        attachment['history'].append('deleted')
        return 200, {}


class Neutron(FakeService):
    """One network, ports, and the port-binding extensions."""

    name = 'neutron'
    NETWORK = 'c9a0a4a8-5b3c-4a8e-9f1a-000000000001'
    SUBNET = 'c9a0a4a8-5b3c-4a8e-9f1a-000000000002'
    SECURITY_GROUP = 'c9a0a4a8-5b3c-4a8e-9f1a-000000000003'
    routes = (
        ('GET', r'/?', 'versions'),
        ('GET', r'/v2.0/extensions', 'list_extensions'),
        ('GET', r'/v2.0/networks', 'list_networks'),
        ('GET', r'/v2.0/networks/(?P<network_id>[^/]+)', 'show_network'),
        ('GET', r'/v2.0/subnets', 'list_subnets'),
        ('GET', r'/v2.0/ports', 'list_ports'),
        ('GET', r'/v2.0/ports/(?P<port_id>[^/]+)', 'show_port'),
        ('PUT', r'/v2.0/ports/(?P<port_id>[^/]+)', 'update_port'),
        ('POST', r'/v2.0/ports/(?P<port_id>[^/]+)/bindings',
         'create_binding'),
        ('GET', r'/v2.0/ports/(?P<port_id>[^/]+)/bindings/(?P<host>[^/]+)',
         'show_binding'),
        ('PUT', r'/v2.0/ports/(?P<port_id>[^/]+)/bindings/(?P<host>[^/]+)'
         r'/activate', 'activate_binding'),
        ('DELETE', r'/v2.0/ports/(?P<port_id>[^/]+)/bindings/'
         r'(?P<host>[^/]+)', 'delete_binding'),
        ('GET', r'/v2.0/floatingips', 'list_floatingips'),
        ('GET', r'/v2.0/security-groups', 'list_security_groups'),
        ('GET', r'/v2.0/quotas/(?P<project>[^/]+)', 'show_quota'),
    )

    def __init__(self):
        super(Neutron, self).__init__()
        self.ports = {}
        #: ``{port_id: {host: binding}}``
        self.bindings = {}
        self.network = {
            'id': self.NETWORK, 'name': 'verify', 'status': 'ACTIVE',
            'admin_state_up': True, 'shared': True, 'mtu': 1500,
            'subnets': [self.SUBNET], 'tenant_id': PROJECT,
            'project_id': PROJECT, 'port_security_enabled': True,
            'router:external': False, 'provider:physical_network': None,
            'provider:network_type': 'vxlan', 'availability_zone_hints': []}
        self.subnet = {
            'id': self.SUBNET, 'name': 'verify', 'network_id': self.NETWORK,
            'ip_version': 4, 'cidr': '198.51.100.0/24',
            'gateway_ip': '198.51.100.1', 'enable_dhcp': False,
            'dns_nameservers': [], 'host_routes': [], 'ipv6_ra_mode': None,
            'ipv6_address_mode': None, 'tenant_id': PROJECT,
            'project_id': PROJECT}

    def add_port(self, port_id, mac, index):
        """A free port on the network, for one VIF of a server."""
        with self._lock:
            self.ports[port_id] = {
                'id': port_id, 'name': '', 'network_id': self.NETWORK,
                'mac_address': mac, 'admin_state_up': True,
                'status': 'DOWN', 'device_id': '', 'device_owner': '',
                'fixed_ips': [{'subnet_id': self.SUBNET,
                               'ip_address': '198.51.100.%d'
                               % (10 + index % 240)}],
                'tenant_id': PROJECT, 'project_id': PROJECT,
                'security_groups': [self.SECURITY_GROUP],
                'binding:host_id': '', 'binding:vif_type': 'unbound',
                'binding:vnic_type': 'normal', 'binding:profile': {},
                'binding:vif_details': {}, 'port_security_enabled': True,
                'allowed_address_pairs': [], 'extra_dhcp_opts': [],
                'resource_request': None}
            self.bindings[port_id] = {}

    def port(self, port_id):
        with self._lock:
            return copy.deepcopy(self._port(port_id))

    def versions(self, query, body, **kw):
        return 200, {'versions': [{'id': 'v2.0', 'status': 'CURRENT',
                                   'links': [{'rel': 'self',
                                              'href': self.url + '/v2.0/'}]}]}

    def list_extensions(self, query, body, **kw):
        return 200, {'extensions': [
            {'alias': 'binding', 'name': 'Port Binding',
             'description': 'port binding',
             'updated': '2014-02-03T10:00:00-00:00', 'links': []},
            {'alias': 'binding-extended', 'name': 'Port Bindings Extended',
             'description': 'several bindings per port',
             'updated': '2017-07-17T10:00:00-00:00', 'links': []}]}

    @staticmethod
    def _filter(items, query):
        query = dict((k, v) for k, v in query.items() if k != 'fields')
        return [item for item in items
                if all(str(item.get(k)) in values
                       for k, values in query.items())]

    def list_networks(self, query, body, **kw):
        return 200, {'networks': self._filter([self.network], query)}

    def show_network(self, query, body, network_id, **kw):
        if network_id != self.NETWORK:
            raise HTTPError(404, 'Network %s could not be found.'
                            % network_id)
        return 200, {'network': copy.deepcopy(self.network)}

    def list_subnets(self, query, body, **kw):
        return 200, {'subnets': self._filter([self.subnet], query)}

    def _port(self, port_id):
        port = self.ports.get(port_id)
        if port is None:
            raise HTTPError(404, 'Port %s could not be found.' % port_id)
        return port

    def _view(self, port):
        view = copy.deepcopy(port)
        for host, binding in self.bindings.get(port['id'], {}).items():
            if binding['status'] == 'ACTIVE':
                view.update({'binding:host_id': host,
                             'binding:vif_type': binding['vif_type'],
                             'binding:vnic_type': binding['vnic_type'],
                             'binding:profile': binding['profile'],
                             'binding:vif_details': binding['vif_details']})
        return view

    def list_ports(self, query, body, **kw):
        ports = [self._view(port) for port in self.ports.values()]
        return 200, {'ports': self._filter(ports, query)}

    def show_port(self, query, body, port_id, **kw):
        return 200, {'port': self._view(self._port(port_id))}

    @staticmethod
    def _binding(host, vnic_type='normal', profile=None, status='ACTIVE'):
        return {'host': host, 'vif_type': 'ovs' if host else 'unbound',
                'vnic_type': vnic_type or 'normal',
                'profile': profile or {}, 'status': status,
                'vif_details': {'port_filter': True,
                                'ovs_hybrid_plug': False} if host else {}}

    def update_port(self, query, body, port_id, **kw):
        port = self._port(port_id)
        changes = copy.deepcopy(body.get('port') or {})
        if 'binding:host_id' in changes:
            # Binding through the port itself replaces the active binding
            # (neutron's ML2 plugin, without the extended API).
            host = changes.pop('binding:host_id')
            bindings = self.bindings.setdefault(port_id, {})
            for old in [h for h, b in bindings.items()
                        if b['status'] == 'ACTIVE']:
                del bindings[old]
            if host:
                bindings[host] = self._binding(
                    host, changes.get('binding:vnic_type'),
                    changes.get('binding:profile'))
            port['binding:host_id'] = host or ''
            port['binding:vif_type'] = 'ovs' if host else 'unbound'
            port['status'] = 'ACTIVE' if host else 'DOWN'
        changes.pop('binding:profile', None)
        changes.pop('binding:vnic_type', None)
        port.update(changes)
        return 200, {'port': self._view(port)}

    def create_binding(self, query, body, port_id, **kw):
        self._port(port_id)
        spec = body.get('binding') or {}
        host = spec.get('host')
        bindings = self.bindings.setdefault(port_id, {})
        if host in bindings:
            raise HTTPError(409, 'Binding for port %s on host %s already '
                            'exists.' % (port_id, host))
        bindings[host] = self._binding(host, spec.get('vnic_type'),
                                       spec.get('profile'),
                                       status='INACTIVE')
        return 201, {'binding': copy.deepcopy(bindings[host])}

    def _host_binding(self, port_id, host):
        self._port(port_id)
        binding = self.bindings.get(port_id, {}).get(host)
        if binding is None:
            raise HTTPError(404, 'Binding for port %s for host %s could not '
                            'be found.' % (port_id, host))
        return binding

    def show_binding(self, query, body, port_id, host, **kw):
        return 200, {'binding': copy.deepcopy(
            self._host_binding(port_id, host))}

    def activate_binding(self, query, body, port_id, host, **kw):
        binding = self._host_binding(port_id, host)
        if binding['status'] == 'ACTIVE':
            raise HTTPError(409, 'Binding for port %s on host %s is '
                            'already active.' % (port_id, host))
        for other in self.bindings[port_id].values():
            other['status'] = 'INACTIVE'
        binding['status'] = 'ACTIVE'
        port = self.ports[port_id]
        port['binding:host_id'] = host
        return 200, {'binding': copy.deepcopy(binding)}

    def delete_binding(self, query, body, port_id, host, **kw):
        self._host_binding(port_id, host)
        del self.bindings[port_id][host]
        return 204, None

    def list_floatingips(self, query, body, **kw):
        return 200, {'floatingips': []}

    def list_security_groups(self, query, body, **kw):
        group = {'id': self.SECURITY_GROUP, 'name': 'default',
                 'tenant_id': PROJECT, 'project_id': PROJECT,
                 'description': '', 'security_group_rules': []}
        return 200, {'security_groups': self._filter([group], query)}

    def show_quota(self, query, body, project, **kw):
        return 200, {'quota': {'port': -1, 'network': -1, 'subnet': -1}}


class Glance(FakeService):
    """No images: boot from volume needs none."""

    name = 'glance'
    routes = (
        ('GET', r'/?', 'versions'),
        ('GET', r'/versions', 'versions'),
        ('GET', r'/v2/images/(?P<image_id>[^/]+)', 'show_image'),
    )

    def versions(self, query, body, **kw):
        return 200, {'versions': [{'id': 'v2.9', 'status': 'CURRENT',
                                   'links': [{'rel': 'self',
                                              'href': self.url + '/v2/'}]}]}

    def show_image(self, query, body, image_id, **kw):
        raise HTTPError(404, 'No image with ID %s' % image_id)
