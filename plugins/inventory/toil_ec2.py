# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

DOCUMENTATION = r"""
name: toil_ec2
short_description: Every Toil cluster's nodes on AWS EC2, found by Toil's tags and security groups
version_added: 0.1.0
description:
  - Builds an inventory of the nodes of Toil clusters on AWS, launched by this collection
    (M(toil.cluster.toil_cluster), M(toil.cluster.toil_nodepool)) or by C(toil launch-cluster) alike.
  - "The configuration file's name must end with C(toil_ec2.yml) or C(toil_ec2.yaml) (for example
    C(clusters.toil_ec2.yml)), and the file must start with C(plugin: toil.cluster.toil_ec2)."
  - A node of cluster C is an instance in the security group named C (Toil's own rule, the one
    C(toil destroy-cluster) acts on) that also carries the tag C(clusterName=C), as every node Toil and this
    collection launch does. An instance with one without the other (in C's group but tagged for another
    cluster or untagged, or tagged C outside the group) is a stray. It is not a host of the inventory, and
    each stray is reported as a warning. C(ToilNodeType) tells a node's role. The leader is the node tagged
    C(ToilNodeType=leader), and only that node; a worker is never taken for the leader. A node is preemptible when it is a spot instance (lifecycle C(spot) or a
    spot request ID) or is tagged C(toil.cluster/preemptible=true).
  - "Queries, per region: one paginated DescribeInstances (pages of 1,000) with server-side filters on the
    clusters' security groups, the state and the C(Owner) tag, and one on the C(clusterName) tag to find the
    strays outside the groups. Without O(clusters), one DescribeSecurityGroups first finds the groups with
    Toil's description. Regions are queried in
    parallel; botocore retries throttling and server errors in its standard mode, 10 attempts."
  - Any failure (credentials, permissions, an unknown region, throttling that outlasts the retries) fails
    the inventory source with the reason; it never yields a partial or empty inventory that looks fine.
    Ansible only warns about a failed source unless C(ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED) is true (or
    C(ANSIBLE_INVENTORY_UNPARSED_FAILED), when every source failed; AWX and AAP set it for inventory updates).
  - "Groups (names are safe: characters other than letters, digits and C(_) become C(_)):
    C(toil_nodes) (every node), C(toil_cluster_<cluster>), C(toil_leaders), C(toil_workers),
    C(toil_cluster_<cluster>_leaders) and C(toil_cluster_<cluster>_workers) (one cluster's leader and workers, children
    of C(toil_cluster_<cluster>) and of C(toil_leaders) or C(toil_workers)), C(toil_preemptible),
    C(toil_pool_<cluster>_<pool>) (pool from the tag C(toil.cluster/pool)),
    C(toil_type_<instance type>) and, with O(include_stopped), C(toil_stopped). Should two different
    names give the same group name, each gets a short hash suffix, so nodes of different clusters never
    share a group by accident."
  - "Host variables: C(toil_cluster), C(toil_node_type) (C(leader) or C(worker)), C(toil_leader) (the
    leader's inventory name, when the leader is in the inventory), C(toil_pool), C(toil_preemptible),
    C(toil_instance_id), C(toil_instance_type), C(toil_region), C(toil_zone), C(toil_launch_time) (ISO 8601, UTC),
    C(toil_state), C(toil_private_ip), C(toil_public_ip), C(toil_private_dns) (null when unknown),
    C(ec2_tags) (the node's tags), C(ansible_host), C(ansible_user) and, with O(leader_as_bastion),
    C(toil_jump) and C(ansible_ssh_common_args). The reserved name C(tags) is never set."
  - "C(ansible_user): O(ssh_user) when set; else C(admin) on this collection's Debian nodes (they carry a
    C(toil.cluster/) tag, or IMDSv2 required with a hop limit of 2) and C(core) on Toil's Flatcar nodes."
  - The inventory cache stores the instances found, not the groups, so O(compose), O(groups), O(keyed_groups)
    and the other options apply on a cache hit too. A cache hit makes no AWS call at all.
author:
  - toil.cluster contributors (@toil-cluster)
requirements:
  - python >= 3.11
  - boto3 >= 1.35.0
  - botocore >= 1.35.0
extends_documentation_fragment:
  - amazon.aws.common.plugins
  - amazon.aws.region.plugins
  - amazon.aws.boto3
  - constructed
  - inventory_cache
options:
  plugin:
    description: The name of this plugin; it marks the file as this plugin's configuration.
    required: true
    type: str
    choices: [toil.cluster.toil_ec2]
  regions:
    description:
      - The regions to search.
      - When empty, the configured region only (O(region), C(AWS_REGION), C(AWS_DEFAULT_REGION) or the
        profile's region); never every region. Without any region the inventory fails.
    type: list
    elements: str
    default: []
  clusters:
    description:
      - The clusters to include, by name. When empty, every Toil cluster found.
      - A listed cluster's nodes are found by its security group even when they carry no tags.
    type: list
    elements: str
    default: []
  owners:
    description:
      - Only nodes whose C(Owner) tag is one of these (filtered by EC2, server-side); nodes without the tag are
        left out. When empty, any owner.
    type: list
    elements: str
    default: []
  node_types:
    description:
      - Only these kinds of node. When empty, both.
    type: list
    elements: str
    choices: [leader, worker]
    default: []
  include_stopped:
    description:
      - Also include stopping and stopped nodes (group C(toil_stopped)); by default only pending and running ones.
      - Like every boolean option of this plugin, it must be a boolean (V(true), V(false), V(yes), V(no)); any other
        word is refused rather than read as false.
    type: bool
    default: false
  hostnames:
    description:
      - How hosts are named in the inventory, in order of preference. Each node takes the first of these it
        has that no other node took already, and its instance ID when none is left, so two nodes never
        collapse into one host (for example equal private addresses in two VPCs).
      - The address Ansible connects to is C(ansible_host), whatever the name (see O(use_private_ip)).
    type: list
    elements: str
    choices: [public_ip, private_ip, private_dns, instance_id]
    default: [instance_id]
  use_private_ip:
    description:
      - Connect to nodes on their private IP address (C(ansible_host)). By default the public address is
        used when the node has one, else the private one.
    type: bool
    default: false
  ssh_user:
    description:
      - The C(ansible_user) of every node. By default C(admin) on this collection's Debian nodes and
        C(core) on Toil's Flatcar nodes.
      - A login name, ASCII letters, digits, C(.), C(_) and C(-), at most 32 characters, starting with a letter or
        C(_); anything else (a space, an ssh option) is refused.
    type: str
  leader_as_bastion:
    description:
      - Reach workers that are connected to on a private address (they have no public IP, or
        O(use_private_ip) is set) through their cluster's leader. The leader is reached on its public address when it has one.
      - "Such a worker gets C(toil_jump) (C({host, user, instance_id}) of its leader) and C(ansible_ssh_common_args) set to
        C(-o ProxyCommand=\"ssh -W [%h]:%p ... leader\") by the filter P(toil.cluster.ssh_jump_args#filter) when the
        connection is made. Unlike C(ProxyJump), the leader hop gets the key of the run (C(--private-key) or
        C(ansible_ssh_private_key_file)), host key checking as the run has it (C(host_key_checking),
        C(ansible_ssh_host_key_checking)) and, in C(configure_cluster), the pinned known_hosts file (C(toil_known_hosts_file))."
      - Inventory host variables take precedence over group_vars of the inventory, so a C(ansible_ssh_common_args)
        set there is replaced on these workers; use O(compose) to combine them.
    type: bool
    default: false
  assume_role_arn:
    description:
      - An IAM role to assume (sts:AssumeRole, once per run) with the credentials above; the inventory then
        uses the role's temporary credentials. STS is called at O(endpoint_url) when that is set.
    type: str
    aliases: [iam_role_arn]
  aws_ca_bundle:
    description:
      - A CA bundle to validate the endpoint's TLS certificate with.
    type: path
    env: [{name: AWS_CA_BUNDLE}]
  validate_certs:
    description:
      - Whether to validate the endpoint's TLS certificate.
    type: bool
    default: true
  aws_config:
    description:
      - "botocore client settings, merged over this plugin's (C({retries: {mode: standard, max_attempts: 10}}),
        for example C({read_timeout: 300})."
      - See U(https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html).
    type: dict
notes:
  - The session token is also read from C(AWS_SECURITY_TOKEN) when C(AWS_SESSION_TOKEN) and O(session_token) are unset,
    as older AWX versions set it for their AWS credential.
  - A O(profile) named in the configuration file is used instead of access keys found in the environment;
    keys written in the file together with a profile are refused.
  - The AWS permissions needed are C(ec2:DescribeInstances) and, without O(clusters), C(ec2:DescribeSecurityGroups) (plus
    C(sts:AssumeRole) on O(assume_role_arn)).
  - Same-named clusters in two regions share the group C(toil_cluster_<cluster>); each keeps its own leader.
    Use C(toil_region) (for example with O(keyed_groups)) to tell them apart.
seealso:
  - name: The toil_ec2 inventory in this collection's documentation
    description: Groups, variables, examples and performance.
    link: https://github.com/toil-cluster/toil.cluster/blob/main/docs/inventory.md
"""

