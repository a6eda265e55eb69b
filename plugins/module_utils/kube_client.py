# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Talking to the Kubernetes API: loading its clients, listing by pages, and its refusals as one line.

The kubernetes package is optional (only ``toil_scaler`` without ``demand`` needs it): this file
imports without it, as ansible-test's import sanity test does, and ``load_clients`` then says
how to install it.
"""

from __future__ import annotations

import functools
import json
import os
import re
import urllib.parse

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError
from ansible_collections.toil.cluster.plugins.module_utils.kube_objects import UNREAD, views

try:
    import urllib3
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException
    from urllib3.exceptions import HTTPError as Urllib3HTTPError
except ImportError as error:  # ansible-test's import sanity test runs without extra packages
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = error
    k8s_client = k8s_config = None

    class ApiException(Exception):
        """Stands in for kubernetes.client.exceptions.ApiException: never raised without the client."""

        status = None
        body = None

    class ConfigException(Exception):
        pass

    class Urllib3HTTPError(Exception):
        pass

else:
    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None

try:  # kubernetes.core (a dependency of this collection) reads its options and K8S_AUTH_* this way; so do we
    from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_MAP, AUTH_ARG_SPEC
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import _create_auth_spec, _create_headers
except ImportError:  # ansible-test's import sanity test may run without it; toil_scaler's argument spec needs it
    AUTH_ARG_MAP = {}
    AUTH_ARG_SPEC = {}
    _create_auth_spec = _create_headers = None

# The Kubernetes connection options a module of this collection takes: kubernetes.core's but validate_certs, which is
# amazon.aws's option of the same name (AWS's certificates); the API server's is checked as K8S_AUTH_VERIFY_SSL or the
# kubeconfig says (default: checked), so turning off one check never turns off the other.
KUBE_CONNECTION_ARG_SPEC = {name: spec for name, spec in AUTH_ARG_SPEC.items() if name != "validate_certs"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
LIST_PAGE_SIZE = 500
UNFINISHED_PODS = "status.phase!=Succeeded,status.phase!=Failed"
# What the scaler never reads of a pod (kube_demand, kube_pods), left out as each page is decoded (Toil's command
# alone, a pickled job, is often most of a pod). kube_objects.UNREAD stands in its place, and a view refuses to
# read it: code that comes to read one of these fails at once instead of finding nothing.
UNREAD_POD_FIELDS = {
    "spec": ("volumes", "tolerations"),
    "status": ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"),
}
UNREAD_CONTAINER_FIELDS = ("command", "args", "env", "envFrom", "volumeMounts", "volumeDevices", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle")


class KubeError(ToilInputError):
    """A Kubernetes failure told as a plain message.

    A ToilInputError so that ``ToilAWSModule.input_errors()`` turns it into ``fail_json``
    without a traceback, like every other refusal of the collection.
    """


def _require_kubernetes():
    if not HAS_KUBERNETES:
        raise ToilInputError(f"The kubernetes Python package is required to talk to the cluster (pip install kubernetes): {KUBERNETES_IMPORT_ERROR}")


def _kubeconfig_files():
    """The kubeconfig files the client would read without one given: ``$KUBECONFIG`` (a path list) or ``~/.kube/config``."""
    paths = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p] or ["~/.kube/config"]
    return [p for p in paths if os.path.isfile(os.path.expanduser(p))]


# kubernetes.core's option (its true name, as kubernetes.client.Configuration calls it) that only say how to connect,
# set over whatever the kubeconfig gave, as kubernetes.core sets them.
_CONNECTION_SETTINGS = ("host", "api_key", "username", "password", "verify_ssl", "ssl_ca_cert", "cert_file", "key_file", "proxy", "no_proxy", "proxy_headers")


def connection_options(auth=None):
    """kubernetes.core's connection options (its ``k8s_auth_options``), each from ``auth`` (the module's parameters) or
    else from its ``K8S_AUTH_*`` variable, as AWX's Kubernetes credential sets them; keyed by their true names."""
    if _create_auth_spec is None:
        raise ToilInputError("The kubernetes.core collection is required to read the Kubernetes connection options.")
    params = {name: value for name, value in (auth or {}).items() if name in KUBE_CONNECTION_ARG_SPEC and value is not None}
    spec = _create_auth_spec(**params)
    if not spec.get("proxy_headers"):
        spec.pop("proxy_headers", None)  # kubernetes.core adds an empty one
    host = spec.get("host")
    if host is not None:
        parts = urllib.parse.urlsplit(str(host))
        if parts.scheme not in ("https", "http") or not parts.hostname or _CONTROL.search(str(host)):
            raise ToilInputError(f"host must be the API server's URL, like https://10.0.0.1:6443, got {ascii(host)[:80]}.")
        spec["host"] = str(host).rstrip("/")
    for name in ("api_key", "username", "password"):
        if _CONTROL.search(str(spec.get(name) or "")):
            raise ToilInputError(f"{AUTH_ARG_MAP.get(name, name)} holds a control character or line break.")
    return spec


