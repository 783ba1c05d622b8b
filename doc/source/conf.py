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

"""Sphinx configuration of the nova-xenapi-sr documentation."""

extensions = [
    'openstackdocstheme',
    'oslo_config.sphinxext',
    'cliff.sphinxext',
    'reno.sphinxext',
]

project = 'nova-xenapi-sr'
copyright = 'nova-xenapi-sr developers'
master_doc = 'index'
source_suffix = '.rst'
exclude_patterns = ['samples/*']
pygments_style = 'native'

# openstackdocstheme: this project is not hosted on opendev, so no bug
# links or "edit on" links point anywhere.
html_theme = 'openstackdocs'
openstackdocs_repo_name = 'nova-xenapi-sr/nova-xenapi-sr'
openstackdocs_use_storyboard = False
openstackdocs_bug_project = 'nova-xenapi-sr'
openstackdocs_bug_tag = 'doc'
openstackdocs_auto_name = False
openstackdocs_pdf_link = False
html_static_path = []

# cliff.sphinxext: the nova-xenapi-sr application and its commands.
autoprogram_cliff_application = 'nova-xenapi-sr'
