# -*- coding: utf-8 -*-
# Copyright: toil.cluster contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Kubernetes objects read as the API sent them (JSON), through the client's model attribute names.

The kubernetes client turns every listed object into model objects (``V1Pod``...) before returning:
for 10,000 pods that is most of a scaler run's time and memory, spent on fields nobody reads. The
scaler lists with ``_preload_content=False``, decodes the JSON itself and wraps each object in a
``ModelView``: ``pod.spec.node_name`` reads ``spec.nodeName``, converting (to views, lists of views,
datetimes) only what is read. Names and types come from the models' own ``attribute_map`` and
``openapi_types``, so a view answers exactly what the model would: the same attribute names, None
for a field the object lacks, AttributeError for a name the model does not have, maps (labels,
requests) as plain dicts.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from datetime import datetime

try:
    from kubernetes.client import models as k8s_models
except ImportError:  # ansible-test's import sanity test runs without extra packages
    k8s_models = None

_LIST_PREFIX = "list["
_DICT_PREFIX = "dict("
_PRIMITIVES = frozenset(("str", "int", "float", "bool", "object", "date"))


def _model(name):
    """The model class named in ``openapi_types`` (``V1PodSpec``), or None for a primitive type."""
    if name in _PRIMITIVES or name == "datetime":
        return None
    return getattr(k8s_models, name, None)


def _datetime(value):
    """As the client deserialises a date-time (RFC 3339, ``Z`` for UTC): a timezone-aware datetime."""
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return value


_VIEW_CLASSES = {}  # model class -> its view class


class UnreadField(Exception):
    """A view was asked for a field its listing did not keep (``UNREAD``): the code reads more than it lists."""


class _Unread:
    __slots__ = ()

    def __repr__(self):
        return "UNREAD"


UNREAD = _Unread()  # stands, in decoded JSON, for a field left out as the list was read; a view refuses to read it


def _view_class(model):
    """The view class of a model: one property per model attribute, reading the attribute's JSON key and turning
    the value into what the model holds (views, lists of views, datetimes; strings, numbers and maps as decoded).
    Properties, as the models have, not ``__getattr__``: a name that is not an attribute is refused as usual."""
    cls = _VIEW_CLASSES.get(model)
    if cls is None:
        namespace = {"__slots__": (), "_model": model}
        for name, key in model.attribute_map.items():
            namespace[name] = _property(name, key, _converter(model.openapi_types[name]))
        cls = _VIEW_CLASSES[model] = type(f"{model.__name__}View", (ModelView,), namespace)
    return cls


def _unread(view, name, key):
    return UnreadField(f"{view._model.__name__}.{name} ({key}) was left out when the list was read")


def _property(name, key, convert):
    if convert is None:

        def read(view):
            value = view._data.get(key)
            if value is UNREAD:
                raise _unread(view, name, key)
            return value

    else:

        def read(view):
            # Converted once and kept: reading it again gives the same object, as a model's attribute does.
            converted = view._converted
            if converted is None:
                converted = view._converted = {}
            elif name in converted:
                return converted[name]
            value = view._data.get(key)
            if value is UNREAD:
                raise _unread(view, name, key)
            converted[name] = value = None if value is None else convert(value)
            return value

    read.__name__ = name
    return property(read)


def _converter(kind):
    if kind.startswith(_DICT_PREFIX):
        return None
    if kind == "datetime":
        return _datetime
    listed = kind.startswith(_LIST_PREFIX)
    inner = _model(kind[len(_LIST_PREFIX) : -1] if listed else kind)
    if inner is None:
        return None
    view_class = []  # the inner model's view class, made when first needed (models refer to themselves: no recursion)

    def convert(value):
        if not view_class:
            view_class.append(_view_class(inner))
        cls = view_class[0]
        if listed:
            return [_new(cls, item) if isinstance(item, dict) else item for item in value]
        return _new(cls, value) if isinstance(value, dict) else value

    return convert


def _new(cls, data):
    view = object.__new__(cls)
    view._data, view._converted = data, None
    return view


class ModelView:
    """A JSON object seen through a kubernetes model class: ``ModelView(pod_json, "V1Pod").spec.node_name``."""

    __slots__ = ("_data", "_converted")

    def __new__(cls, data, model):
        model_class = _model(model) if isinstance(model, str) else model
        if model_class is None or not hasattr(model_class, "attribute_map"):
            raise ValueError(f"{model!r} is not a kubernetes model class.")
        return _new(_view_class(model_class), data)

    def __repr__(self):
        return f"ModelView({self._model.__name__}, {self._data!r})"


def views(items, model):
    """Decoded list items as views of ``model`` (``"V1Pod"``)."""
    cls = _view_class(_model(model))
    return [_new(cls, item) for item in items]


@contextmanager
def cycle_collector_paused():
    """Python's cycle collector paused while a large listing is decoded and read, and restored after.

    Decoded JSON and its views hold no reference cycles, so the collector can free nothing in them, yet each of
    its full passes walks every one of their objects: reading 10,000 pods, its passes took longer than the
    reading itself. Everything made meanwhile is freed by reference counting as usual."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
