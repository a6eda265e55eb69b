#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
module: toil_jobstore
short_description: Check a Toil job store's name, or remove the store the way C(toil clean) does
version_added: 0.1.0
description:
  - Works on the job stores of the Toil workflow engine, named by a locator such as C(aws:us-west-2:my-run)
    (Toil's C(--jobStore)), with Toil's name rules.
  - Recognises both layouts of the AWS job store. Toil 9.1 and later keep the whole store in the S3 bucket
    C(<name>--toil). Toil 9.0 and older used the SimpleDB domains C(<name>--jobs) and C(<name>--files), the
    versioned bucket C(<name>--files) and an entry C(<name>) in the region's C(toil-registry) domain.
  - O(state=absent) does what C(toil clean) does, more carefully. It aborts unfinished multipart uploads, deletes
    every object version and delete marker in DeleteObjects batches of at most 1,000 keys (Toil deletes them one
    request at a time and reads only the first 1,000 uploads), deletes the bucket, then the Toil 9.0 domains and
    registry entry. A C(<name>--files) bucket is only removed when SimpleDB shows that it belongs to a Toil 9.0
    job store. Running it again changes nothing. Nothing is touched when the bucket belongs to another account or
    is in another region than the locator says.
  - O(state=present) creates nothing. It checks the locator and that the name is either free or already a
    job store this account can use, and fails otherwise. Toil creates the store itself when a workflow starts and
    refuses to start a new workflow on an existing store (C(JobStoreExistsException)); an existing store is
    resumed with C(--restart), or removed first with O(state=absent).
  - A C(file:<path>) locator names a directory on the host the module runs on (delegate the task to the host the
    workflow ran on). The path must be absolute. O(state=absent) deletes the directory only when it looks like a
    Toil file job store (it has C(jobs/) and C(shared/)); it refuses symbolic links and any other directory.
author:
  - toil.cluster contributors (@toil-cluster)
options:
  locator:
    description:
      - The job store, as given to Toil's C(--jobStore). C(aws:<region>:<name>) where the name has 3 to 56 lowercase
        letters, digits and C(-), starts and ends with a letter or digit, and has no C(--). Or C(file:<absolute path>).
    type: str
    required: true
  state:
    description:
      - V(absent) removes the job store. V(present) only checks that the name is free or already a job store.
    type: str
    choices: [present, absent]
    default: present
  include_legacy:
    description:
      - Also look for, and with O(state=absent) remove, the Toil 9.0 layout in SimpleDB. Turn it off for credentials
        without SimpleDB permissions.
    type: bool
    default: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - toil.cluster.aws.modules
  - toil.cluster.s3_endpoint
notes:
  - Supports check mode and diff mode. In both, O(state=absent) reports how many objects, versions, delete markers
    and bytes would go, which costs a listing of the bucket.
  - Remove a store only when no workflow uses it any more. A workflow that writes meanwhile makes the bucket
    deletion fail; the module then empties the bucket again, at most three times.
seealso:
  - module: toil.cluster.toil_jobstore_info
"""

EXAMPLES = r"""
- name: Check that the name is free (or already a job store of ours) before starting a workflow
  toil.cluster.toil_jobstore:
    locator: aws:us-west-2:my-run

- name: What would be removed
  toil.cluster.toil_jobstore:
    locator: aws:us-west-2:my-run
    state: absent
  check_mode: true
  diff: true

- name: Remove the job store, as toil clean would
  toil.cluster.toil_jobstore:
    locator: aws:us-west-2:my-run
    state: absent
  register: cleaned

- name: Remove a job store kept in MinIO
  toil.cluster.toil_jobstore:
    locator: aws:us-east-1:my-run
    state: absent
    s3_endpoint:
      host: minio.example.org
    access_key: "{{ minio_access_key }}"
    secret_key: "{{ minio_secret_key }}"

- name: Remove a file job store on the host the workflow ran on
  toil.cluster.toil_jobstore:
    locator: file:/scratch/runs/my-run
    state: absent
  delegate_to: "{{ workflow_host }}"
"""

RETURN = r"""
jobstore:
  description:
    - The job store as found before the task, with the keys of M(toil.cluster.toil_jobstore_info)'s RV(ignore:jobstore)
      except the object counts.
  returned: always
  type: dict
  contains:
    locator: {description: The locator., type: str}
    kind: {description: C(aws) or C(file)., type: str}
    exists: {description: Whether a job store this account can use exists under the name., type: bool}
    layout: {description: "C(s3) (Toil 9.1 and later), C(sdb) (Toil 9.0 and older), C(file), or null.", type: str}
    buckets: {description: The job store's buckets that exist., type: list, elements: str}
    legacy_domains: {description: The Toil 9.0 SimpleDB domains that exist., type: list, elements: str}
    workflow: {description: What the store's keys say of the workflow (see M(toil.cluster.toil_jobstore_info))., type: dict}
    problem: {description: "Why Toil could not use the name, or null.", type: str}
removed:
  description: What was removed (in check mode, what would be). Null when nothing was.
  returned: when O(state=absent)
  type: dict
  contains:
    buckets: {description: The buckets emptied and deleted (AWS)., type: list, elements: str}
    legacy_domains: {description: The SimpleDB domains deleted (AWS)., type: list, elements: str}
    legacy_registry_entry: {description: "Whether the store's C(toil-registry) entry was removed (AWS).", type: bool}
    path: {description: The directory deleted (file)., type: str}
    objects: {description: "Objects (current versions), or files.", type: int}
    versions: {description: "Object versions, current and older (AWS).", type: int}
    delete_markers: {description: Delete markers (AWS)., type: int}
    bytes: {description: "Bytes of every version, or of every file.", type: int}
    multipart_uploads: {description: Unfinished multipart uploads aborted (AWS)., type: int}
"""

from ansible_collections.toil.cluster.plugins.module_utils.jobstore import describe_jobstore, ensure_absent, ensure_present
from ansible_collections.toil.cluster.plugins.module_utils.jobstore_locator import jobstore_argument_spec, locate_jobstore
from ansible_collections.toil.cluster.plugins.module_utils.modules import ToilAWSModule


def main():
    state_option = dict(type="str", choices=["present", "absent"], default="present")
    module = ToilAWSModule(argument_spec=jobstore_argument_spec(state=state_option), supports_check_mode=True)
    params = module.params
    with module.input_errors():
        locator, endpoint = locate_jobstore(params["locator"], params["s3_endpoint"])
    with module.aws_errors(f"job store {locator.locator}"), module.input_errors():
        description, s3, sdb = describe_jobstore(module, locator, endpoint, params["include_legacy"])
        if params["state"] == "absent":
            changed, removed, diff = ensure_absent(description, module.check_mode, s3, sdb, locator, module.warn)
            module.exit_json(changed=changed, jobstore=description, removed=removed, diff=diff)
        changed, diff = ensure_present(description)
    module.exit_json(changed=changed, jobstore=description, diff=diff)


if __name__ == "__main__":
    main()
