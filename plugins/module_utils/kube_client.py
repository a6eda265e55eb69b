# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Talking to the Kubernetes API: loading its clients, listing by pages, and its refusals as one line.

The kubernetes package is optional (only ``toil_scaler`` without ``demand`` needs it): this file
imports without it, as ansible-test's import sanity test does, and ``load_clients`` then says
how to install it.
"""

from __future__ import annotations

import json
import os

from ansible_collections.toil.cluster.plugins.module_utils.errors import ToilInputError

try:
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

LIST_PAGE_SIZE = 500


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


def load_clients(kubeconfig=None, context=None):
    """``(CoreV1Api, PolicyV1Api)`` sharing one configuration (the process-wide default is left alone).

    ``kubeconfig`` (a file) and ``context`` as kubectl reads them; without ``kubeconfig``,
    ``$KUBECONFIG`` then ``~/.kube/config``, then the pod's service account (in-cluster).
    """
    _require_kubernetes()
    configuration = k8s_client.Configuration()
    try:
        if kubeconfig is not None:
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
                f"No Kubernetes configuration found: {where}give kubeconfig (or set KUBECONFIG), create ~/.kube/config, "
                "or run inside a pod with a service account."
            )
    except ConfigException as error:
        raise ToilInputError(f"Invalid Kubernetes configuration ({kubeconfig or 'default'}): {error}") from None
    api = k8s_client.ApiClient(configuration)
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


def list_all(method, **kwargs):
    """Every item of a list call (``list_node``, ``list_pod_for_all_namespaces``...), page by page.

    As client-go's pager (tools/pager, FullListIfExpired): when the API server has compacted away the revision a
    continue token reads (410 Gone, reason Expired), the list is read again in one piece, without pages."""
    items = []
    token = None
    while True:
        try:
            page = method(limit=LIST_PAGE_SIZE, _continue=token, **kwargs) if token else method(limit=LIST_PAGE_SIZE, **kwargs)
        except ApiException as error:
            if token is None or error.status != 410:
                raise
            return list(method(**kwargs).items or ())
        items.extend(page.items or ())
        token = getattr(page.metadata, "_continue", None) if page.metadata else None
        if not token:
            return items


def read_cluster(core_v1):
    """``(pods, nodes)``: every pod of every namespace and every node, as lists of V1Pod / V1Node (listed by pages)."""
    try:
        return list_all(core_v1.list_pod_for_all_namespaces), list_all(core_v1.list_node)
    except ApiException as error:
        raise KubeError(f"The Kubernetes API refused to list pods and nodes: {api_message(error)}") from None
    except Urllib3HTTPError as error:
        raise KubeError(f"Cannot reach the Kubernetes API: {error}") from None
