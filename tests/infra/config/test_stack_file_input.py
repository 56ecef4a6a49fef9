"""infra/config/input.py in process: the bounded stack-file reader and the value walk that runs before pydantic.

A stack file can come from a fork's pull request, so each limit is a refusal with one line naming the file
(and the line, for YAML problems) or the key path; a file within the limits reads as plain data."""
from __future__ import annotations

import pytest

from infra.config.input import (MAX_ABS_INT, MAX_DEPTH, MAX_FILE_BYTES, MAX_STRING_CHARS, StackFileError,
                                input_problems, load_stack_text, load_yaml_text)

pytestmark = pytest.mark.unit

NAME = "Pulumi.dev.yaml"


def _refusal(text: str) -> str:
    with pytest.raises(StackFileError) as info:
        load_stack_text(text, NAME)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(NAME)
    return msg


def test_a_plain_stack_file_reads_its_config_mapping():
    text = "config:\n  aws:region: us-west-2\n  eks-ml-platform:training:\n    workers: 2\n    tags: [a, b]\n"
    assert load_stack_text(text, NAME) == {"aws:region": "us-west-2",
                                           "eks-ml-platform:training": {"workers": 2, "tags": ["a", "b"]}}


@pytest.mark.parametrize("text", ["", "# only a comment\n", "config:\n", "config: {}\n", "encryptionsalt: x\n"])
def test_an_empty_file_or_config_is_no_settings(text):
    assert load_stack_text(text, NAME) == {}


def test_a_file_over_the_size_limit_is_refused_before_parsing():
    msg = _refusal("config:\n  a: " + "x" * MAX_FILE_BYTES + "\n")
    assert f"larger than {MAX_FILE_BYTES:,} bytes" in msg


def test_the_size_limit_counts_bytes_not_characters():
    text = "a: " + "é" * (MAX_FILE_BYTES // 2)  # under the limit in characters, over it in UTF-8 bytes
    assert len(text) < MAX_FILE_BYTES
    with pytest.raises(StackFileError, match="larger than"):
        load_yaml_text(text, NAME)


def test_an_alias_names_its_line():
    msg = _refusal("config:\n  a: &x 1\n  b: *x\n")
    assert "line 3: YAML aliases (*name) are not accepted" in msg


def test_a_duplicate_key_names_its_line_and_the_key():
    msg = _refusal("config:\n  aws:region: us-west-2\n  aws:region: eu-west-1\n")
    assert "line 3: duplicate key 'aws:region'" in msg


def test_a_duplicate_key_in_a_nested_mapping_is_refused_too():
    assert "duplicate key 'workers'" in _refusal("config:\n  t:\n    workers: 1\n    workers: 2\n")


def test_invalid_yaml_names_line_and_column():
    msg = _refusal("config:\n  a: [unclosed\n")
    assert msg.startswith(f"{NAME} is not valid YAML at line ") and ", column " in msg


def test_a_second_document_is_refused_naming_where_it_starts():
    with pytest.raises(StackFileError) as info:
        load_yaml_text("a: 1\n---\nb: 2\n", NAME)  # one stack, one document
    assert str(info.value) == f"{NAME} is not valid YAML at line 2, column 1: but found another document"


def test_an_integer_too_long_to_convert_is_one_line():
    msg = _refusal("config:\n  a: " + "9" * 5000 + "\n")
    assert "a value cannot be read" in msg


@pytest.mark.parametrize("text, kind", [("- a\n- b\n", "list"), ("just text\n", "str"), ("42\n", "int")])
def test_the_top_level_must_be_a_mapping(text, kind):
    assert f"must be a mapping with a 'config' key, not a {kind}" in _refusal(text)


@pytest.mark.parametrize("text, kind", [("config: [1, 2]\n", "list"), ("config: text\n", "str")])
def test_config_must_be_a_mapping(text, kind):
    assert f"'config' must be a mapping of keys to values, not a {kind}" in _refusal(text)


def test_config_keys_must_be_strings():
    msg = _refusal("config:\n  1: x\n")
    assert "config keys must be strings such as 'eks-ml-platform:region'; 1 is not" in msg


def test_an_unhashable_key_is_one_line_not_a_traceback():
    assert "found unhashable key" in _refusal("config:\n  ? [a, b]\n  : x\n")


# --- the value walk -----------------------------------------------------------------------------------------

def test_plain_values_have_no_problems():
    value = {"a": 1, "b": [1.5, "text", True, None], "c": {"d": -MAX_ABS_INT}}
    assert input_problems(value, "") == []


def test_nesting_deeper_than_the_limit_names_the_key_where_it_stops():
    deep: object = "leaf"
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    problems = input_problems({"tags": deep}, "")
    assert problems == [("tags" + "[0]" * MAX_DEPTH, f"is nested more than {MAX_DEPTH} levels deep")]


def test_nesting_at_the_limit_is_accepted():
    deep: object = "leaf"
    for _ in range(MAX_DEPTH - 1):
        deep = [deep]
    assert input_problems({"tags": deep}, "") == []


def test_a_long_string_names_its_path_and_length():
    problems = input_problems({"training": {"image": "x" * (MAX_STRING_CHARS + 1)}}, "")
    assert problems == [("training.image", f"is {MAX_STRING_CHARS + 1:,} characters long (at most "
                                           f"{MAX_STRING_CHARS:,})")]
    assert input_problems({"k": "x" * MAX_STRING_CHARS}, "") == []


def test_a_lone_surrogate_is_refused():
    assert input_problems({"cluster": {"version": "1.\ud800"}}, "") == [
        ("cluster.version", "contains a character that is not valid Unicode text (a lone surrogate)")]


def test_a_non_string_key_inside_a_value_names_the_parent():
    assert input_problems({"tags": {3: "x", "ok": "y"}}, "") == [("tags", "has a key 3 that is not a string")]


@pytest.mark.parametrize("value", [MAX_ABS_INT + 1, -(MAX_ABS_INT + 1), 10**40])
def test_absurd_integers_are_out_of_range(value):
    [(key, msg)] = input_problems({"training": {"workers": value}}, "")
    assert key == "training.workers" and msg.startswith("is out of range")


def test_booleans_are_not_range_checked_integers():
    assert input_problems({"protect": True}, "") == []


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused(value):
    assert input_problems({"queue": {"share": value}}, "") == [("queue.share", "must be a finite number")]


def test_every_problem_of_a_value_is_listed_in_order():
    value = {"a": [float("nan"), "ok", 10**20], "b": {"c": "\udfff"}}
    assert [k for k, _ in input_problems(value, "")] == ["a[0]", "a[2]", "b.c"]


def test_the_walk_starts_at_the_given_key():
    assert input_problems([float("inf")], "root") == [("root[0]", "must be a finite number")]

