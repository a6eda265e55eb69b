"""survey_value (lists and mappings from a survey's strings) and local_path (relative paths from where ansible-playbook
runs): what every playbook reads its list, mapping and local path variables through (issue #19)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.toil.cluster.plugins.filter.local_path import FilterModule as LocalPathFilters
from ansible_collections.toil.cluster.plugins.filter.survey_value import FilterModule as SurveyValueFilters

survey_value = SurveyValueFilters().filters()["survey_value"]
local_path = LocalPathFilters().filters()["local_path"]


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        (["--retryCount", "2"], "list", ["--retryCount", "2"]),
        ("--retryCount 2 'a b' \"c d\"", "list", ["--retryCount", "2", "a b", "c d"]),
        ('["a b", "c"]', "list", ["a b", "c"]),
        ("  ", "list", []),
        ("$(id) `id`; id", "list", ["$(id)", "`id`;", "id"]),  # split, never run
        ("ssh-ed25519 AAAA one\n\n ssh-rsa BBBB two \n", "lines", ["ssh-ed25519 AAAA one", "ssh-rsa BBBB two"]),
        ('["ServerAliveInterval 30"]', "lines", ["ServerAliveInterval 30"]),
        ({"a": "1"}, "mapping", {"a": "1"}),
        ('{"pods": [{"name": "x"}]}', "mapping", {"pods": [{"name": "x"}]}),
        ("Project=rna 'Cost Center=4=2' empty=", "mapping", {"Project": "rna", "Cost Center": "4=2", "empty": ""}),
        ("", "mapping", {}),
    ],
)
def test_survey_value_reads_the_value_or_its_string(value, kind, expected):
    assert survey_value(value, kind, "v") == expected


@pytest.mark.parametrize(
    ("value", "kind", "message"),
    [
        ("a 'b", "list", "workflow_args cannot be split as shell words (No closing quotation)"),
        ('["a", ', "list", "workflow_args is not valid JSON"),
        ({"a": 1}, "lines", "workflow_args must be a list, or a string of lines or a JSON list; got a dict"),
        ("[1]", "mapping", "workflow_args must be a mapping: a JSON object or key=value words, got the word '[1]'"),
        ('{"a": 1', "mapping", "workflow_args is not valid JSON"),
        ("a=1 b", "mapping", "got the word 'b'"),
        ("=1", "mapping", "got the word '=1'"),
        (5, "list", "workflow_args must be a list, or a string of shell words or a JSON list; got a int"),
        (["a"], "mapping", "workflow_args must be a mapping, or a JSON object or key=value words; got a list"),
        ("a", "set", "kind must be one of list, lines, mapping"),
    ],
)
def test_survey_value_refuses_what_it_cannot_read(value, kind, message):
    with pytest.raises(AnsibleFilterError) as error:
        survey_value(value, kind, "workflow_args")
    assert message in str(error.value)


def test_local_path_is_taken_from_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", "/home/me")
    assert local_path("./sort.py") == f"{tmp_path}/sort.py"
    assert local_path("data/../sort.py") == f"{tmp_path}/sort.py"
    assert local_path("./") == f"{tmp_path}/"
    assert local_path("out/") == f"{tmp_path}/out/"
    assert local_path("/etc/hostname") == "/etc/hostname"
    assert local_path("~/wf.cwl") == "/home/me/wf.cwl"
    assert local_path("/") == "/"
    assert local_path("") == ""
    with pytest.raises(AnsibleFilterError, match="must be a string"):
        local_path(["a"])
