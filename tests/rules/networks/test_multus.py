"""Multus network selection (webhook/k8s/multus.py), parsed as multus-cni's parsePodNetworkAnnotation does, and
Go's net.ParseMAC, checked against Go 1.26's own answers (tests/data/go-parsemac.tsv)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.testkit.paths import DATA
from webhook.k8s.multus import Attachment, Selection, network_ref, parse_mac, parse_selection


def refs(value: str, ns: str = "pods") -> list[tuple[str, str, str]]:
    sel = parse_selection(value, ns)
    assert sel.ok, sel.problems
    return [(a.namespace, a.name, a.interface) for a in sel.attachments]


def problems(value: str, ns: str = "pods") -> tuple[str, ...]:
    sel = parse_selection(value, ns)
    assert not sel.ok
    return sel.problems


# --- text form -----------------------------------------------------------------------------------------------


def test_text_items_with_namespace_and_interface_and_whitespace_trimmed() -> None:
    assert refs(" sriov-a , other/sriov-b@net5,  c @ eth9 ") == [
        ("pods", "sriov-a", ""),
        ("other", "sriov-b", "net5"),
        ("pods", "c", "eth9"),
    ]


def test_the_same_network_twice_is_two_attachments() -> None:
    sel = parse_selection("sriov-a,sriov-a", "default")
    assert [a.ref for a in sel.attachments] == ["default/sriov-a", "default/sriov-a"]
    assert [a.index for a in sel.attachments] == [0, 1]


def test_empty_value_selects_nothing_but_blank_items_are_errors() -> None:
    assert parse_selection("", "default") == Selection()
    assert problems("a,,b") == ("item 2 names no network: separate [namespace/]name[@interface] items by one comma",)
    assert [a.ref for a in parse_selection("a,,b", "ns").attachments] == ["ns/a", "ns/b"]
    assert "item 1 names no network" in problems(" ")[0]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("a/b/c", "item 1 'a/b/c' has more than one '/'"),
        ("x,a@b@c", "item 2 'a@b@c' has more than one '@'"),
        ("Sriov", "'Sriov' is not a DNS-1123 label"),
        ("ns_1/a", "'ns_1' is not a DNS-1123 label"),
        ("a@-eth", "'-eth' is not a DNS-1123 label"),
        ("a-", "'a-' is not a DNS-1123 label"),
        ("réseau", "'réseau' is not a DNS-1123 label"),
        # interface names used twice: explicit ones, the pod's eth0, the net<N> Multus gives
        ("a@n1,b@n1", "item 2 (pods/b): interface 'n1' is already item 1 (pods/a)'s"),
        ("a@eth0", "item 1 (pods/a): interface 'eth0' is already the pod's own interface"),
        ("a,b@net1", "item 2 (pods/b): interface 'net1' is already the name Multus gives item 1 (pods/a)"),
        ('[{"name": "a", "interface": "x"}, {"name": "a", "interface": "x"}]', "interface 'x' is already"),
    ],
)
def test_values_multus_refuses_name_their_item(value: str, fragment: str) -> None:
    [problem] = problems(value)
    assert fragment in problem


def test_every_bad_item_is_reported_and_long_values_are_capped() -> None:
    assert len(problems("A,B,c")) == 2
    many = problems(",".join(["X"] * 50))
    assert len(many) == 11 and many[-1] == "and 40 more"


def test_long_items_are_quoted_short() -> None:
    [problem] = problems("Z" * 500)
    assert "'" + "Z" * 39 + "…'" in problem and len(problem) < 200


# --- JSON form -------------------------------------------------------------------------------------------------


def test_json_list_with_namespace_default_and_interface() -> None:
    value = json.dumps(
        [
            {"name": "sriov-a", "namespace": "default", "interface": "pod1a"},
            {"name": "b"},
            {"name": "c", "namespace": ""},
            {"name": "d", "interfaceRequest": "old"},
            {"name": "e", "interface": "new", "interfaceRequest": "old2"},
        ]
    )
    assert refs(value) == [
        ("default", "sriov-a", "pod1a"),
        ("pods", "b", ""),
        ("pods", "c", ""),
        ("pods", "d", "old"),
        ("pods", "e", "new"),
    ]


def test_json_field_names_match_case_insensitively_as_in_go() -> None:
    assert refs('[{"Name": "a", "NAMESPACE": "x", "Interface": "n1"}]') == [("x", "a", "n1")]
    assert refs('[{"name": "exact", "NAME": "folded"}]') == [("pods", "exact", "")]


def test_unknown_json_fields_are_ignored_and_null_without_a_marker_is_a_name() -> None:
    assert refs("null") == [("pods", "null", "")]  # no [, { or ": the text form, where null is a DNS-1123 name
    assert refs('[{"name": "a", "cni-args": {"x": 1}, "whatever": [1, {}], "ips": ["10.1.1.1/24", "fd00::1"]}]') == [
        ("pods", "a", "")
    ]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ('[{"name": "a"', "not valid JSON"),
        ('{"name": "a"}', "must be a JSON list"),
        ('"a"', "must be a JSON list"),
        ('[{"name": 3}]', "item 1: 'name' must be a string"),
        ('[{"name": "a", "namespace": ["x"]}]', "item 1: 'namespace' must be a string"),
        ('[{"name": "a", "ips": "10.0.0.1"}]', "item 1: 'ips' must be a list of strings"),
        ('[{"name": "a", "cni-args": "x"}]', "item 1: 'cni-args' must be an object"),
        ('[{"name": "a"}, null]', "item 2 must be an object with a name, got null"),
        ('["a"]', "item 1 must be an object with a name, got a string"),
        ('[{"namespace": "x"}]', "item 1 names no network"),
        ('[{"name": ""}]', "item 1 names no network"),
        ('[{"name": "a", "mac": "02:00:00:00:00"}]', "item 1: mac '02:00:00:00:00' is not a MAC address"),
        ('[{"name": "a", "ips": ["10.0.0.256"]}]', "item 1: ips entry '10.0.0.256' is not an IP address or CIDR"),
        ('[{"name": "a", "ips": ["010.0.0.1"]}]', "ips entry '010.0.0.1'"),
        ('[{"name": "a", "ips": ["fe80::1%eth0"]}]', "ips entry 'fe80::1%eth0'"),
        ('[{"name": "a", "ips": ["10.0.0.1/33"]}]', "ips entry '10.0.0.1/33'"),
        ('[{"name": "a", "default-route": ["10.0.0.1/24"]}]', "default-route entry '10.0.0.1/24'"),
    ],
)
def test_json_values_multus_refuses(value: str, fragment: str) -> None:
    assert any(fragment in p for p in problems(value)), problems(value)


def test_hostile_json_is_an_error_not_a_crash() -> None:
    deep = "[" * 5000 + "]" * 5000
    assert "not valid JSON" in problems(deep)[0]
    huge = json.dumps([{"name": f"n{i}"} for i in range(20000)])
    sel = parse_selection(huge, "default")
    assert len(sel.attachments) == 20000 and sel.ok
    assert refs('[{"name": "ünïcode-☃"}]')[0][1] == "ünïcode-☃"  # JSON names are not checked by the parser


def test_generated_names_do_not_collide_with_themselves() -> None:
    assert len(refs("a,a,a,b@net9")) == 4


# --- properties ---------------------------------------------------------------------------------------------

_label = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), _label), _label), min_size=1, max_size=6))
def test_text_and_json_forms_agree(items: list[tuple[str | None, str]]) -> None:
    text = ",".join(f"{ns}/{name}" if ns else name for ns, name in items)
    as_json = json.dumps([{"name": name, **({"namespace": ns} if ns else {})} for ns, name in items])
    assert parse_selection(text, "home") == parse_selection(as_json, "home")
    assert [a.ref for a in parse_selection(text, "home").attachments] == [f"{ns or 'home'}/{n}" for ns, n in items]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_value_parses_or_says_why(value: str) -> None:
    sel = parse_selection(value, "default")
    assert isinstance(sel, Selection)
    assert all(isinstance(a, Attachment) and a.name for a in sel.attachments)
    assert sel.ok or all(isinstance(p, str) and p for p in sel.problems)


# --- MAC addresses and networkName ---------------------------------------------------------------------------


def go_answers() -> list[tuple[str, bool]]:
    rows = [line.split("\t") for line in (DATA / "go-parsemac.tsv").read_text().splitlines() if line[:1] != "#"]
    return [(value, answer == "true") for value, answer in rows]


def test_parse_mac_accepts_exactly_what_go_accepts() -> None:
    answers = go_answers()
    assert len(answers) > 400 and sum(ok for _, ok in answers) > 200
    wrong = [(value, ok) for value, ok in answers if (parse_mac(value) is not None) != ok]
    assert wrong == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("020000000001", bytes([2, 0, 0, 0, 0, 1])),  # Go 1.26: bare hex
        ("02:00:00:AA:bb:01", bytes([2, 0, 0, 0xAA, 0xBB, 1])),
        ("02-00-00-00-00-01", bytes([2, 0, 0, 0, 0, 1])),
        ("0200.0000.0001", bytes([2, 0, 0, 0, 0, 1])),
        ("02:00:00:00:00:00:00:01", bytes([2, 0, 0, 0, 0, 0, 0, 1])),
        ("02:00-00:00:00:01", None),
        ("0200:0000:0001", None),
        ("02:00:00:00:00:0g", None),
        ("0\uff120000000001", None),  # a fullwidth digit: not ASCII hex
        ("", None),
    ],
)
def test_parse_mac(value: str, expected: bytes | None) -> None:
    assert parse_mac(value) == expected


def test_network_ref_splits_at_the_first_slash() -> None:
    assert network_ref("sriov-a", "vms") == ("vms", "sriov-a")
    assert network_ref("net/sriov-a", "vms") == ("net", "sriov-a")
    assert network_ref("a/b/c", "vms") == ("a", "b/c")


# --- edges (each pins a behaviour mutation testing found loose) ------------------------------------------------


def test_a_bad_item_does_not_stop_the_items_after_it() -> None:
    for bad in ("a/b/c", "a@b@c", "Bad"):
        sel = parse_selection(f"{bad},good", "ns")
        assert [(a.index, a.ref) for a in sel.attachments] == [(1, "ns/good")] and len(sel.problems) == 1


def test_the_dns_label_message_in_full() -> None:
    assert problems("Bad") == (
        "item 1 'Bad': 'Bad' is not a DNS-1123 label (lower-case letters, digits and '-', starting and ending "
        "with a letter or digit)",
    )
    assert problems('{"name": "a"}') == ("must be a JSON list of objects with a name (the value is JSON, not a list)",)


def test_items_with_problems_are_not_attachments() -> None:
    for value in ('[{"name": ""}]', '[{"name": "a", "namespace": 1}]', '[{"name": "a", "ips": [1]}]'):
        assert parse_selection(value, "ns").attachments == ()


def test_exactly_ten_problems_are_all_listed() -> None:
    listed = problems(",".join(["X"] * 10))
    assert len(listed) == 10 and not listed[-1].startswith("and")


def test_a_long_value_is_parsed_in_the_pods_namespace() -> None:
    value = ",".join(f"net-{i}" for i in range(300))
    assert len(value) > 1024
    sel = parse_selection(value, "home")
    assert sel.ok and {a.namespace for a in sel.attachments} == {"home"}


def test_an_item_of_exactly_forty_characters_is_quoted_whole() -> None:
    item = "A" * 40
    assert f"'{item}'" in problems(item)[0]


def test_a_mac_with_another_separator_is_refused() -> None:
    assert parse_mac("02X00X00X00X00X01") is None
    assert parse_mac("02.00.00.00.00.01") is None
