"""Every role's meta/argument_specs.yml documents exactly the variables of its defaults/main.yml.

The roles are discovered under roles/, so a role added later is checked too (prometheus-community's
lint_arguments_spec.sh, as a test). Defaults must match as well: a spec's default equals the
default's value (templated strings compared as text).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"
# A role is a folder with any of these; an empty skeleton someone is still writing is not one yet.
ROLE_MARKERS = ("tasks/main.yml", "defaults/main.yml", "meta/main.yml", "meta/argument_specs.yml")
ROLE_DIRS = sorted(p for p in ROLES.iterdir() if p.is_dir() and any((p / m).exists() for m in ROLE_MARKERS))


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text()) if path.exists() else None


def test_roles_are_discovered() -> None:
    assert {"kubernetes", "metrics_server"} <= {p.name for p in ROLE_DIRS}


@pytest.mark.parametrize("role", ROLE_DIRS, ids=[p.name for p in ROLE_DIRS])
def test_argument_specs_match_defaults(role: Path) -> None:
    defaults = load(role / "defaults" / "main.yml") or {}
    specs = load(role / "meta" / "argument_specs.yml")
    assert specs is not None, f"{role.name}: meta/argument_specs.yml is missing"
    options = (specs.get("argument_specs", {}).get("main") or {}).get("options") or {}
    assert set(options) == set(defaults), (
        f"{role.name}: only in argument_specs: {sorted(set(options) - set(defaults))}; only in defaults: {sorted(set(defaults) - set(options))}"
    )
    for name, value in defaults.items():
        spec = options[name]
        assert "description" in spec, f"{role.name}: {name} has no description"
        assert "type" in spec, f"{role.name}: {name} has no type"
        assert spec.get("default") == value, f"{role.name}: {name} defaults to {value!r} but argument_specs says {spec.get('default')!r}"


@pytest.mark.parametrize("role", ROLE_DIRS, ids=[p.name for p in ROLE_DIRS])
def test_public_variables_are_prefixed_with_the_role_name(role: Path) -> None:
    defaults = load(role / "defaults" / "main.yml") or {}
    wrong = [name for name in defaults if not name.startswith(f"{role.name}_")]
    assert not wrong, f"{role.name}: public variables must start with {role.name}_: {wrong}"