def impersonation_headers(auth=None):
    """Impersonate-User and Impersonate-Group from ``impersonate_user``/``impersonate_groups`` or K8S_AUTH_IMPERSONATE_*.

    The client sends one value per header name, so at most one group (the API server reads each Impersonate-Group
    header as one group)."""
    headers = _create_headers(**{k: v for k, v in (auth or {}).items() if k.startswith("impersonate_") and v is not None})
    groups = headers.get("Impersonate-Group")
    if groups is not None:
        if len(groups) > 1:
            raise ToilInputError(f"impersonate_groups: at most one group here, got {len(groups)}.")
        headers["Impersonate-Group"] = groups[0]
    for name, value in headers.items():
        if not isinstance(value, str) or _CONTROL.search(value):
            raise ToilInputError(f"{name} must be one line of text, got {ascii(value)[:80]}.")
    return headers


def _given_credentials(spec):
    """True when the options alone reach and authenticate to the server (kubernetes.core's rule): no kubeconfig is read."""
    return bool(spec.get("host")) and bool(
        spec.get("api_key") or (spec.get("cert_file") and spec.get("key_file")) or (spec.get("username") and spec.get("password"))
    )


def load_clients(kubeconfig=None, context=None, auth=None):
    """``(CoreV1Api, PolicyV1Api)`` sharing one configuration (the process-wide default is left alone).

    ``kubeconfig`` (a file) and ``context`` as kubectl reads them; without ``kubeconfig``,
    ``$KUBECONFIG`` then ``~/.kube/config``, then the pod's service account (in-cluster). ``auth``: the other
    connection options of kubernetes.core (``host``, ``api_key``, ``validate_certs``, ``ca_cert``, ``client_cert``,
    ``client_key``, ``proxy``...), else their ``K8S_AUTH_*`` variables; with a host and credentials, no kubeconfig is read.
    """
    _require_kubernetes()
    spec = connection_options({**(auth or {}), "kubeconfig": kubeconfig, "context": context})
    kubeconfig, context = spec.get("kubeconfig"), spec.get("context")
    configuration = k8s_client.Configuration()
    try:
        if _given_credentials(spec) and kubeconfig is None and context is None:
            pass
        elif isinstance(kubeconfig, dict):
            k8s_config.load_kube_config_from_dict(config_dict=kubeconfig, context=context, client_configuration=configuration)
        elif kubeconfig is not None:
            if not os.path.isfile(os.path.expanduser(kubeconfig)):
                raise ToilInputError(f"kubeconfig {kubeconfig} does not exist.")
            k8s_config.load_kube_config(config_file=os.path.expanduser(kubeconfig), context=context, client_configuration=configuration)
        elif _kubeconfig_files():
            files = _kubeconfig_files()
            k8s_config.load_kube_config(config_file=os.pathsep.join(files), context=context, client_configuration=configuration)
        elif os.environ.get("KUBERNETES_SERVICE_HOST") and context is None:
            k8s_config.load_incluster_config(client_configuration=configuration)
        else:
            where = f"context {context!r} needs a kubeconfig: " if context else ""
            raise ToilInputError(
                f"No Kubernetes configuration found: {where}give kubeconfig (or set KUBECONFIG), host with api_key or "
                "client_cert and client_key (or their K8S_AUTH_* variables), create ~/.kube/config, "
                "or run inside a pod with a service account."
            )
    except ConfigException as error:
        where = "the given dictionary" if isinstance(kubeconfig, dict) else kubeconfig or "default"
        raise ToilInputError(f"Invalid Kubernetes configuration ({where}): {error}") from None
    for name in _CONNECTION_SETTINGS:
        value = spec.get(name)
        if value is None:
            continue
        if name == "api_key":
            value = {"authorization": f"Bearer {value}"}  # what kubernetes.core sets: the BearerToken scheme's header
        elif name == "proxy_headers":
            value = urllib3.util.make_headers(**value)
        setattr(configuration, name, value)
    api = k8s_client.ApiClient(configuration)
    for header, value in impersonation_headers(auth).items():
        api.set_default_header(header, value)
    return k8s_client.CoreV1Api(api), k8s_client.PolicyV1Api(api)


