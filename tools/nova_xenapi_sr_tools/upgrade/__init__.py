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

"""Rolling-upgrade verification: ``nova-xenapi-sr verify-upgrade``.

Every mix of stock nova 21 and nova with the extension, one process per
node, objects crossing between them only as primitives. The modules follow
the data flow:

* ``node``: a node process (conductor or compute) and the bus that carries
  JSON messages between the processes;
* ``rpc``: the message format and nova's ``NovaObjectSerializer``
  semantics, including the backport a compute asks of the conductor;
* ``flow``: what nova 21's conductor and compute managers do around the
  driver calls of a live migration, in nova's order;
* ``cases``: the 24-case matrix and the XAPI scenario of each case;
* ``runner``: starts the nodes once, runs each case against a fresh mock
  XAPI and takes the XAPI state before and after;
* ``verdict``: the outcome of a case from what happened and what XAPI holds;
* ``report``: table and JSON output;
* ``cmd``: the cliff command.

Nothing here is imported by stock node processes except ``node``, ``rpc``
and ``flow``, which import no other part of nova_xenapi_sr at module level.
"""
