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

nova 21.2.4's own services, one process per node, over a private RabbitMQ
and MariaDB, every mix of stock nova and nova with the extension. The
modules follow the data flow:

* ``services``: the broker and the database (pifpaf), the service
  processes (process groups, crashes, signals) and the run's directory;
* ``launch``: how each node process starts (nova's or placement's own
  console script, after the run-time fixes it documents);
* ``fakes``: the HTTP fakes of Cinder, Neutron and Glance;
* ``deployment``: the deployment (configuration files, database set-up,
  nodes restarted stock or upgraded) and the compute API client;
* ``cases``: the 24-case matrix and the XAPI scenario of each volume set;
* ``rolling``: the matrix as a rolling upgrade of one deployment, each
  case judged from XAPI, nova's database and the Cinder fake;
* ``verdict``: the outcome of a case from what happened and what XAPI
  holds;
* ``report``: table and JSON output;
* ``cmd``: the cliff command.
"""