EXAMPLES = r"""
# inventory/clusters.toil_ec2.yml: every Toil cluster in the configured region
plugin: toil.cluster.toil_ec2

---
# inventory/research.toil_ec2.yml: two clusters in two regions, workers through their leader
plugin: toil.cluster.toil_ec2
regions: [us-west-2, us-east-1]
clusters: [genomics, imaging]
leader_as_bastion: true
keyed_groups:
  - key: toil_region
    prefix: region
compose:
  ansible_python_interpreter: "'/usr/bin/python3'"

---
# inventory/mine.toil_ec2.yml: my nodes only, cached for 10 minutes, named by private DNS
plugin: toil.cluster.toil_ec2
profile: research
owners: [alice]
include_stopped: true
hostnames: [private_dns, instance_id]
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/toil_ec2
cache_timeout: 600
"""

import hashlib
import json
import os

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:
    boto3 = None

from ansible.errors import AnsibleParserError
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.unsafe_proxy import wrap_var

try:  # ansible-core 2.19+: a plugin's strings are data unless marked trusted
    from ansible.template import trust_as_template
except ImportError:  # before 2.19 every string not marked unsafe is a template

    def trust_as_template(text):
        return text


from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.inventory import (
    InventoryConfigError,
    InventoryOptions,
    build_inventory,
    check_hostnames,
    check_regions,
)
from ansible_collections.toil.cluster.plugins.module_utils.names import validate_cluster_name, validate_user_name
from ansible_collections.toil.cluster.plugins.module_utils.ssh_jump import JUMP_ARGS_TEMPLATE
from ansible_collections.toil.cluster.plugins.module_utils.zones import validate_region
from ansible_collections.toil.cluster.plugins.plugin_utils.instance_listing import InventoryQueryError, query_regions