def api_message(error):
    """An ApiException as one line: ``403 Forbidden: pods is forbidden: ...``."""
    status = getattr(error, "status", None)
    message = ""
    try:
        message = json.loads(error.body).get("message", "") if error.body else ""
    except (TypeError, ValueError, AttributeError):
        message = str(error.body)
    return f"{status} {getattr(error, 'reason', '') or ''}: {message}".strip().rstrip(":")


def _model_page(method, **kwargs):
    page = method(**kwargs)
    return list(page.items or ()), (getattr(page.metadata, "_continue", None) if page.metadata else None)


def prune_pod(pod):
    """The pod (decoded JSON) without what the scaler never reads (``UNREAD_POD_FIELDS``), in place."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    for part, fields in ((spec, UNREAD_POD_FIELDS["spec"]), (status, UNREAD_POD_FIELDS["status"])):
        for field in fields:
            if field in part:
                part[field] = UNREAD
    for containers in (spec.get("containers"), spec.get("initContainers"), spec.get("ephemeralContainers")):
        for container in containers or ():
            for field in UNREAD_CONTAINER_FIELDS:
                if field in container:
                    container[field] = UNREAD
    return pod


def _json_page(method, prune=None, **kwargs):
    """A page as the API sent it: the client decodes nothing (``_preload_content=False``), and each item's
    ``metadata.managedFields`` (server-side apply's bookkeeping, often half an object) is dropped at once, as is
    what ``prune`` leaves out."""
    response = method(_preload_content=False, **kwargs)
    try:
        body = json.loads(response.data)
    except ValueError as error:
        raise KubeError(f"The Kubernetes API answered with something that is not JSON: {error}") from None
    finally:
        response.release_conn()
    items = body.get("items") or []
    for item in items:
        (item.get("metadata") or {}).pop("managedFields", None)
        if prune is not None:
            prune(item)
    return items, (body.get("metadata") or {}).get("continue")


def _paged(read_page, method, **kwargs):
    """As client-go's pager (tools/pager, FullListIfExpired): when the API server has compacted away the revision a
    continue token reads (410 Gone, reason Expired), the list is read again in one piece, without pages."""
    items = []
    token = None
    while True:
        try:
            paging = {"limit": LIST_PAGE_SIZE, "_continue": token} if token else {"limit": LIST_PAGE_SIZE}
            page, token_after = read_page(method, **paging, **kwargs)
        except ApiException as error:
            if token is None or error.status != 410:
                raise
            return read_page(method, **kwargs)[0]
        items.extend(page)
        token = token_after
        if not token:
            return items


def list_all(method, **kwargs):
    """Every item of a list call (``list_node``, ``list_pod_for_all_namespaces``...), page by page, as model objects."""
    return _paged(_model_page, method, **kwargs)


def list_all_json(method, prune=None, **kwargs):
    """Every item of a list call, page by page, as the decoded JSON objects (no model objects: kube_objects.py),
    each passed through ``prune`` (``prune_pod``) as its page is decoded."""
    return _paged(functools.partial(_json_page, prune=prune), method, **kwargs)


def read_cluster(core_v1):
    """``(pods, nodes)``: the pods of every namespace that have not ended and every node, listed by pages, as views
    of V1Pod / V1Node over the JSON (kube_objects.py). Finished pods (Succeeded, Failed) hold nothing and wait for
    nothing, so the API server leaves them out (a field selector every API server supports for pods); of each pod,
    what the scaler never reads is left out as its page is decoded (``prune_pod``)."""
    try:
        pods = list_all_json(core_v1.list_pod_for_all_namespaces, prune=prune_pod, field_selector=UNFINISHED_PODS)
        nodes = list_all_json(core_v1.list_node)
    except ApiException as error:
        raise KubeError(f"The Kubernetes API refused to list pods and nodes: {api_message(error)}") from None
    except Urllib3HTTPError as error:
        raise KubeError(f"Cannot reach the Kubernetes API: {error}") from None
    return views(pods, "V1Pod"), views(nodes, "V1Node")
