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

"""The fault sweep: every fault at every XAPI call of one live migration.

Runs on the in-process deployment of nova's real services
(:mod:`nova_xenapi_sr_tools.inprocess`); :mod:`.layout` builds each case,
:mod:`.runner` injects the faults, :mod:`.judge` gives each case its
outcome, :mod:`.report` writes the table, and ``nova-xenapi-sr
fault-sweep`` (:mod:`.cmd`) is the command.
"""
