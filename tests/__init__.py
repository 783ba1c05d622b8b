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

# Every test process is patched as nova-compute is, before anything
# imports nova or oslo: the in-process nova deployment's services run on
# eventlet (as nova's own functional tests do).
from nova_xenapi_sr_tools.inprocess import eventlet_setup

eventlet_setup.monkey_patch()