CACHE_FORMAT = 1
MAX_WORKERS = 16
# The options that change what AWS is asked (the cache key includes them); the rest apply on a hit.
QUERY_OPTIONS = ("regions", "clusters", "owners", "include_stopped", "endpoint_url", "profile", "access_key", "assume_role_arn")


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "toil.cluster.toil_ec2"
    INVENTORY_FILE_SUFFIXES = ("toil_ec2.yml", "toil_ec2.yaml")

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(self.INVENTORY_FILE_SUFFIXES)

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache=cache)
        config = self._read_config_data(path)
        self._check_known_options(config)
        if boto3 is None:
            raise AnsibleParserError("The toil.cluster.toil_ec2 inventory needs boto3 and botocore on the controller (pip install boto3).")
        # The session is made (no AWS call) before the cache is read: the profile's region is part of the question.
        session = self._session()
        try:
            options = self._inventory_options()
            regions = self._regions(path, session)
        except (InventoryConfigError, ToilInputError) as error:
            raise AnsibleParserError(f"{path}: {error}") from None
        cache_key = self._query_cache_key(path, regions)
        result = None
        if self.get_option("cache") and cache:
            try:
                entry = self._cache[cache_key]
            except KeyError:
                entry = None
            if isinstance(entry, dict) and entry.get("format") == CACHE_FORMAT:
                result = entry["regions"]
        if result is None:
            result = self._query(session, regions)
            if self.get_option("cache"):
                self._cache[cache_key] = {"format": CACHE_FORMAT, "regions": result}
        inventory = build_inventory(result, options)
        for warning in inventory.warnings:  # strays: in a cluster's group or tagged for it, not both
            self.display.warning(f"{self.NAME}: {warning}")
        self._populate(inventory)

    # ------------------------------------------------------------------ options
    def _check_known_options(self, config):
        from ansible import constants as C  # noqa: PLC0415 - only needed here

        known = set()
        for name, definition in C.config.get_configuration_definitions("inventory", self._load_name).items():
            known.add(name)
            known.update(definition.get("aliases") or ())
        unknown = sorted(set(config) - known)
        if unknown:
            raise AnsibleParserError(f"{self.NAME}: unknown option(s) {', '.join(unknown)}; see ansible-doc -t inventory {self.NAME}.")
        # Ansible's configuration reads any other word as false (include_stopped: maybe): booleans are checked as written.
        for name, definition in C.config.get_configuration_definitions("inventory", self._load_name).items():
            if definition.get("type") in ("bool", "boolean") and config.get(name) is not None:
                try:
                    boolean(config[name], strict=True)
                except TypeError:
                    raise AnsibleParserError(f"{self.NAME}: {name} must be true or false, not {config[name]!r}.") from None

    def _inventory_options(self):
        clusters = [validate_cluster_name(name) for name in self.get_option("clusters") or ()]
        for region in self.get_option("regions") or ():  # fullmatch: a trailing newline is refused before any call
            try:
                validate_region(region)
            except ToilInputError as error:
                raise InventoryConfigError(f"regions: {error}") from None
        ssh_user = self.get_option("ssh_user")
        if ssh_user is not None:
            validate_user_name(ssh_user)
        return InventoryOptions(
            clusters=tuple(clusters),
            owners=tuple(self.get_option("owners") or ()),
            node_types=tuple(self.get_option("node_types") or ()),
            hostnames=tuple(check_hostnames(self.get_option("hostnames") or ())),
            use_private_ip=self.get_option("use_private_ip"),
            ssh_user=ssh_user,
            leader_as_bastion=self.get_option("leader_as_bastion"),
        )

    def _query_cache_key(self, path, regions):
        query = {name: self.get_option(name) for name in QUERY_OPTIONS}
        query["regions"] = regions
        digest = hashlib.sha256(json.dumps(query, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return f"{self.get_cache_key(path)}_{digest}"

    # ------------------------------------------------------------------ AWS
    def _session(self):
        """A boto3 session from the options. A profile named in the file wins over keys in the environment."""
        profile, profile_origin = self.get_option_and_origin("profile")
        keys = {}
        for option, name in (("access_key", "aws_access_key_id"), ("secret_key", "aws_secret_access_key"), ("session_token", "aws_session_token")):
            value, origin = self.get_option_and_origin(option)
            if option == "session_token" and not value and os.environ.get("AWS_SECURITY_TOKEN"):
                value, origin = os.environ["AWS_SECURITY_TOKEN"], "env: AWS_SECURITY_TOKEN"  # older AWX and boto2 set it
            if profile and str(origin).startswith("env") and not str(profile_origin).startswith("env"):
                value = None
            keys[name] = value or None
        if profile and any(keys.values()):
            raise AnsibleParserError(f"{self.NAME}: give either profile or access_key/secret_key/session_token, not both.")
        try:
            return boto3.session.Session(profile_name=profile or None, region_name=self.get_option("region") or None, **keys)
        except BotoCoreError as error:  # ProfileNotFound
            raise AnsibleParserError(f"{self.NAME}: {error}") from None

    def _client_settings(self, workers):
        config = Config(
            retries={"mode": "standard", "max_attempts": 10},
            max_pool_connections=max(10, workers),
            user_agent_extra="toil.cluster/toil_ec2",
        )
        extra = self.get_option("aws_config")
        if extra:
            try:
                config = config.merge(Config(**extra))
            except TypeError as error:
                raise AnsibleParserError(f"{self.NAME}: aws_config: {error}") from None
        settings = {"config": config}
        if not self.get_option("validate_certs"):
            settings["verify"] = False
        elif self.get_option("aws_ca_bundle"):
            settings["verify"] = self.get_option("aws_ca_bundle")
        if self.get_option("endpoint_url"):
            settings["endpoint_url"] = self.get_option("endpoint_url")
        return settings

    def _regions(self, path, session):
        """``regions``, else the configured region (option, environment or profile); never every region."""
        regions = check_regions(self.get_option("regions") or [])
        if regions:
            return regions
        if not session.region_name:
            raise InventoryConfigError(
                "no region to search: set regions (or region, AWS_REGION, or a profile's region). This inventory never searches every region implicitly."
            )
        return check_regions([session.region_name])

    def _query(self, session, regions):
        settings = self._client_settings(min(MAX_WORKERS, 2 * len(regions)))
        try:
            role = self.get_option("assume_role_arn")
            if role:
                sts = session.client("sts", region_name=regions[0], **settings)
                credentials = sts.assume_role(RoleArn=role, RoleSessionName="ansible_toil_ec2_inventory")["Credentials"]
                session = boto3.session.Session(
                    aws_access_key_id=credentials["AccessKeyId"],
                    aws_secret_access_key=credentials["SecretAccessKey"],
                    aws_session_token=credentials["SessionToken"],
                )
            # Clients are made here, in one thread (boto3 sessions are not thread-safe); they are used in parallel.
            clients = {region: session.client("ec2", region_name=region, **settings) for region in regions}
            return query_regions(
                clients,
                clusters=self.get_option("clusters") or (),
                owners=self.get_option("owners") or (),
                include_stopped=self.get_option("include_stopped"),
                max_workers=MAX_WORKERS,
            )
        except InventoryQueryError as error:
            raise AnsibleParserError(f"{self.NAME}: {error}") from None
        except (BotoCoreError, ClientError) as error:
            raise AnsibleParserError(f"{self.NAME}: {to_native(error)}") from None

    # ------------------------------------------------------------------ Ansible
    def _populate(self, model):
        # Everything here comes from AWS (tags, tag keys, names, addresses): whoever can tag an instance writes it.
        # Before 2.19, Ansible templates any string not marked unsafe wherever it is used, so each value (nested
        # ones too) is marked unsafe: data on every core (2.19+ only drops template trust, which AWS text never had).
        # compose, groups and keyed_groups then see unsafe inputs, and Ansible marks what they make of them unsafe.
        inventory = self.inventory
        for group in model.groups:
            inventory.add_group(group)
        for parent, children in model.children.items():
            for child in children:
                inventory.add_child(parent, child)
        compose = self.get_option("compose")
        groups = self.get_option("groups")
        keyed_groups = self.get_option("keyed_groups")
        constructed = compose or groups or keyed_groups
        strict = self.get_option("strict")
        for host in model.hosts:
            name = inventory.add_host(host.name)
            for key, value in host.variables.items():
                inventory.set_variable(name, key, wrap_var(value))
            if "toil_jump" in host.variables:  # constant text of this collection; the jump itself stays data
                inventory.set_variable(name, "ansible_ssh_common_args", trust_as_template(JUMP_ARGS_TEMPLATE))
            for group in host.groups:
                inventory.add_child(group, name)
            if constructed:
                hostvars = inventory.get_host(name).get_vars()
                self._set_composite_vars(compose, hostvars, name, strict=strict)
                self._add_host_to_composed_groups(groups, hostvars, name, strict=strict)
                self._add_host_to_keyed_groups(keyed_groups, hostvars, name, strict=strict)
