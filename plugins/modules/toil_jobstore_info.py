#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
module: toil_jobstore_info
short_description: Describe a Toil job store and what its keys say of the workflow
version_added: 0.1.0
description:
  - Describes the job store named by a Toil locator, C(aws:us-west-2:my-run) or C(file:/path). It reports whether it
    exists, its layout, region, buckets and creation time, and what can be read of the workflow from the store's keys.
  - Recognises Toil 9.1's layout (everything in the S3 bucket C(<name>--toil)) and Toil 9.0's (the SimpleDB domains
    C(<name>--jobs) and C(<name>--files), the bucket C(<name>--files) and the C(toil-registry) entry).
  - The workflow's state comes from the keys only, never from their contents, so it works for encrypted (SSE-C)
    stores too. Toil writes C(config.pickle) when it makes the store, C(rootJobReturnValue) when the workflow starts,
    and deletes a job's record under C(jobs/) when the job is done.
  - Reads only, and always reports C(changed=false).
author:
  - toil.cluster contributors (@toil-cluster)
options:
  locator:
    description:
      - The job store, as given to Toil's C(--jobStore). C(aws:<region>:<name>), or C(file:<absolute path>) for a
        directory on the host the module runs on.
    type: str
    required: true
  count_objects:
    description:
      - Also count the objects, versions, delete markers, bytes and unfinished multipart uploads (files and bytes for
        a file job store). This costs a listing of every object version.
    type: bool
    default: false
  include_legacy:
    description:
      - Also look for the Toil 9.0 layout in SimpleDB. Turn it off for credentials without SimpleDB permissions.
    type: bool
    default: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - toil.cluster.aws.modules
  - toil.cluster.s3_endpoint
seealso:
  - module: toil.cluster.toil_jobstore
"""

EXAMPLES = r"""
- name: Describe a job store
  toil.cluster.toil_jobstore_info:
    locator: aws:us-west-2:my-run
  register: store

- name: Say whether the workflow finished
  ansible.builtin.debug:
    msg: "{{ store.jobstore.workflow.status }}, {{ store.jobstore.workflow.jobs }} jobs left"
  when: store.jobstore.exists

- name: How big is it
  toil.cluster.toil_jobstore_info:
    locator: aws:us-west-2:my-run
    count_objects: true
  register: sized
"""

RETURN = r"""
jobstore:
  description: The job store.
  returned: always
  type: dict
  contains:
    locator: {description: The locator as given., type: str}
    kind: {description: C(aws) or C(file)., type: str}
    name: {description: "The job store's name (AWS), or null.", type: str}
    region: {description: "The locator's region (AWS), or null.", type: str}
    path: {description: "The directory (file), or null.", type: str}
    s3_endpoint: {description: "The S3-compatible endpoint used, or null for AWS's S3.", type: str}
    exists: {description: Whether a job store this account can use exists under the name., type: bool}
    layout:
      description:
        - C(s3) for Toil 9.1 and later, C(sdb) for Toil 9.0 and older, C(file) for a file job store, or null when
          nothing exists. When both AWS layouts exist, C(s3).
      type: str
    layouts: {description: Every layout found., type: list, elements: str}
    bucket: {description: "The bucket Toil 9.1 and later use, C(<name>--toil), whether it exists or not.", type: str}
    buckets: {description: The job store's buckets that exist., type: list, elements: str}
    bucket_region: {description: "The region the job store's bucket is in, or null.", type: str}
    legacy_domains: {description: The Toil 9.0 SimpleDB domains that exist., type: list, elements: str}
    legacy_registry:
      description:
        - The store's entry in the Toil 9.0 C(toil-registry) SimpleDB domain. C(registered), C(in_transition)
          (being made or removed; Toil does not resume such a store), or null when there is none.
      type: str
    creation_time: {description: "When the job store's bucket was created (ISO 8601), or null (file job stores).", type: str}
    workflow:
      description: What the store's keys say of the workflow, or null when there is no store.
      type: dict
      contains:
        initialized: {description: Whether Toil finished making the store (C(config.pickle) exists)., type: bool}
        jobs:
          description: The jobs still recorded. Null for Toil 9.0 stores, whose jobs only SimpleDB Select could count.
          type: int
        root_job_return_value: {description: Whether the workflow started (C(rootJobReturnValue) exists)., type: bool}
        status:
          description:
            - Decided as C(toil status) does, from the store's shared files.
            - C(not_initialized) (no C(config.pickle)), C(not_started), C(running) (started and not ended, it runs or
              was killed), C(completed) (Toil wrote C(succeeded.log)) or C(failed) (Toil wrote C(failed.log)).
          type: str
    problem:
      description:
        - Why Toil could not use the name, or null. For example the bucket belongs to another account, or is in
          another region than the locator says, or the path is not a job store.
      type: str
    objects: {description: "Objects (current versions), or files.", type: int, returned: when O(count_objects=true)}
    versions: {description: "Object versions, current and older.", type: int, returned: when O(count_objects=true)}
    delete_markers: {description: Delete markers., type: int, returned: when O(count_objects=true)}
    bytes: {description: "Bytes of every version, or of every file.", type: int, returned: when O(count_objects=true)}
    multipart_uploads: {description: Unfinished multipart uploads., type: int, returned: when O(count_objects=true)}
"""

from ansible_collections.toil.cluster.plugins.module_utils.jobstore import describe_jobstore
from ansible_collections.toil.cluster.plugins.module_utils.jobstore_locator import jobstore_argument_spec, locate_jobstore
from ansible_collections.toil.cluster.plugins.module_utils.modules import ToilAWSModule


def main():
    module = ToilAWSModule(argument_spec=jobstore_argument_spec(count_objects=dict(type="bool", default=False)), supports_check_mode=True)
    params = module.params
    with module.input_errors():
        locator, endpoint = locate_jobstore(params["locator"], params["s3_endpoint"])
        with module.aws_errors(f"job store {locator.locator}"):
            description, _s3, _sdb = describe_jobstore(module, locator, endpoint, params["include_legacy"], params["count_objects"])
    module.exit_json(changed=False, jobstore=description)


if __name__ == "__main__":
    main()
