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

"""A mock XAPI: a real XML-RPC server that simulates XenServer pools.

Unmodified clients (the PyPI ``XenAPI`` SDK, nova 21's os-xenapi session)
talk to it over HTTP. It serves several pools (a master endpoint per pool,
and one per further host, which answers ``HOST_IS_SLAVE``) over one
simulated iSCSI array, applies xapi's and SM's rules for the calls this
project uses, each naming its source (``doc/source/mock-xapi.rst`` lists
them), runs xapi's database GC, records every VDI copy a migration makes,
and lets tests inject faults and latency.

Modules, by concept:

``scenario``   what to serve (Python builder, JSON/YAML file, default)
``service``    :class:`MockXapi`: serve a scenario, test API
``server``     HTTP endpoints, address selection
``pool``       pools, sessions, tasks, the dispatcher, the world lock
``api``        the method table, generic per-class messages, arity
``unmarshal``  how xapi's dispatcher reads arguments and records
``model``      records, refs, schemas
``where``      the ``get_all_records_where`` expression language
``array``      the shared iSCSI array (targets, IQNs, LUNs, CHAP)
``storage``    SR/PBD/VDI/secret rules, per-SR serialisation
``motion``     ``migrate_receive``, ``assert_can_migrate``,
               ``migrate_send``, ``pool_migrate``, the storage-motion rule
``plugins``    dom0 plugins ``host.call_plugin`` serves
``events``     ``event.from`` from the beginning (one bulk read)
``lifecycle``  VBD/VIF/network create and destroy
``gc``         xapi's database garbage collection (periodic, on demand)
``faults``     fault and latency injection
``errors``     XAPI error codes
``fixture``    :class:`~.fixture.MockXapiFixture` for tests
``cmd``        the ``mock-xapi`` cliff command

Example::

    from nova_xenapi_sr_tools.mockxapi import MockXapi, Scenario
    sc = Scenario()
    sc.add_pool('pool-a', hosts=['host-a'])
    ci = sc.add_volume('vol-1', portal='192.0.2.10:3260',
                       iqn='iqn.2010-10.org.openstack:vol-1', lun=1)
    sc.add_instance('pool-a', instance_id=1,
                    volumes=[('vol-1', 'legacy', '/dev/xvdb')])
    with MockXapi(sc) as srv:
        session = XenAPI.Session(srv.urls['pool-a'])
        ...
"""

from nova_xenapi_sr_tools.mockxapi.scenario import Scenario
from nova_xenapi_sr_tools.mockxapi.service import MockXapi

__all__ = ['MockXapi', 'Scenario']
