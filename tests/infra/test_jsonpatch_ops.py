"""infra/jsonpatch.py: the RFC 6902 subset (``add``, ``replace``, ``remove``) that applies upstream's kustomize
patch files (the KEDA CRD patch, the training operator's webhook patch). A wrong result here silently changes
an upstream manifest, so each operation is checked against the RFC's own examples (RFC 6902, appendix A), and
each refusal is a ``PatchError`` naming the path."""
from __future__ import annotations

import copy

import pytest

from infra.jsonpatch import PatchError, apply_patch

pytestmark = pytest.mark.unit


def test_add_an_object_member():  # RFC 6902 A.1
    assert apply_patch({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}]) == {"foo": "bar", "baz": "qux"}


def test_add_inserts_into_an_array_at_the_index():  # A.2: the following elements shift right
    assert apply_patch({"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}]) == \
        {"foo": ["bar", "qux", "baz"]}


def test_add_with_dash_appends_to_the_array():  # A.16
    assert apply_patch({"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}]) == \
        {"foo": ["bar", ["abc", "def"]]}


def test_add_replaces_an_existing_member():  # RFC 6902 4.1: "If the target location specifies an object member that does exist, that member's value is replaced"
    assert apply_patch({"a": 1}, [{"op": "add", "path": "/a", "value": 2}]) == {"a": 2}


def test_remove_an_object_member_and_an_array_element():  # A.3, A.4
    assert apply_patch({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}]) == {"foo": "bar"}
    assert apply_patch({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}]) == {"foo": ["bar", "baz"]}


def test_replace_a_value_in_an_object_and_in_an_array():  # A.5
    assert apply_patch({"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}]) == \
        {"baz": "boo", "foo": "bar"}
    assert apply_patch({"l": [1, 2, 3]}, [{"op": "replace", "path": "/l/2", "value": 9}]) == {"l": [1, 2, 9]}


def test_escaped_tokens_address_keys_with_slash_and_tilde():  # RFC 6901 section 4: ~1 is "/", ~0 is "~"
    doc = {"metadata": {"annotations": {"cert-manager.io/inject-ca-from": "old", "a~b": 1}}}
    apply_patch(doc, [
        {"op": "replace", "path": "/metadata/annotations/cert-manager.io~1inject-ca-from", "value": "new"},
        {"op": "remove", "path": "/metadata/annotations/a~0b"},
    ])
    assert doc == {"metadata": {"annotations": {"cert-manager.io/inject-ca-from": "new"}}}


def test_tilde01_unescapes_to_tilde_one_not_slash():  # RFC 6901: "~01" is "~1" (first ~1 is transformed, then ~0)
    doc = {"~1": "x", "/": "y"}
    apply_patch(doc, [{"op": "remove", "path": "/~01"}])
    assert doc == {"/": "y"}


def test_deep_paths_through_lists_and_maps_patch_in_place_and_return_the_document():
    doc = {"spec": {"versions": [{"name": "v1", "schema": {"x": 1}}, {"name": "v2", "schema": {"x": 2}}]}}
    out = apply_patch(doc, [{"op": "add", "path": "/spec/versions/1/schema/y", "value": 3}])
    assert out is doc
    assert doc["spec"]["versions"][1]["schema"] == {"x": 2, "y": 3}
    assert doc["spec"]["versions"][0]["schema"] == {"x": 1}


def test_operations_apply_in_order():
    doc = apply_patch({"l": []}, [{"op": "add", "path": "/l/-", "value": "a"},
                                 {"op": "add", "path": "/l/0", "value": "b"},
                                 {"op": "replace", "path": "/l/1", "value": "c"}])
    assert doc == {"l": ["b", "c"]}


@pytest.mark.parametrize("op, message", [
    ({"op": "remove", "path": "/missing"}, "/missing: no key 'missing' to remove"),
    ({"op": "replace", "path": "/missing", "value": 1}, "/missing: no key 'missing' to replace"),
    ({"op": "add", "path": "/nope/deeper", "value": 1}, "/nope/deeper: no key 'nope'"),
    ({"op": "add", "path": "/list/7/x", "value": 1}, "/list/7/x: no list index '7'"),
    ({"op": "add", "path": "/list/x/y", "value": 1}, "/list/x/y: no list index 'x'"),
    ({"op": "replace", "path": "/list/5", "value": 1}, "/list/5: no list index 5"),
    ({"op": "remove", "path": "/list/1"}, "/list/1: no list index 1"),
    ({"op": "add", "path": "/name/x", "value": 1}, "/name/x: parent is a scalar"),
    ({"op": "add", "path": "/name/x/y", "value": 1}, "/name/x/y: 'x' is inside a scalar"),
])
def test_a_path_that_does_not_exist_is_a_patch_error_naming_it(op, message):
    doc = {"list": ["only"], "name": "text"}
    before = copy.deepcopy(doc)
    with pytest.raises(PatchError) as info:
        apply_patch(doc, [op])
    assert str(info.value) == message
    assert doc == before  # a refused operation changes nothing


@pytest.mark.parametrize("op", [
    {"op": "move", "from": "/a", "path": "/b"},   # RFC operations kustomize patches here never use
    {"op": "copy", "from": "/a", "path": "/b"},
    {"op": "test", "path": "/a", "value": 1},
    {"path": "/a", "value": 1},                    # no op at all
    {"op": "add", "path": "a", "value": 1},        # a path must be a JSON pointer ("/...")
    {"op": "add", "value": 1},
])
def test_unsupported_or_malformed_operations_are_refused(op):
    with pytest.raises(PatchError, match="unsupported patch operation"):
        apply_patch({"a": 1}, [op])


def test_patch_error_is_a_value_error():
    """Callers that read upstream files catch ValueError for any unusable input."""
    assert issubclass(PatchError, ValueError)
