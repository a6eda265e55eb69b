# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""What this collection adds to amazon.aws's connection options (amazon.aws.common, amazon.aws.region,
amazon.aws.boto3), which every module and the inventory plugin take as they are: the same names, aliases
and environment variables, so module_defaults written for group/amazon.aws.aws work unchanged for
group/toil.cluster.toil.
"""


class ModuleDocFragment:
    # A literal string: ansible-test reads it without running this file.
    MODULES = r"""
options: {}
notes:
  - Credentials and region may also come from the environment (C(AWS_ACCESS_KEY_ID), C(AWS_SECRET_ACCESS_KEY),
    C(AWS_SESSION_TOKEN), C(AWS_PROFILE), C(AWS_REGION), C(AWS_URL)) of the host the module runs on, usually
    the controller, or from boto3's configuration files there. Toil reads C(TOIL_AWS_PROFILE) for the profile;
    here use O(profile) or C(AWS_PROFILE).
  - Set them once for every module of this collection and of amazon.aws with C(module_defaults) and the action
    group C(group/toil.cluster.toil), which extends C(group/amazon.aws.aws). That group alone does not reach this
    collection's modules (ansible-core reads a group's members from its own collection only).
requirements:
  - python >= 3.11
"""
