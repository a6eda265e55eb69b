# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""AWS connection options shared by every module (MODULES) and the inventory plugin (PLUGINS).

The modules get these options from amazon.aws's AnsibleAWSModule; the wording here is ours,
the names, aliases and fallbacks are amazon.aws's, so module_defaults written for
group/amazon.aws.aws work unchanged for group/toil.cluster.toil.
"""


class ModuleDocFragment:
    # Two literal strings (ansible-test reads them without running this file); keep them in step.
    MODULES = r"""
options:
  access_key:
    description:
      - AWS access key ID.
      - Mutually exclusive with O(profile).
    type: str
    aliases: [aws_access_key_id, aws_access_key]
  secret_key:
    description:
      - AWS secret access key.
      - Mutually exclusive with O(profile).
    type: str
    aliases: [aws_secret_access_key, aws_secret_key]
  session_token:
    description:
      - AWS STS session token, for temporary credentials.
      - Mutually exclusive with O(profile).
    type: str
    aliases: [aws_session_token]
  profile:
    description:
      - A named profile from the AWS configuration files.
      - Toil reads C(TOIL_AWS_PROFILE) for the same purpose; here use this option or C(AWS_PROFILE).
    type: str
    aliases: [aws_profile]
  endpoint_url:
    description:
      - URL of the AWS API endpoint to use instead of AWS's, for example a local test endpoint such as
        moto in server mode. boto3 also honours C(AWS_ENDPOINT_URL).
    type: str
    aliases: [aws_endpoint_url]
  region:
    description:
      - The AWS region. Modules that take a O(ignore:zone) derive the region from it when this is not set.
    type: str
    aliases: [aws_region]

  aws_ca_bundle:
    description:
      - A CA bundle to validate the endpoint's TLS certificate with.
    type: path
  validate_certs:
    description:
      - Whether to validate the endpoint's TLS certificate. Prefer O(aws_ca_bundle) to turning this off.
    type: bool
    default: true
  aws_config:
    description:
      - "Settings for botocore's client configuration, for example C({retries: {max_attempts: 10, mode: standard}})."
      - See U(https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html).
    type: dict
  debug_botocore_endpoint_logs:
    description:
      - Return the AWS API calls the task made as RV(ignore:resource_actions).
    type: bool
    default: false
notes:
  - Credentials and region may also come from the environment (C(AWS_ACCESS_KEY_ID), C(AWS_SECRET_ACCESS_KEY),
    C(AWS_SESSION_TOKEN), C(AWS_PROFILE), C(AWS_REGION), C(AWS_URL)) of the host the module runs on, usually
    the controller, or from boto3's configuration files there.
  - Set them once for every module of this collection with
    C(module_defaults) and the action group C(group/toil.cluster.toil).
requirements:
  - python >= 3.11
  - boto3 >= 1.35.0
  - botocore >= 1.35.0
"""

    PLUGINS = r"""
options:
  access_key:
    description:
      - AWS access key ID.
      - Mutually exclusive with O(profile).
    type: str
    aliases: [aws_access_key_id, aws_access_key]
    env: [{name: AWS_ACCESS_KEY_ID}, {name: AWS_ACCESS_KEY}]
  secret_key:
    description:
      - AWS secret access key.
      - Mutually exclusive with O(profile).
    type: str
    aliases: [aws_secret_access_key, aws_secret_key]
    env: [{name: AWS_SECRET_ACCESS_KEY}, {name: AWS_SECRET_KEY}]
  session_token:
    description:
      - AWS STS session token, for temporary credentials.
      - Mutually exclusive with O(profile).
    type: str
    aliases: [aws_session_token]
    env: [{name: AWS_SESSION_TOKEN}]
  profile:
    description:
      - A named profile from the AWS configuration files.
      - Toil reads C(TOIL_AWS_PROFILE) for the same purpose; here use this option or C(AWS_PROFILE).
    type: str
    aliases: [aws_profile]
    env: [{name: AWS_PROFILE}, {name: AWS_DEFAULT_PROFILE}]
  endpoint_url:
    description:
      - URL of the AWS API endpoint to use instead of AWS's, for example a local test endpoint such as
        moto in server mode. boto3 also honours C(AWS_ENDPOINT_URL).
    type: str
    aliases: [aws_endpoint_url]
    env: [{name: AWS_URL}, {name: AWS_ENDPOINT_URL}]
  region:
    description:
      - The AWS region. Modules that take a O(ignore:zone) derive the region from it when this is not set.
    type: str
    aliases: [aws_region]
    env: [{name: AWS_REGION}, {name: AWS_DEFAULT_REGION}]

requirements:
  - python >= 3.11
  - boto3 >= 1.35.0
  - botocore >= 1.35.0
"""
